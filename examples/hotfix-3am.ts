/**
 * (b) The 3 a.m. hotfix. A critical process runs pinger v1. Two fixes ship in quick succession:
 * v2, then v3. On node `beam` (Erlang's rule: two versions, and a load purges what is in the way,
 * as `l(M)` does) loading v3 kills the critical process. On node `calm` (a stack of old versions)
 * it lives on in v1, and `lingering()` says so. Run: node --no-node-snapshot dist/examples/hotfix-3am.js
 */
import { System } from '../src/index.js';
import { erlangKill, stack } from '../policies/index.js';

// Relative to this file once built (dist/examples/): { path, base: import.meta.url } works from any cwd.
const file = (name: string) => ({ path: `../../examples/modules/${name}`, base: import.meta.url });
const system = await System.start({
  nodes: [
    { name: 'beam', code: erlangKill, modules: { pinger: file('v1/pinger.ts') } },
    { name: 'calm', code: stack(5), modules: { pinger: file('v1/pinger.ts') } },
  ],
});
system.on('process_purged', (e) => console.log(`  [event] ${e.node}: ${e.pid} killed by purge of ${e.module} v${e.version}`));
const inbox = system.inbox();

for (const name of ['beam', 'calm']) {
  const node = system.node(name);
  const critical = await node.spawn('pinger', 'start');
  const watch = inbox.monitor(critical);
  console.log(`${name}: critical process ${critical} runs pinger v1`);
  await node.load('pinger', file('v2/pinger.ts'));
  console.log(`${name}: 03:01 loaded v2`);
  try {
    const r = await node.load('pinger', file('v3/pinger.ts'));
    console.log(`${name}: 03:02 loaded v3 (purged versions: [${r.purged.join(', ')}], killed: [${r.killed.join(', ')}])`);
  } catch (error) {
    console.log(`${name}: 03:02 loading v3 refused: ${(error as Error).message}`);
  }
  system.send(critical, { type: 'ping', from: inbox.pid });
  const answer = await inbox.receive<{ pong?: number; vsn?: number; type?: string; reason?: unknown }>(
    (m: { pong?: number; type?: string; ref?: string }) => m.pong !== undefined || (m.type === 'DOWN' && m.ref === watch),
    2_000,
  );
  if (answer.type === 'DOWN') console.log(`${name}: the critical process is dead (${JSON.stringify(answer.reason)})`);
  else console.log(`${name}: the critical process answers from v${answer.vsn}; lingering in old pinger code: [${(await node.lingering('pinger')).join(', ')}]`);
  const versions = (await node.modules())[0]!.versions.map((v) => `v${v.version}:${v.state}(${v.processes})`);
  console.log(`${name}: pinger versions ${versions.join(' ')}\n`);
}
await system.stop();
