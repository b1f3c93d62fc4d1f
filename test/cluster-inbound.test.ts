// What arrives from other hosts (src/cluster/inbound.ts), on stand-ins for the system and the node
// names bucket, so the order of a lookup and a host going down is the test's to choose: nothing a
// host sent before it was declared gone reaches a node after the `noconnection`, move notices from
// before are still learned, and what comes after keeps its place behind them.
import { describe, expect, it } from 'vitest';
import { serialize } from 'node:v8';
import { Inbound } from '../src/cluster/inbound.js';
import type { ClusterEvent, ClusterHost } from '../src/cluster/hooks.js';
import type { MoveNotice, WireItem } from '../src/net/frames.js';
import { until } from './helpers/wait.js';

interface Fake {
  inbound: Inbound;
  /** Node batches handed to this host's nodes: [destination, sender, count]. */
  routed: [string, string, number][];
  notices: [MoveNotice, string, string | undefined][];
  events: ClusterEvent[];
  /** Lookups in the node names bucket not answered yet: the test answers them. */
  lookups: { node: string; answer: (host: string | undefined) => void }[];
}

/** `claimedBy`: the node names bucket's answer (by default the test answers each lookup itself). */
function fake(claimedBy?: (node: string) => Promise<string | undefined>): Fake {
  const routed: Fake['routed'] = [];
  const notices: Fake['notices'] = [];
  const events: ClusterEvent[] = [];
  const lookups: Fake['lookups'] = [];
  const system = {
    router: { routeEncoded: (to: string, _bytes: Uint8Array, count: number, from: string) => routed.push([to, from, count]) },
    local: () => [{ name: 'a1' }],
    events: { emit: (e: ClusterEvent) => events.push(e) },
    remoteNodeDown: () => {},
  } as unknown as ClusterHost;
  const inbound = new Inbound(
    'A',
    system,
    new Map([['b1', 'B']]),
    claimedBy ?? ((node) => new Promise((answer) => lookups.push({ node, answer }))),
    (e) => events.push(e),
    () => false,
    (notice, from, owner) => notices.push([notice, from, owner]),
  );
  return { inbound, routed, notices, events, lookups };
}

const data = (count: number, creation = 1): WireItem => ['a1', 'b1', serialize(Array.from({ length: count }, () => [0, '<a1.1.0>', 'x'])), count, creation];
const moved = (node: string): WireItem => ['!moved', { pid: '<a1.1.7>', node, home: 'a1', moves: 1, path: ['a1', node] }] as WireItem;

describe('inbound batches and a host going down', () => {
  it('items that wait behind a lookup when their host is declared gone are dropped and reported, their move notices learned, in order', async () => {
    const { inbound, routed, notices, events, lookups } = fake();
    // A notice naming a node B has not announced yet: looked up, and what follows waits for it.
    inbound.receive([moved('b7')], 'B');
    inbound.receive([data(2)], 'B', 'a1');
    inbound.receive([data(1)], 'B', 'a1');
    inbound.receive([moved('b1')], 'B');
    expect(lookups.map((l) => l.node)).toEqual(['b7']);
    expect(routed).toEqual([]);

    // B is declared gone (its nodes' links and monitors fire noconnection here), then the lookup answers.
    inbound.hostGone('B');
    // After the heal: B's next batch is after the noconnection, and waits its turn.
    inbound.receive([data(4)], 'B', 'a1');
    lookups[0]!.answer('B');
    await until('the batch after the heal delivered', () => routed.length > 0);

    expect(routed).toEqual([['a1', 'b1', 4]]);
    expect(notices.map(([n, from, owner]) => [(n[1] as { node: string }).node, from, owner])).toEqual([
      ['b7', 'B', 'B'],
      ['b1', 'B', 'B'],
    ]);
    const dropped = events.filter((e) => e.type === 'link_error' && e.host === 'B').reduce((n, e) => n + (e as { dropped: number }).dropped, 0);
    expect(dropped).toBe(3);
  });

  it('a host that is never declared gone has its waiting items delivered in order', async () => {
    const { inbound, routed, lookups } = fake();
    inbound.receive([moved('b7')], 'B');
    inbound.receive([data(2)], 'B', 'a1');
    inbound.receive([data(1)], 'B', 'a1');
    lookups[0]!.answer('B');
    await until('both batches delivered', () => routed.length === 2);
    expect(routed.map((r) => r[2])).toEqual([2, 1]);
  });

  it("drops what a node's incarnation sent that arrives after its down notice, and takes its next incarnation's", () => {
    const downs: [string, number][] = [];
    const { inbound, routed, events } = fake();
    (inbound as unknown as { system: { remoteNodeDown: (n: string, h: string, l: unknown, c: number) => void } }).system.remoteNodeDown = (n, _h, _l, c) =>
      void downs.push([n, c]);
    inbound.receive([data(2, 1000)], 'B', 'a1');
    inbound.receive([['!down', 'b1', [], 1000]], 'B');
    // Sent by incarnation 1000 on its own connection before it died, arriving after B's notice: dropped.
    inbound.receive([data(3, 1000)], 'B', 'a1');
    // The node's next incarnation: delivered.
    inbound.receive([data(4, 2000)], 'B', 'a1');
    expect(downs).toEqual([['b1', 1000]]);
    expect(routed.map((r) => r[2])).toEqual([2, 4]);
    expect(events).toEqual([expect.objectContaining({ type: 'link_error', host: 'B', dropped: 3 })]);
  });

  it('takes on each subject only what it carries: a node batch on the host subject, or for another node, is forged', () => {
    const { inbound, routed, events } = fake();
    inbound.receive([data(1)], 'B');
    inbound.receive([data(2)], 'B', 'a2');
    inbound.receive([moved('b1')], 'B', 'a1');
    expect(routed).toEqual([]);
    expect(events.map((e) => e.type)).toEqual(['forged', 'forged', 'forged']);
  });

  it('remembers at most 1,024 nodes it looked up (a peer naming ever new nodes costs lookups, not memory)', async () => {
    let asked = 0;
    const { inbound, notices } = fake(() => (asked++, Promise.resolve(undefined)));
    for (let i = 0; i < 1_100; i++) inbound.receive([moved(`z${i}`)], 'B');
    await until('every notice judged', () => notices.length === 1_100);
    expect(asked).toBe(1_100);
    expect(notices.every(([, , owner]) => owner === undefined)).toBe(true);
    expect((inbound as unknown as { verified: Map<string, string> }).verified.size).toBe(1_024);
  });
});
