/**
 * How a batch of items is laid out in one NATS message (a host's link and a node thread's own
 * connection both write and read it: src/net runs on either side). The node batches in it are
 * serialized already (by the sending node's thread: src/net/envelopes.ts), so the batch around them is framed by hand:
 * v8-serializing the outer array again cost ~3 µs a message to write and ~1 µs to read (a Uint8Array
 * in it goes through Node's JavaScript host-object hook), on each of the two hosts a call crosses,
 * where these frames cost a tenth of that. A receiving host takes each node batch as a view of the
 * message, undecoded.
 *
 * Layout: a format byte (1), then per item either
 * - a node batch: 0, destination and sending node (u16 length + UTF-8 each), the sending node's
 *   creation (u32; 0 for a host's mailboxes), envelope count (u32), byte length (u32), the
 *   serialized envelopes (src/net/envelopes.ts);
 * - a notice: 1, byte length (u32), the notice v8-serialized (rare: a node down, a process moved or ended).
 *
 * Anything else (another format, a length past the end, a notice that is not one, a node batch
 * naming a node as a notice is named) is refused as a
 * whole: `decodeItems` throws, and the link reports the batch dropped.
 */
import { deserialize, serialize } from 'node:v8';
import type { Pid } from '../kernel/pid.js';
import type { MoveEnd, ProcessLocation } from '../host/migration.js';

/**
 * The kinds of notice, each a name no node can have (node names never start with '!'): a node
 * went down, a process moved, a moved process ended (the last two for every host's locate,
 * src/cluster/moves.ts).
 */
export const NOTICE_KINDS = ['!down', '!moved', '!ended'] as const;
export type NoticeKind = (typeof NOTICE_KINDS)[number];

/** What each kind carries after its name. */
interface NoticeBodies {
  /** `creation`: the incarnation that went down (what it sent that arrives later is from before). */
  '!down': [node: string, lost: Pid[], creation: number];
  '!moved': [location: ProcessLocation];
  '!ended': [end: MoveEnd];
}

/** A node-down notice `['!down', node, lost, creation]`, where a process moved `['!moved', location]`, or that a moved process ended `['!ended', end]`. */
export type Notice = { [K in NoticeKind]: [K, ...NoticeBodies[K]] }[NoticeKind];

/** The notices about moves (src/cluster/moves.ts), as they arrive: checked there, never trusted. */
export type MoveNoticeKind = Exclude<NoticeKind, '!down'>;
export type MoveNotice = { [K in MoveNoticeKind]: [K, unknown] }[MoveNoticeKind];

/**
 * An item as it travels: `[destination node, sending node, envelopes serialized, their count,
 * the sending node's creation]`, or a notice. The receiver hands the bytes to the node's kernel
 * undecoded.
 */
export type NodeBatch = [to: string, from: string, bytes: Uint8Array, count: number, creation: number];
export type WireItem = NodeBatch | Notice;

const KINDS: ReadonlySet<string> = new Set(NOTICE_KINDS);

export const isNotice = (item: WireItem): item is Notice => KINDS.has(item[0]);

/** A notice about a move (where a process runs, or that it ended), whatever it carries. */
export const isMoveNotice = (item: readonly unknown[]): item is MoveNotice => item[0] !== '!down' && KINDS.has(item[0] as string);

/** Every incarnation of a node: a host declared gone fences all of its nodes' batches until it is heard again. */
export const EVERY_INCARNATION = 0xffff_ffff;

/** 3: node batches may be JSON text (src/net/envelopes.ts); a host of format 2 refuses them whole. */
const FORMAT = 3;
const BATCH = 0;
const NOTICE = 1;
const MAX_NAME = 0xffff;

/** The items as one NATS message's payload. Throws if a name is too long to frame (no node name is). */
export function encodeItems(items: readonly WireItem[]): Uint8Array {
  const parts: (Buffer | Uint8Array)[] = [];
  let size = 1;
  for (const item of items) {
    if (isNotice(item)) {
      const bytes = serialize(item);
      parts.push(bytes);
      size += 5 + bytes.byteLength;
    } else {
      const to = Buffer.from(item[0]);
      const from = Buffer.from(item[1]);
      if (to.length > MAX_NAME || from.length > MAX_NAME) throw new RangeError('a node name too long to frame');
      parts.push(to, from, item[2]);
      size += 1 + 2 + to.length + 2 + from.length + 12 + item[2].byteLength;
    }
  }
  const out = Buffer.allocUnsafe(size);
  out[0] = FORMAT;
  let at = 1;
  let part = 0;
  for (const item of items) {
    if (isNotice(item)) {
      const bytes = parts[part++]!;
      out[at] = NOTICE;
      out.writeUInt32LE(bytes.byteLength, at + 1);
      out.set(bytes, at + 5);
      at += 5 + bytes.byteLength;
      continue;
    }
    out[at++] = BATCH;
    for (const name of [parts[part++]!, parts[part++]!]) {
      out.writeUInt16LE(name.byteLength, at);
      out.set(name, at + 2);
      at += 2 + name.byteLength;
    }
    const bytes = parts[part++]!;
    out.writeUInt32LE(item[4], at);
    out.writeUInt32LE(item[3], at + 4);
    out.writeUInt32LE(bytes.byteLength, at + 8);
    out.set(bytes, at + 12);
    at += 12 + bytes.byteLength;
  }
  return out;
}

/** The items of a NATS message's payload; node batches are views of it. Throws on anything malformed. */
export function decodeItems(data: Uint8Array): WireItem[] {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (buf[0] !== FORMAT) throw new Error(`not a batch of this format (first byte ${String(buf[0])})`);
  const items: WireItem[] = [];
  let at = 1;
  /** The next `n` bytes' offset, checked to lie within the message. */
  const take = (n: number): number => {
    if (at + n > buf.length) throw new Error('a length past the end of the batch');
    const start = at;
    at += n;
    return start;
  };
  while (at < buf.length) {
    const kind = buf[take(1)];
    if (kind === NOTICE) {
      const length = buf.readUInt32LE(take(4));
      const start = take(length);
      const notice = deserialize(buf.subarray(start, start + length)) as unknown;
      if (!Array.isArray(notice) || !isNotice(notice as WireItem)) throw new Error('a notice that is not one');
      items.push(notice as Notice);
    } else if (kind === BATCH) {
      const name = (): string => {
        const length = buf.readUInt16LE(take(2));
        const start = take(length);
        return buf.toString('utf8', start, start + length);
      };
      const to = name();
      const from = name();
      // No node is named like a notice: such a batch would be taken for one.
      if (to.startsWith('!') || from.startsWith('!')) throw new Error(`a node batch between '${to}' and '${from}', not node names`);
      const head = take(12);
      const creation = buf.readUInt32LE(head);
      const count = buf.readUInt32LE(head + 4);
      const length = buf.readUInt32LE(head + 8);
      const start = take(length);
      items.push([to, from, buf.subarray(start, start + length), count, creation]);
    } else throw new Error(`an item of unknown kind ${String(kind)}`);
  }
  return items;
}
