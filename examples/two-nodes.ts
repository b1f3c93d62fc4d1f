/**
 * Two virtual nodes hold two versions of one module at the same time.
 *
 * Both nodes start with greeter v1. Node `edge` is upgraded to v2; node `legacy` is left alone.
 * Each greeter process is told to switch code: a qualified call enters the current version of its
 * own node, so the edge process moves to v2 with its state while the legacy one stays on v1.
 *
 * Run: npm run demo
 */
import { System } from '../src/index.js';

// Relative to this file once built (dist/examples/): { path, base: import.meta.url } works from any cwd.
const moduleFile = (name: string) => ({ path: `../../examples/modules/${name}`, base: import.meta.url });
const log = (line: string) => console.log(line);

const system = await System.start({
  nodes: [
    { name: 'legacy', modules: { greeter: moduleFile('v1/greeter.ts') }, start: [{ module: 'greeter', fn: 'start', name: 'greeter' }] },
    { name: 'edge', modules: { greeter: moduleFile('v1/greeter.ts') }, start: [{ module: 'greeter', fn: 'start', name: 'greeter' }] },
  ],
});
system.on('module_loaded', (e) => log(`  [event] node ${e.node}: loaded ${e.module} v${e.version}`));

const inbox = system.inbox();
async function greet(node: string, name: string): Promise<void> {
  system.send({ name: 'greeter', node }, { type: 'greet', name, from: inbox.pid });
  log(`  ${node.padEnd(6)} → ${await inbox.receive<string>()}`);
}
async function show(node: string): Promise<void> {
  const [proc] = await system.node(node).processes();
  const versions = (await system.node(node).modules())[0]!.versions.map((v) => `v${v.version} ${v.state} (${v.processes} running)`);
  log(`  ${node.padEnd(6)}: greeter ${versions.join(', ')}; process ${proc!.pid} runs v${proc!.versions[0]!.version}`);
}

log('1. Both nodes run greeter v1:');
await greet('legacy', 'Ada');
await greet('edge', 'Ada');

log('\n2. Load greeter v2 into node `edge` only:');
await system.node('edge').load('greeter', moduleFile('v2/greeter.ts'));
await show('legacy');
await show('edge');
log('   The edge process still runs v1 (now old): it loops by local calls until told to switch.');
await greet('edge', 'Grace');

log('\n3. Tell both processes to switch code (a qualified call into the current version of their node):');
system.send({ name: 'greeter', node: 'legacy' }, { type: 'switch_code' });
system.send({ name: 'greeter', node: 'edge' }, { type: 'switch_code' });
await greet('legacy', 'Grace');
await greet('edge', 'Grace');
await greet('edge', 'Linus');
await show('legacy');
await show('edge');

log('\nTwo versions of `greeter` are alive at once, one per node: legacy on v1, edge on v2 with its state carried over.');
await system.stop();
