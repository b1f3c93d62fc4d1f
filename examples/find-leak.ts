/**
 * (c) A process leak found by `lingering()` instead of a scan. 20,000 workers run; the pool
 * tracks most of them, but 3 were spawned outside it. After loading a new worker version the
 * pool tells its workers to switch code. Which processes still run the old code? `lingering()`
 * answers from the per-version index (cost: the 3 it returns), not by asking all 20,000.
 * Run: node --no-node-snapshot dist/examples/find-leak.js
 */
import { System, type Pid } from '../src/index.js';

// Relative to this file once built (dist/examples/): { path, base: import.meta.url } works from any cwd.
const file = (name: string) => ({ path: `../../examples/modules/${name}`, base: import.meta.url });
const system = await System.start({ nodes: [{ name: 'pool', modules: { worker: file('worker.ts') } }] });
const pool = system.node('pool');

const tracked: Pid[] = [];
for (let i = 0; i < 20_000; i++) tracked.push(await pool.spawn('worker', 'start', [i]));
const leaked = [await pool.spawn('worker', 'start', [-1]), await pool.spawn('worker', 'start', [-2]), await pool.spawn('worker', 'start', [-3])];
console.log(`${tracked.length + leaked.length} workers running worker v1`);

await pool.load('worker', file('worker.ts'));
// The pool tells its workers, and waits until each says it runs the new version.
const acks = system.inbox();
for (const pid of tracked) system.send(pid, { type: 'switch_code', ack: acks.pid });
for (let i = 0; i < tracked.length; i++) await acks.receive(undefined, 30_000);

let t = performance.now();
const lingering = await pool.lingering('worker');
const indexMs = performance.now() - t;
console.log(`lingering('worker') → ${lingering.length} processes: ${lingering.join(', ')} (${indexMs.toFixed(2)} ms)`);
console.log(`the leaked ones: ${leaked.join(', ')} — ${lingering.every((p) => leaked.includes(p)) && lingering.length === 3 ? 'found exactly' : 'MISMATCH'}`);

t = performance.now();
const scanned = (await pool.processes()).filter((p) => p.versions.some((v) => v.module === 'worker' && v.state === 'old'));
console.log(`a scan of all ${tracked.length + leaked.length} processes finds ${scanned.length} too (${(performance.now() - t).toFixed(2)} ms)`);

const refused = await pool.softPurge('worker');
console.log(`softPurge refuses while they linger: ok=${refused.ok}, lingering=${refused.lingering.length}`);
for (const pid of lingering) system.send(pid, { type: 'switch_code', ack: acks.pid });
for (let i = 0; i < lingering.length; i++) await acks.receive(undefined, 30_000);
const purged = await pool.softPurge('worker');
console.log(`after telling them too: softPurge ok=${purged.ok}, purged versions [${purged.purged.join(', ')}]`);
await system.stop();
