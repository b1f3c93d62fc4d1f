/**
 * (a) A counter server upgraded from v1 to v2 with state conversion, by an upgrade plan:
 * suspend every counter process, load v2, run v2's codeChange on each state, resume.
 * Calls made during the upgrade wait and are answered by v2. Run: node --no-node-snapshot dist/examples/upgrade-counter.js
 */
import { System } from '../src/index.js';

// Relative to this file once built (dist/examples/): { path, base: import.meta.url } works from any cwd.
const file = (name: string) => ({ path: `../../examples/modules/${name}`, base: import.meta.url });
const system = await System.start({ nodes: [{ name: 'app', modules: { counter: file('v1/counter.ts') } }] });
const app = system.node('app');
// One event per node for the plan's conversions (a changeCode by hand reports `code_changed` instead).
system.on('upgrade_converted', (e) => console.log(`  [event] ${e.node}: ${e.count} ${e.modules.join(', ')} processes converted: ${e.pids.join(', ')}`));

const counters = [await app.startServer('counter', [0], { name: 'hits' }), await app.startServer('counter', [100])];
for (let i = 0; i < 3; i++) await system.call(counters[0]!, 'inc');
console.log(`v1: hits = ${await system.call(counters[0]!, 'get')}, other = ${await system.call(counters[1]!, 'get')}`);
console.log(`v1 state of hits: ${JSON.stringify(await app.getState(counters[0]!))}`);

const during = system.call(counters[0]!, 'inc'); // races the upgrade: never lost, answered before or after it
const report = await system.upgrade({ modules: [{ module: 'counter', source: file('v2/counter.ts'), extra: { note: 'converted from v1' } }] });
const node = report.nodes[0]!;
console.log(`upgrade: ${node.status}, ${'upgraded' in node ? node.upgraded.length : 0} processes converted`);
console.log(`the call made during the upgrade got ${await during}`);
console.log(`v2 state of hits: ${JSON.stringify(await app.getState(counters[0]!))}`);
console.log(`v2: info = ${JSON.stringify(await system.call(counters[1]!, 'info'))}`);
await system.stop();
