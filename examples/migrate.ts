/**
 * (f) Process migration. A session server runs v1 on a `legacy` node. It is moved, live, to an
 * upgraded `edge` node running v2: v2's codeChange converts its state on the way. A client on a
 * third node keeps sending to it by its original pid the whole time, and nothing is lost or
 * reordered. Then a bulk move empties the legacy node. Run: node --no-node-snapshot dist/examples/migrate.js
 */
import { System, type Pid } from '../src/index.js';

// Relative to this file once built (dist/examples/): { path, base: import.meta.url } works from any cwd.
const file = (name: string) => ({ path: `../../examples/modules/${name}`, base: import.meta.url });
const system = await System.start({
  nodes: [
    { name: 'legacy', modules: { session: file('v1/session.ts') } },
    { name: 'edge', modules: { session: file('v2/session.ts') } },
    { name: 'clients', modules: { client: file('client.ts') } },
  ],
});
const legacy = system.node('legacy');
const edge = system.node('edge');
const log = (line: string) => console.log(line);
let quiet = false;
system.on('process_migrated', (e) => {
  if (!quiet) log(`  [event] ${e.pid} migrated ${e.from} → ${e.to} (move ${e.moves})`);
});

// 1. A session on the legacy node, a few hits from the host.
const session = await legacy.startServer('session', ['alice'], { name: 'alice' });
for (let seq = 0; seq < 5; seq++) system.cast(session, { from: 'host', seq });
log(`legacy: session for alice is ${session}, running session v1`);
log(`legacy: ${JSON.stringify(await system.call(session, 'stats'))}`);
log(`v1 state: ${JSON.stringify(await legacy.getState(session))}`);

// 2. A client starts sending 3000 hits to the session's pid; the session moves while they flow.
const inbox = system.inbox();
const HITS = 3000;
const client = await system.node('clients').spawn('client', 'run', [session, 'client', HITS, inbox.pid]);
log(`clients: ${client} sends ${HITS} hits to ${session}, 20 a millisecond`);
await new Promise((r) => setTimeout(r, 40));
const t0 = performance.now();
const moved = await system.migrate(session, 'edge', { extra: { note: 'legacy is being retired' } });
const ms = (performance.now() - t0).toFixed(1);
log(`migrate(${session}, 'edge'): ok=${moved.ok}, state converted ${moved.vsn!.from} → ${moved.vsn!.to} by edge's codeChange (${ms} ms)`);
const where = system.locate(session);
log(`locate(${session}): runs on ${where.node}, home ${where.home}, ${where.moves} move, path ${where.path.join(' → ')}`);
const info = await edge.processInfo(session);
log(`edge: ${session} arrived from ${info!.migration!.cameFrom}, behaviour ${info!.behaviour!.module} vsn ${info!.behaviour!.vsn}`);

// 3. The client never knew. Its hits all arrived, in order, at one session or the other.
const done = await inbox.receive<{ sent: number; stats: { hits: number; outOfOrder: number; vsn: string } }>(
  (m: { sent?: number }) => m.sent !== undefined,
  10_000,
);
const state = await edge.getState<{ stats: { last: Record<string, number> } }>(session);
const fromClient = done.stats.hits - 5; // the host sent the other 5
log(
  `client: sent ${done.sent} hits; the session counted ${fromClient} from it (last seq ${state.stats.last.client}), ${done.stats.outOfOrder} out of order, ${done.sent - fromClient} lost`,
);
log(`client: the reply to its last call came from session v${done.stats.vsn} (${done.stats.hits} hits in all)`);
log(`v2 state: ${JSON.stringify(state)}`);
log(`by name on its home node: ${JSON.stringify(await system.call({ name: 'alice', node: 'legacy' }, 'stats'))}`);

// 4. A bulk move: every other session on the legacy node, in batches.
quiet = true;
await Promise.all(Array.from({ length: 1000 }, (_, i) => legacy.startServer('session', [`user${i}`])));
log(`\nlegacy: ${(await legacy.behavioursOf('session')).length} more sessions started`);
const t1 = performance.now();
const results = await system.migrateAll({
  from: 'legacy',
  to: 'edge',
  module: 'session',
  batch: 250,
  onProgress: (n, total) => log(`  bulk: ${n}/${total} moved`),
});
const failed = results.filter((r) => !r.ok);
log(`bulk: ${results.length - failed.length} moved, ${failed.length} failed (${(performance.now() - t1).toFixed(0)} ms)`);
log(`sessions now: legacy ${(await legacy.behavioursOf('session')).length}, edge ${(await edge.behavioursOf('session')).length}`);
const some: Pid = results[500]!.pid;
log(`one of them, ${some}: ${JSON.stringify(await system.call(some, 'stats'))}`);
await system.stop();
