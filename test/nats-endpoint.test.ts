/**
 * A node's own NATS connection (src/node/nats-endpoint.ts), here on the test's thread with a
 * stand-in for its runtime, against a real nats-server: what it takes in (only batches for its
 * node, from a node the sending host owns, asked of the host once, in each host's order), the
 * fence of a node gone down (what is on its way comes in first; what its incarnation sends later
 * is dropped; its next incarnation's is taken), and what it sends (framed, on the subject of what
 * it is for).
 */
import { deserialize, serialize } from 'node:v8';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, NatsServer } from './helpers/nats-server.js';
import { until } from './helpers/wait.js';
import { NatsEndpoint } from '../src/node/nats-endpoint.js';
import { decodeItems, encodeItems, type WireItem } from '../src/net/frames.js';
import type { ClusterEvent } from '../src/cluster/hooks.js';
import type { Capabilities } from '../src/kernel/capabilities.js';

let nats: NatsServer;
let peer: NatsConnection;
let clusterNo = 0;

beforeAll(async () => {
  nats = await NatsServer.start();
  peer = await connect({ servers: nats.url });
}, 30_000);
afterAll(async () => {
  await peer?.close();
  await nats?.stop();
}, 30_000);

/** An endpoint for node `a1` (creation 7) of host A, with what it delivers, asks and reports. */
async function endpoint() {
  const cluster = `e${++clusterNo}`;
  const delivered: [from: string, seq: number][] = [];
  const asked: string[] = [];
  const events: ClusterEvent[] = [];
  const ep = await NatsEndpoint.open({ servers: nats.url, name: 'A', cluster }, 'a1', 7, {
    deliver: (bytes, from) => {
      for (const e of deserialize(bytes) as [number, string, number][]) delivered.push([from, e[2]]);
    },
    whois: (node) => void asked.push(node),
    event: (event) => void events.push(event),
  });
  /** Host `host` publishes items on a1's subject, as NATS permissions would let it. */
  const from = (host: string, ...items: WireItem[]): void => peer.publish(`subnode.${cluster}.node.A.a1.${host}`, encodeItems(items));
  return { ep, cluster, delivered, asked, events, from };
}

/** A node batch for a1 from `node` (incarnation `creation`) carrying `seqs`. */
const batch = (node: string, creation: number, ...seqs: number[]): WireItem => [
  'a1',
  node,
  serialize(seqs.map((s) => [0, '<a1.7.1>', s])),
  seqs.length,
  creation,
];

describe("a node's own NATS connection", () => {
  it("asks its host who owns a sender it has not seen, holding that host's later batches in order; forged ones are dropped and reported", async () => {
    const { ep, delivered, asked, events, from } = await endpoint();
    try {
      from('B', batch('b1', 1, 1));
      from('B', batch('b2', 1, 2), batch('b1', 1, 3));
      from('B', batch('host@B', 0, 4));
      await until('b1 asked about', () => asked.length === 1);
      expect(asked).toEqual(['b1']);
      expect(delivered).toEqual([]);
      ep.owner('b1', 'B');
      await until('b2 asked about', () => asked.length === 2);
      expect(delivered).toEqual([['b1', 1]]);
      // b2 is C's: what B sent as b2 is dropped, and B's order holds for the rest.
      ep.owner('b2', 'C');
      await until('the rest delivered', () => delivered.length === 3);
      expect(delivered).toEqual([
        ['b1', 1],
        ['b1', 3],
        ['host@B', 4],
      ]);
      expect(events).toEqual([{ type: 'forged', host: 'B', node: 'b2', dropped: 1 }]);
      // A batch for another node, a notice, or a host's mailbox named by another host: forged too.
      from('B', ['a2', 'b1', serialize([[0, '<a2.1.1>', 9]]), 1, 1], ['!down', 'b1', [], 1], batch('host@C', 0, 9));
      await until('three more reported', () => events.length === 4);
      expect(events.slice(1).map((e) => (e as { node: string }).node)).toEqual(['b1', 'b1', 'host@C']);
      expect(delivered).toHaveLength(3);
    } finally {
      ep.close();
    }
  });

  it("fences a node gone down: what is on its way comes in first, what its incarnation sends later is dropped, its next incarnation's taken", async () => {
    const { ep, delivered, events, from } = await endpoint();
    try {
      ep.owner('b1', 'B');
      from('B', batch('b1', 1000, 1));
      await peer.flush(); // it reached the server before the down notice would have (its sender drained)
      // On its way when the host says b1 (incarnation 1000) went down: delivered before the fence settles.
      await ep.down('b1', 'B', 1000);
      expect(delivered).toEqual([['b1', 1]]);
      // The owner is asked again after a down (a next incarnation may run elsewhere).
      ep.owner('b1', 'B');
      from('B', batch('b1', 1000, 2), batch('b1', 2000, 3));
      await until('the next incarnation delivered', () => delivered.length === 2);
      expect(delivered).toEqual([
        ['b1', 1],
        ['b1', 3],
      ]);
      expect(events).toEqual([expect.objectContaining({ type: 'link_error', host: 'B', dropped: 1 })]);
      // A host declared gone: nothing it sends is taken until it is taken up again.
      ep.hostGone('B');
      await ep.down('b1', 'B', 0xffff_ffff);
      ep.owner('b1', 'B');
      from('B', batch('b1', 2000, 4), batch('host@B', 0, 4));
      await until('dropped and reported', () => events.length === 2);
      expect(events[1]).toMatchObject({ type: 'link_error', host: 'B', dropped: 2 });
      ep.hostUp('B');
      from('B', batch('b1', 2000, 5));
      await until('taken again', () => delivered.length === 3);
      expect(delivered.at(-1)).toEqual(['b1', 5]);
    } finally {
      ep.close();
    }
  });

  it('a node gone down whose owner was not answered yet: what it sent before is delivered before the fence settles, not dropped as late', async () => {
    const { ep, delivered, asked, events, from } = await endpoint();
    try {
      from('B', batch('b1', 1000, 1, 2));
      await until('b1 asked about', () => asked.length === 1);
      // The host tells of b1's down (B's notice names its host) before it answers the question.
      await ep.down('b1', 'B', 1000);
      expect(delivered).toEqual([
        ['b1', 1],
        ['b1', 2],
      ]);
      // The late answer changes nothing; what that incarnation sends now is dropped.
      ep.owner('b1', 'B');
      from('B', batch('b1', 1000, 3));
      await until('dropped and reported', () => events.length === 1);
      expect(events[0]).toMatchObject({ type: 'link_error', host: 'B', dropped: 1 });
      expect(delivered).toHaveLength(2);
    } finally {
      ep.close();
    }
  });

  it('a host declared gone: what it sent that waits for an owner is dropped, and nothing is sent to it', async () => {
    const { ep, delivered, asked, events, from } = await endpoint();
    try {
      from('B', batch('b1', 1, 1, 2));
      await until('b1 asked about', () => asked.length === 1);
      ep.hostGone('B');
      ep.owner('b1', 'B');
      ep.send('B', 'b1', serialize([[0, '<b1.1.1>', 3]]), 1);
      await until('both reported', () => events.length === 2);
      expect(events).toEqual([
        expect.objectContaining({ type: 'link_error', host: 'B', dropped: 2 }),
        expect.objectContaining({ type: 'link_error', host: 'B', dropped: 1, reason: "node 'a1': host 'B' is gone" }),
      ]);
      expect(delivered).toEqual([]);
    } finally {
      ep.close();
    }
  });

  it('sends batches for a node on its subject and for mailboxes on their host’s, framed with its name and creation', async () => {
    const { ep, cluster } = await endpoint();
    const got: [string, WireItem[]][] = [];
    const sub = peer.subscribe(`subnode.${cluster}.>`, { callback: (_e, m) => void got.push([m.subject, decodeItems(m.data)]) });
    await peer.flush();
    try {
      ep.send('B', 'b1', serialize([[0, '<b1.1.1>', 1]]), 1);
      ep.send('B', 'host@B', serialize([[0, '<host@B.1>', 2]]), 1);
      await ep.drain();
      // What waits for a host declared gone is dropped, reported, never sent after.
      const events: ClusterEvent[] = [];
      (ep as unknown as { io: { event: (e: ClusterEvent) => void } }).io.event = (e) => void events.push(e);
      ep.send('C', 'c1', serialize([[0, '<c1.1.1>', 3]]), 1);
      ep.hostGone('C');
      await ep.drain();
      expect(events).toEqual([expect.objectContaining({ type: 'link_error', host: 'C', dropped: 1 })]);
      await until('both received', () => got.length === 2);
      expect(got.map(([subject, items]) => [subject, items.map((i) => [i[0], i[1], i[3], i[4]])])).toEqual([
        [`subnode.${cluster}.node.B.b1.A`, [['b1', 'a1', 1, 7]]],
        [`subnode.${cluster}.data.B.A`, [['host@B', 'a1', 1, 7]]],
      ]);
    } finally {
      sub.unsubscribe();
      ep.close();
    }
  });
});

/** Servers that take a connection and never say a word (no INFO): a client waits for each until its timeout. */
async function silentServers(n: number): Promise<{ urls: string[]; close(): void }> {
  const sockets: Socket[] = [];
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<Server>((resolve) => {
          const server = createServer((socket) => void sockets.push(socket));
          server.listen(0, '127.0.0.1', () => resolve(server));
        }),
    ),
  );
  return {
    urls: servers.map((s) => `nats://127.0.0.1:${(s.address() as AddressInfo).port}`),
    close: () => {
      for (const socket of sockets) socket.destroy();
      for (const s of servers) s.close();
    },
  };
}

/** A thread node `node` of host A whose own connection goes to `servers`; what it tells its host is in `messages`. */
async function threadNode(node: string, servers: string | string[], startTimeoutMs?: number) {
  const { NodeBackend } = await import('../src/host/node-backend.js');
  const messages: unknown[] = [];
  const backend = await NodeBackend.start({
    node,
    kind: 'thread',
    creation: 0,
    // The kernel's defaults (what a node spec leaves out is filled in by the host; not needed here).
    capabilities: {} as Capabilities,
    limits: {},
    imports: [],
    watchdog: { ms: 10_000, what: 'unresponsive' },
    ...(startTimeoutMs === undefined ? {} : { startTimeoutMs }),
    nats: { servers, name: 'A', cluster: node },
    onMessage: (message) => void messages.push(message),
    onUnresponsive: () => {},
    onExit: () => {},
  });
  return { backend, messages };
}

/** The warning a node without a connection of its own logs. */
const noConnection = (text: RegExp) => ({ t: 'event', event: expect.objectContaining({ type: 'log', level: 'warn', text: expect.stringMatching(text) }) });

describe('a node whose host is in a cluster, NATS unreachable when it starts', () => {
  it('runs without a connection of its own (its host carries its batches), says so, and ends without waiting', async () => {
    // A port nothing listens on: the connection is refused at once.
    const { backend, messages } = await threadNode('lonely', `nats://127.0.0.1:${await freePort()}`);
    try {
      expect(backend.direct).toBe(false);
      expect(messages).toContainEqual(noConnection(/no NATS connection of its own/));
      expect(await backend.call('ping', [])).toBe('pong');
    } finally {
      const t0 = Date.now();
      await backend.terminate();
      // Its drain is answered at once (nothing of its own to drain), not after the 1 s bound.
      expect(Date.now() - t0).toBeLessThan(900);
    }
  });

  it('starts within its deadline when none of several servers answers (the wait for its own connection is one bound, not one per server)', async () => {
    const silent = await silentServers(3);
    try {
      // Three servers at the client's 3 s each would take 9 s: past this start deadline.
      const { backend, messages } = await threadNode('patient', silent.urls, 7_000);
      try {
        expect(backend.direct).toBe(false);
        expect(messages).toContainEqual(noConnection(/no NATS server answered within 3000 ms/));
      } finally {
        await backend.terminate();
      }
    } finally {
      silent.close();
    }
  }, 20_000);
});
