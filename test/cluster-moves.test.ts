/**
 * Where moved processes run, across hosts that were not there when they moved (issue #17): a host
 * that joins after a move, or the driving host come back as a new process, locates the process
 * at its node and works on it there; a moved process that ends is forgotten everywhere; only the
 * host that owns a node (or the driver of a move into it) may say a process runs there. Hosts are
 * OS processes.
 */
import { connect } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NatsServer } from './helpers/nats-server.js';
import { HostProcess } from './helpers/nats-hosts.js';
import { counter } from './helpers/nats-agent.js';
import { encodeItems, type WireItem } from '../src/net/frames.js';

let nats: NatsServer;
const hosts: HostProcess[] = [];
let clusterNo = 0;

beforeAll(async () => {
  nats = await NatsServer.start();
}, 30_000);
afterAll(async () => {
  await Promise.all(hosts.map((h) => h.stop()));
  await nats?.stop();
}, 30_000);

function options(): Record<string, unknown> {
  return { servers: nats.url, cluster: `m${++clusterNo}`, heartbeatMs: 150, deadAfterMs: 1_500 };
}

async function host(name: string, cluster: Record<string, unknown>, nodes: string[]): Promise<HostProcess> {
  const h = await HostProcess.start(
    name,
    cluster,
    nodes.map((node) => ({ name: node, modules: { counter } })),
  );
  hosts.push(h);
  return h;
}

const sees = (h: HostProcess, nodes: string[]) =>
  h.until(`nodes ${nodes.join()}`, async () => {
    const known = (await h.eval<{ name: string }[]>('return system.nodes()')).map((n) => n.name);
    return nodes.every((n) => known.includes(n));
  });

interface Location {
  pid: string;
  node: string;
  home: string;
  moves: number;
  path: string[];
}

const locate = (h: HostProcess, pid: string) => h.eval<Location>('return system.locate(args[0])', pid);

/** A raw process that ends as soon as it arrives on another node. */
const quitter = `
  import { receive, on, next, onMigrate } from 'subnode/process';
  export function start() { return receive(on({ op: 'stop' }, () => 'done'), onMigrate(() => next(quit))); }
  export function quit() { return 'done'; }
`;

/** How many moved processes `h`'s registry holds (an internal count, read by tests only). */
const known = (h: HostProcess) => h.eval<number>('return system.migrations.known');

/** Publishes `items` on `to`'s data subject as if host `as` sent them (a raw NATS connection: the test server has no permissions). */
async function forge(cluster: Record<string, unknown>, to: string, as: string, items: unknown[]): Promise<void> {
  const nc = await connect({ servers: nats.url });
  try {
    nc.publish(`subnode.${cluster.cluster}.data.${to}.${as}`, encodeItems(items as WireItem[]));
    await nc.flush();
  } finally {
    await nc.close();
  }
}

/** Waits until `h` locates `pid` after `moves` moves, and returns where. */
const located = async (h: HostProcess, pid: string, moves: number): Promise<Location> => {
  await h.until(`${pid} located after ${moves} moves`, async () => (await locate(h, pid)).moves === moves);
  return locate(h, pid);
};

describe('moves learned by hosts that were not there', () => {
  it('a host that joins after a move locates the process at its new node and works on it there; so does one that joins after a move between two other hosts', async () => {
    const cl = options();
    const [a, b] = await Promise.all([host('A', cl, ['a1']), host('B', cl, ['b1'])]);
    await sees(a, ['b1']);
    const server = await a.eval<string>('return system.node("a1").startServer("counter", [0])');
    await a.eval('for (let i = 0; i < 5; i++) system.send(args[0], { from: "A", seq: i })', server);
    expect(await a.eval('return system.call(args[0], "get")', server)).toBe(5);
    expect(await a.eval('return system.migrate(args[0], "b1")', server)).toMatchObject({ ok: true, from: 'a1', to: 'b1' });
    expect(await located(b, server, 1)).toMatchObject({ node: 'b1' });

    // C joins after the move: it locates the process on b1, and per-process operations go there.
    const c = await host('C', cl, ['c1']);
    await sees(c, ['a1', 'b1']);
    expect(await located(c, server, 1)).toEqual({ pid: server, node: 'b1', home: 'a1', moves: 1, path: ['a1', 'b1'] });
    expect(await c.eval('return (await system.process(args[0]).getState()).count', server)).toBe(5);
    await c.eval('await system.process(args[0]).replaceState({ count: 42, seen: {} })', server);
    expect(await b.eval('return (await system.node("b1").getState(args[0])).count', server)).toBe(42);
    expect(await c.eval('return system.call(args[0], "get")', server)).toBe(42);

    // A moves it from B's node to C's: every host hears it from C, which runs it now.
    expect(await a.eval('return system.migrate(args[0], "c1")', server)).toMatchObject({ ok: true, from: 'b1', to: 'c1' });
    const there = { pid: server, node: 'c1', home: 'a1', moves: 2, path: ['a1', 'b1', 'c1'] };
    for (const h of [a, b, c]) expect(await located(h, server, 2)).toEqual(there);

    // D joins after that: it hears it from C too.
    const d = await host('D', cl, ['d1']);
    await sees(d, ['a1', 'b1', 'c1']);
    expect(await located(d, server, 2)).toEqual(there);
    expect(await d.eval('return (await system.process(args[0]).getState()).count', server)).toBe(42);
  }, 60_000);

  it('the driving host, killed and started again with the home node, learns where the process runs from the host that runs it', async () => {
    const cl = options();
    const [a, b] = await Promise.all([host('A', cl, ['a1']), host('B', cl, ['b1', 'b2'])]);
    await sees(a, ['b1', 'b2']);
    const server = await a.eval<string>('return system.node("a1").startServer("counter", [7])');
    await a.eval('await system.migrate(args[0], "b1"); await system.migrate(args[0], "b2")', server);
    expect(await located(b, server, 2)).toMatchObject({ node: 'b2' });

    await a.kill();
    await b.waitEvent('cluster', (e) => e.type === 'host_down' && e.host === 'A');
    // The home node went down with A; the process lives on b2.
    expect(await b.eval('return (await system.process(args[0]).getState()).count', server)).toBe(7);

    const again = await host('A', cl, ['a1']);
    await sees(again, ['b1', 'b2']);
    expect(await located(again, server, 2)).toEqual({ pid: server, node: 'b2', home: 'a1', moves: 2, path: ['a1', 'b1', 'b2'] });
    expect(await again.eval('return (await system.process(args[0]).getState()).count', server)).toBe(7);
    // It can drive the next move itself.
    expect(await again.eval('return system.migrate(args[0], "b1")', server)).toMatchObject({ ok: true, from: 'b2', to: 'b1' });
    expect(await located(b, server, 3)).toMatchObject({ node: 'b1' });
  }, 60_000);

  it('the host that runs a moved process dies: every host forgets the move, and a host that joins after hears nothing of it', async () => {
    const cl = options();
    const [a, b, c] = await Promise.all([host('A', cl, ['a1']), host('B', cl, ['b1']), host('C', cl, ['c1'])]);
    for (const h of [a, b, c]) await sees(h, ['a1', 'b1', 'c1']);
    const server = await a.eval<string>('return system.node("a1").startServer("counter", [0])');
    await a.eval('await system.migrate(args[0], "b1")', server);
    for (const h of [a, c]) expect(await located(h, server, 1)).toMatchObject({ node: 'b1' });
    await b.kill();
    // The process died with b1: its home node answers for it again, everywhere.
    for (const h of [a, c]) expect(await located(h, server, 0)).toEqual({ pid: server, node: 'a1', home: 'a1', moves: 0, path: ['a1'] });
    await expect(c.eval('return system.process(args[0]).getState()', server)).rejects.toMatchObject({ code: 'no_process' });
    const d = await host('D', cl, ['d1']);
    await sees(d, ['a1', 'c1']);
    await sees(a, ['d1']);
    expect(await locate(d, server)).toEqual({ pid: server, node: 'a1', home: 'a1', moves: 0, path: ['a1'] });
  }, 60_000);

  it('a moved process that ends is forgotten by every host (the map does not grow); an older end does not erase a newer move, a forged one is reported, as is one from another host of a process this host runs', async () => {
    const cl = options();
    const [a, b, c] = await Promise.all([host('A', cl, ['a1']), host('B', cl, ['b1']), host('C', cl, ['c1'])]);
    for (const h of [a, b, c]) await sees(h, ['a1', 'b1', 'c1']);
    const before = await Promise.all([a, b, c].map(known));
    const server = await a.eval<string>('return system.node("a1").startServer("counter", [0])');
    await a.eval('await system.migrate(args[0], "b1")', server);
    for (const h of [a, b, c]) expect(await located(h, server, 1)).toMatchObject({ node: 'b1' });

    // Killed where it runs: B tells the end after the move, and every host forgets it.
    await b.eval('await system.node("b1").exit(args[0], "kill")', server);
    const home = { pid: server, node: 'a1', home: 'a1', moves: 0, path: ['a1'] };
    for (const h of [a, b, c]) expect(await located(h, server, 0)).toEqual(home);
    expect(await Promise.all([a, b, c].map(known))).toEqual(before);
    await expect(c.eval('return system.process(args[0]).getState()', server)).rejects.toMatchObject({ code: 'no_process' });

    // Moved twice: an end of its first move (older) erases nothing, nor does one from a host that does not own the node.
    const next = await a.eval<string>('return system.node("a1").startServer("counter", [3])');
    await a.eval('await system.migrate(args[0], "b1"); await system.migrate(args[0], "c1")', next);
    const there = { pid: next, node: 'c1', home: 'a1', moves: 2, path: ['a1', 'b1', 'c1'] };
    for (const h of [a, b, c]) expect(await located(h, next, 2)).toEqual(there);
    await forge(cl, 'A', 'B', [
      ['!ended', { pid: next, node: 'b1', moves: 1 }],
      ['!ended', { pid: next, node: 'c1', moves: 2 }],
    ]);
    await a.waitEvent('cluster', (e) => e.type === 'forged' && e.host === 'B' && e.node === 'c1');
    expect(await locate(a, next)).toEqual(there);
    // B owns b1, and says the process C runs on c1 ended there after more moves: C knows better
    // (only C can say so of a process on its node), so C still tells its end below.
    await forge(cl, 'C', 'B', [['!ended', { pid: next, node: 'b1', moves: 99 }]]);
    await c.waitEvent('cluster', (e) => e.type === 'forged' && e.host === 'B' && e.node === 'b1');
    expect(await locate(c, next)).toEqual(there);
    await c.eval('await system.node("c1").exit(args[0], "kill")', next);
    for (const h of [a, b, c]) expect(await located(h, next, 0)).toMatchObject({ node: 'a1' });
    expect(await Promise.all([a, b, c].map(known))).toEqual(before);

    // Ends the moment it arrives (before A commits, so before A's notice reaches B): B does not
    // learn a dead process, and answers A's notice with the end.
    await a.eval('for (const n of ["a1", "b1"]) await system.node(n).load("quitter", { code: args[0] })', quitter);
    const quick = await a.eval<string>('return system.node("a1").spawn("quitter", "start", [])');
    expect(await a.eval('return system.migrate(args[0], "b1")', quick)).toMatchObject({ ok: true });
    for (const h of [a, b, c]) expect(await located(h, quick, 0)).toMatchObject({ node: 'a1' });
    expect(await Promise.all([a, b, c].map(known))).toEqual(before);
  }, 60_000);

  it("a move another host drove out of this host's node, of a process that ends as it arrives: this host takes the end (it learned the move when it ran the commit)", async () => {
    const cl = options();
    const [a, b, c] = await Promise.all([host('A', cl, ['a1']), host('B', cl, ['b1']), host('C', cl, ['c1'])]);
    for (const h of [a, b, c]) await sees(h, ['a1', 'b1', 'c1']);
    const before = await Promise.all([a, b, c].map(known));
    await a.eval('for (const n of ["b1", "c1"]) await system.node(n).load("quitter", { code: args[0] })', quitter);
    // Homed on B's b1, moved by A to C's c1, where it ends before A's notice reaches C: C tells every host the end.
    const quick = await a.eval<string>('return system.node("b1").spawn("quitter", "start", [])');
    expect(await a.eval('return system.migrate(args[0], "c1")', quick)).toMatchObject({ ok: true, from: 'b1', to: 'c1' });
    expect(await located(a, quick, 0)).toMatchObject({ node: 'b1' });
    // Something C sends B after the end (C's queue to B keeps its order): once B has it, B has judged the end.
    const server = await b.eval<string>('return system.node("b1").startServer("counter", [0])');
    await c.eval('system.send(args[0], { from: "C", seq: 0 })', server);
    await b.until('the message C sent after the end', async () => (await b.eval('return system.call(args[0], "get")', server)) === 1);
    expect(b.clusterEvents.filter((e) => e.type === 'forged')).toEqual([]);
    expect(await locate(b, quick)).toEqual({ pid: quick, node: 'b1', home: 'b1', moves: 0, path: ['b1'] });
    expect(await Promise.all([a, b, c].map(known))).toEqual(before);
  }, 60_000);

  it('a move notice is taken only from the host that owns the node it names (looked up when not announced yet), or from the driver of a move into this host', async () => {
    const cl = options();
    const [a, b, c] = await Promise.all([host('A', cl, ['a1']), host('B', cl, ['b1']), host('C', cl, ['c1'])]);
    for (const h of [a, b, c]) await sees(h, ['a1', 'b1', 'c1']);
    // A drives a move into B's node: B takes A's notice (it ran the migrate-in for A), and tells C.
    const server = await a.eval<string>('return system.node("a1").startServer("counter", [0])');
    await a.eval('await system.migrate(args[0], "b1")', server);
    const there = { pid: server, node: 'b1', home: 'a1', moves: 1, path: ['a1', 'b1'] };
    for (const h of [b, c]) expect(await located(h, server, 1)).toEqual(there);

    // A says the process runs on C's node, to B and to C: neither is A's to say.
    const lie = { pid: server, node: 'c1', home: 'a1', moves: 2, path: ['a1', 'b1', 'c1'] };
    await forge(cl, 'B', 'A', [['!moved', lie]]);
    await forge(cl, 'C', 'A', [['!moved', lie]]);
    for (const h of [b, c]) await h.waitEvent('cluster', (e) => e.type === 'forged' && e.host === 'A' && e.node === 'c1');
    for (const h of [b, c]) expect(await locate(h, server)).toEqual(there);

    // A node no host has announced: its owner is looked up in the node names bucket, and items wait for it.
    // 'b9' is claimed by B (as a node B starts next would be); 'z9' by nobody.
    const nc = await connect({ servers: nats.url });
    try {
      const kv = await new Kvm(nc).open(`subnode_${cl.cluster}_nodes`);
      await kv.create('b9', JSON.stringify({ host: 'B', id: 'test', next: 1000 }));
    } finally {
      await nc.close();
    }
    const elsewhere = { pid: server, node: 'b9', home: 'a1', moves: 2, path: ['a1', 'b1', 'b9'] };
    await forge(cl, 'C', 'B', [
      ['!moved', { ...elsewhere, node: 'z9', path: ['a1', 'b1', 'z9'] }],
      ['!moved', elsewhere],
    ]);
    await c.waitEvent('cluster', (e) => e.type === 'forged' && e.host === 'B' && e.node === 'z9');
    expect(await located(c, server, 2)).toEqual(elsewhere);
  }, 60_000);

  it('notices that cross are settled by the move count, and a malformed one is reported as forged', async () => {
    const cl = options();
    const [a, b] = await Promise.all([host('A', cl, ['a1']), host('B', cl, ['b1'])]);
    await sees(a, ['b1']);
    const server = await a.eval<string>('return system.node("a1").startServer("counter", [0])');
    // Out and back home: B knows it runs on a1 after 2 moves.
    await a.eval('await system.migrate(args[0], "b1"); await system.migrate(args[0], "a1")', server);
    const home = { pid: server, node: 'a1', home: 'a1', moves: 2, path: ['a1', 'b1', 'a1'] };
    expect(await located(b, server, 2)).toEqual(home);
    expect(await located(a, server, 2)).toEqual(home);
    // The first move's notice arriving late at A, from B (which owns b1, so may say it), then a malformed one.
    const stale = { pid: server, node: 'b1', home: 'a1', moves: 1, path: ['a1', 'b1'] };
    await forge(cl, 'A', 'B', [
      ['!moved', stale],
      ['!moved', { ...stale, moves: 5, extra: true }],
    ]);
    await a.waitEvent('cluster', (e) => e.type === 'forged' && e.host === 'B' && e.node === 'b1');
    expect(await locate(a, server)).toEqual(home);
    expect(await a.eval('return (await system.process(args[0]).getState()).count', server)).toBe(0);
    // The same late notice at B, as from A: A owns neither node, and B has no move into b1 by A left to confirm.
    await forge(cl, 'B', 'A', [['!moved', stale]]);
    await b.waitEvent('cluster', (e) => e.type === 'forged' && e.host === 'A' && e.node === 'b1');
    expect(await locate(b, server)).toEqual(home);
  }, 60_000);
});
