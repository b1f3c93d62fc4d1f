/**
 * Where moved processes run, across hosts that were not there when they moved (issue #17): a host
 * that joins after a move, or the driving host come back as a new process, locates the process
 * at its node and works on it there. Hosts are OS processes.
 */
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NatsServer } from './helpers/nats-server.js';
import { HostProcess } from './helpers/nats-hosts.js';
import { counter } from './helpers/nats-agent.js';
import { encodeItems, type WireItem } from '../src/cluster/wire.js';

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

  it('notices that cross are settled by the move count, and a malformed one is reported as forged', async () => {
    const cl = options();
    const [a, b] = await Promise.all([host('A', cl, ['a1']), host('B', cl, ['b1'])]);
    await sees(a, ['b1']);
    const server = await a.eval<string>('return system.node("a1").startServer("counter", [0])');
    // Out and back home: B knows it runs on a1 after 2 moves.
    await a.eval('await system.migrate(args[0], "b1"); await system.migrate(args[0], "a1")', server);
    const home = { pid: server, node: 'a1', home: 'a1', moves: 2, path: ['a1', 'b1', 'a1'] };
    expect(await located(b, server, 2)).toEqual(home);
    // The first move's notice, arriving late (as from A), then a malformed one.
    const nc = await connect({ servers: nats.url });
    try {
      const stale = { pid: server, node: 'b1', home: 'a1', moves: 1, path: ['a1', 'b1'] };
      nc.publish(
        `subnode.${cl.cluster}.data.B.A`,
        encodeItems([
          ['!moved', stale],
          ['!moved', { ...stale, moves: 5, extra: true }],
        ] as WireItem[]),
      );
      await nc.flush();
    } finally {
      await nc.close();
    }
    await b.waitEvent('cluster', (e) => e.type === 'forged' && e.host === 'A' && e.node === 'b1');
    expect(await locate(b, server)).toEqual(home);
    expect(await b.eval('return (await system.process(args[0]).getState()).count', server)).toBe(0);
  }, 60_000);
});
