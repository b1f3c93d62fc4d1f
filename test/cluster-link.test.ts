// The data path's sending side (src/cluster/link.ts) on a stand-in for the NATS connection: when a
// batch leaves (at once when idle, once per turn under load), and how node-serialized batches are
// packed under the max payload, in order.
import { describe, expect, it } from 'vitest';
import { serialize } from 'node:v8';
import { decodeEnvelopes } from '../src/net/envelopes.js';
import type { NatsConnection } from '@nats-io/transport-node';
import { Link } from '../src/cluster/link.js';
import { decodeItems, encodeItems, type WireItem } from '../src/net/frames.js';
import { until } from './helpers/wait.js';
import { names } from '../src/net/subjects.js';
import type { ClusterEvent } from '../src/cluster/hooks.js';
import type { Envelope } from '../src/kernel/signals.js';

const SETTINGS = {
  host: 'A',
  cluster: 'c',
  heartbeatMs: 500,
  deadAfterMs: 3000,
  requestTimeoutMs: 15_000,
  maxPendingEnvelopes: 100_000,
  slowPendingBatches: 2000,
};

function link(maxPayload = 1024 * 1024): { link: Link; sent: { subject: string; items: WireItem[]; size: number }[]; events: ClusterEvent[] } {
  const sent: { subject: string; items: WireItem[]; size: number }[] = [];
  const events: ClusterEvent[] = [];
  const nc = {
    info: { max_payload: maxPayload },
    isClosed: () => false,
    publish: (subject: string, data: Uint8Array) => sent.push({ subject, items: decodeItems(data), size: data.length }),
  } as unknown as NatsConnection;
  return {
    link: new Link(
      nc,
      names('c'),
      SETTINGS,
      () => {},
      (e) => events.push(e),
    ),
    sent,
    events,
  };
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const envelopes = (from: number, n: number, pad = ''): Envelope[] => Array.from({ length: n }, (_, i) => [0, '<b1.1.0>', { seq: from + i, pad }] as Envelope);
/** The seqs a list of sent batches carries for `to`, decoded as the receiving node would. */
const seqs = (batches: { items: WireItem[] }[], to = 'b1'): number[] =>
  batches.flatMap((b) =>
    b.items.filter((i) => i[0] === to).flatMap((i) => (decodeEnvelopes(i[2] as Uint8Array) as [number, string, { seq: number }][]).map((e) => e[2].seq)),
  );

describe('the link to other hosts', () => {
  it('sends a lone batch when the task that queued it ends, without waiting for the next turn', async () => {
    const { link: l, sent } = link();
    l.send('B', 'b1', 'a1', 1, envelopes(0, 1));
    expect(sent).toHaveLength(0);
    await Promise.resolve();
    expect(sent).toHaveLength(1);
    expect(sent[0]!.subject).toBe('subnode.c.node.B.b1.A');
    expect(seqs(sent)).toEqual([0]);
  });

  it('while batches keep coming, what is queued within one turn leaves together at its end', async () => {
    const { link: l, sent } = link();
    l.send('B', 'b1', 'a1', 1, envelopes(0, 1));
    await Promise.resolve();
    expect(sent).toHaveLength(1);
    // Later tasks of the same turn: held for the turn's end, then one NATS message for them all.
    for (let i = 1; i < 4; i++) {
      await new Promise<void>((resolve) => queueMicrotask(resolve));
      l.sendEncoded('B', 'b1', 'a1', 1, serialize(envelopes(i, 1)), 1);
      await Promise.resolve();
    }
    expect(sent).toHaveLength(1);
    await turn();
    expect(sent).toHaveLength(2);
    expect(sent[1]!.items).toHaveLength(3);
    expect(seqs(sent)).toEqual([0, 1, 2, 3]);
    // Idle again after a quiet turn: the next lone batch leaves at once.
    await turn();
    await turn();
    l.send('B', 'b1', 'a1', 1, envelopes(4, 1));
    await Promise.resolve();
    expect(sent).toHaveLength(3);
  });

  it("forwards a node's serialized batch as its bytes, on the node's subject; mailboxes and notices on the host's, each in order", async () => {
    const { link: l, sent } = link();
    const bytes = serialize(envelopes(0, 3));
    l.sendEncoded('B', 'b1', 'a1', 1, bytes, 3);
    l.nodeDown(['B', 'C'], 'a2', [], 3);
    l.send('C', 'c1', 'a1', 1, envelopes(10, 2));
    l.send('B', 'host@B', 'host@A', 0, envelopes(3, 1));
    l.send('B', 'b1', 'host@A', 0, envelopes(4, 1));
    l.flush();
    const on = (subject: string) => sent.filter((b) => b.subject === subject).flatMap((b) => b.items);
    expect(on('subnode.c.node.B.b1.A').map((i) => [i[0], i[1], i[4]])).toEqual([
      ['b1', 'a1', 1],
      ['b1', 'host@A', 0],
    ]);
    expect(Buffer.from(on('subnode.c.node.B.b1.A')[0]![2] as Uint8Array).equals(bytes)).toBe(true);
    expect(on('subnode.c.node.B.b1.A')[0]![3]).toBe(3);
    expect(on('subnode.c.data.B.A').map((i) => [i[0], i[1]])).toEqual([
      ['!down', 'a2'],
      ['host@B', 'host@A'],
    ]);
    expect(on('subnode.c.data.B.A')[0]).toEqual(['!down', 'a2', [], 3]);
    expect(on('subnode.c.data.C.A').map((i) => i[0])).toEqual(['!down']);
    expect(seqs([{ items: on('subnode.c.node.C.c1.A') }], 'c1')).toEqual([10, 11]);
  });

  it('packs batches under the max payload, in order; one node batch larger than it is split by its envelopes', () => {
    const max = 64 * 1024;
    const { link: l, sent, events } = link(max);
    const pad = 'x'.repeat(1000);
    // Twenty batches of ~10 KB: several NATS messages, none over the limit.
    for (let i = 0; i < 20; i++) l.sendEncoded('B', 'b1', 'a1', 1, serialize(envelopes(i * 10, 10, pad)), 10);
    // One batch of ~200 KB from a node: more than the max payload on its own.
    l.sendEncoded('B', 'b1', 'a1', 1, serialize(envelopes(200, 200, pad)), 200);
    l.flush();
    expect(sent.length).toBeGreaterThan(4);
    for (const batch of sent) expect(batch.size).toBeLessThanOrEqual(max);
    expect(seqs(sent)).toEqual(Array.from({ length: 400 }, (_, i) => i));
    expect(l.stats).toMatchObject({ batchesOut: sent.length, envelopesOut: 400 });
    expect(events).toEqual([]);
  });

  it('reports a single envelope larger than the max payload, and sends the rest', () => {
    const { link: l, sent, events } = link(16 * 1024);
    l.sendEncoded('B', 'b1', 'a1', 1, serialize(envelopes(0, 1, 'y'.repeat(32 * 1024))), 1);
    l.send('B', 'b1', 'a1', 1, envelopes(1, 1));
    l.flush();
    expect(events).toEqual([{ type: 'link_error', host: 'B', dropped: 1, reason: `larger than the max payload (${16 * 1024} bytes)` }]);
    expect(seqs(sent)).toEqual([1]);
  });

  it('reports a batch that does not decode, and goes on receiving', async () => {
    const events: ClusterEvent[] = [];
    const received: [WireItem[], string][] = [];
    const messages = [
      { subject: 'subnode.c.data.A.B', data: serialize([['a1', 'b1', serialize(envelopes(0, 1)), 1, 1]]) },
      { subject: 'subnode.c.data.A.B', data: encodeItems([['a1', 'b1', serialize(envelopes(1, 1)), 1, 1]]) },
    ];
    const nc = {
      subscribe: () => ({
        unsubscribe: () => {},
        async *[Symbol.asyncIterator]() {
          yield* messages;
        },
      }),
    } as unknown as NatsConnection;
    const l = new Link(
      nc,
      names('c'),
      SETTINGS,
      (items, from) => void received.push([items, from]),
      (e) => events.push(e),
    );
    l.start();
    await until('both batches handled', () => events.length + received.length === 2);
    expect(events).toEqual([
      { type: 'link_error', host: 'B', dropped: 0, reason: 'a batch could not be decoded: not a batch of this format (first byte 255)' },
    ]);
    expect(received.map(([items, from]) => [seqs([{ items }], 'a1'), from])).toEqual([[[1], 'B']]);
    expect(l.stats.batchesIn).toBe(1);
  });
});

describe('the framing of a batch for a host', () => {
  it('carries node batches as their bytes and notices as they were, in order, names in UTF-8', () => {
    const bytes = serialize(envelopes(0, 2));
    const location = { pid: '<b1.1.0>', node: 'c1', home: 'b1', moves: 1, path: ['b1', 'c1'] };
    const items: WireItem[] = [
      ['b1', 'host@A', bytes, 2, 1],
      ['!down', 'a2', ['<a2.3.0>'], 3] as WireItem,
      ['nœud-é', 'a1', new Uint8Array(0), 0, 1],
      ['!moved', location] as WireItem,
    ];
    const decoded = decodeItems(encodeItems(items));
    expect(decoded.map((i) => (i[2] instanceof Uint8Array ? [i[0], i[1], [...i[2]], i[3]] : i))).toEqual(
      items.map((i) => (i[2] instanceof Uint8Array ? [i[0], i[1], [...i[2]], i[3]] : i)),
    );
    // A view into a larger buffer (as NATS hands a message) decodes the same.
    const framed = encodeItems(items);
    const inside = new Uint8Array(framed.byteLength + 8);
    inside.set(framed, 4);
    expect(decodeItems(inside.subarray(4, 4 + framed.byteLength))).toHaveLength(4);
  });

  it('refuses, as a whole, another format, a length past the end, an unknown item and a notice that is not one', () => {
    const good = encodeItems([['b1', 'a1', serialize(envelopes(0, 1)), 1, 1]]);
    expect(() => decodeItems(serialize([['b1', 'a1', serialize(envelopes(0, 1)), 1, 1]]))).toThrow(/not a batch of this format/);
    // A host of the format before (its node batches always v8) is refused whole, not misread.
    expect(() => decodeItems(Buffer.concat([Buffer.from([2]), good.subarray(1)]))).toThrow(/not a batch of this format \(first byte 2\)/);
    expect(() => decodeItems(good.subarray(0, good.byteLength - 1))).toThrow(/past the end/);
    const longer = Buffer.from(good);
    longer.writeUInt32LE(1_000_000, longer.byteLength - 4 - serialize(envelopes(0, 1)).byteLength);
    expect(() => decodeItems(longer)).toThrow(/past the end/);
    expect(() => decodeItems(Buffer.concat([good, Buffer.from([7])]))).toThrow(/unknown kind 7/);
    const fake = serialize(['!gone', 'a1']);
    const notice = Buffer.alloc(6 + fake.byteLength);
    notice[0] = good[0]!; // the format
    notice[1] = 1; // a notice
    notice.writeUInt32LE(fake.byteLength, 2);
    notice.set(fake, 6);
    expect(() => decodeItems(notice)).toThrow(/a notice that is not one/);
  });

  it("refuses a node batch whose destination or sender is named as a notice is (no node name starts with '!')", () => {
    const bytes = serialize(envelopes(0, 1));
    // Framed as a node batch for 'xended', then renamed in place to '!ended' (which encodeItems would frame as a notice).
    const framed = Buffer.from(encodeItems([['xended', 'a1', bytes, 1, 1]]));
    framed.write('!', framed.indexOf('xended'));
    expect(() => decodeItems(framed)).toThrow(/not node names/);
    expect(() => decodeItems(encodeItems([['b1', '!moved1', bytes, 1, 1]]))).toThrow(/not node names/);
    expect(decodeItems(encodeItems([['b1', 'a1', bytes, 1, 1]]))).toHaveLength(1);
  });
});
