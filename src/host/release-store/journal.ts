/**
 * The journal's framing: an append-only sequence of frames, one per record.
 *
 *     frame   = length:u32le  crc:u32le  payload
 *     payload = UTF-8 JSON of one JournalRecord ({ seq, at, kind, … }), `length` bytes
 *     crc     = CRC-32 (IEEE) of the four length bytes followed by the payload
 *
 * Why this survives a crash at any byte: a frame is written at the end of the file in place and
 * fsynced before `append` resolves, so a record is either entirely there with a matching CRC or
 * it is the tail being written when the process died. A torn tail shows up as a frame whose
 * length runs past the end of the file, a header cut short, or a CRC mismatch (the file system
 * may also have extended the file with zeros: a zero length is never valid). The scan stops
 * trusting the journal at the first such frame; seqs must run 1, 2, 3… so a frame copied or
 * replayed out of place is caught too. The CRC covers the length so a damaged length cannot
 * pass for a short valid frame.
 */
import { isJournalRecord } from './replayed.js';
import type { JournalRecord, LostRecord } from './store.js';

export const HEADER_BYTES = 8;
/** A frame larger than this is damage, not data (a plan's steps hold hashes, never sources). */
export const MAX_PAYLOAD_BYTES = 64 * 1024 * 1024;

const TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32(...chunks: Uint8Array[]): number {
  let crc = 0xffffffff;
  for (const chunk of chunks) for (let i = 0; i < chunk.length; i++) crc = TABLE[(crc ^ chunk[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

export function encodeFrame(record: JournalRecord): Buffer {
  const payload = Buffer.from(JSON.stringify(record), 'utf8');
  if (payload.length > MAX_PAYLOAD_BYTES) throw new RangeError(`journal record of ${payload.length} bytes is over the ${MAX_PAYLOAD_BYTES}-byte limit`);
  const frame = Buffer.allocUnsafe(HEADER_BYTES + payload.length);
  frame.writeUInt32LE(payload.length, 0);
  frame.writeUInt32LE(crc32(frame.subarray(0, 4), payload), 4);
  payload.copy(frame, HEADER_BYTES);
  return frame;
}

export interface Frame {
  record: JournalRecord;
  offset: number;
  bytes: number;
}

export interface Scan {
  /** Frames that read back whole, with seqs 1, 2, 3…, up to the first damaged one. */
  frames: Frame[];
  /** Where the trusted part ends: the journal is cut back to here. */
  end: number;
  /** The damaged frame and everything after it, each reported as precisely as it can be read. */
  lost: LostRecord[];
}

/** Reads a journal's bytes. Never throws: damage ends the trusted part and is reported. */
export function scan(bytes: Buffer): Scan {
  const frames: Frame[] = [];
  const lost: LostRecord[] = [];
  let offset = 0;
  let seq = 1;
  let damaged = false;
  while (offset < bytes.length) {
    const remaining = bytes.length - offset;
    const lose = (entry: Omit<LostRecord, 'seq' | 'offset'> & { seq?: number }): void => {
      lost.push({ seq: entry.seq ?? seq, offset, ...entry });
    };
    if (remaining < HEADER_BYTES) {
      lose({ reason: 'torn', bytes: remaining, detail: 'frame header cut short' });
      break;
    }
    const length = bytes.readUInt32LE(offset);
    if (length === 0 || length > MAX_PAYLOAD_BYTES) {
      lose({ reason: 'malformed', bytes: remaining, detail: `impossible frame length ${length}` });
      break;
    }
    if (HEADER_BYTES + length > remaining) {
      lose({ reason: 'torn', bytes: remaining, detail: `frame of ${HEADER_BYTES + length} bytes, ${remaining} left in the file` });
      break;
    }
    const size = HEADER_BYTES + length;
    const payload = bytes.subarray(offset + HEADER_BYTES, offset + size);
    const record = parse(payload);
    if (crc32(bytes.subarray(offset, offset + 4), payload) !== bytes.readUInt32LE(offset + 4)) {
      lose({ reason: 'checksum', bytes: size, ...(record ? { seq: record.seq, record } : {}), detail: 'CRC-32 mismatch' });
      damaged = true;
    } else if (!record) {
      lose({ reason: 'malformed', bytes: size, detail: 'payload is not a journal record' });
      damaged = true;
    } else if (damaged || record.seq !== seq) {
      lose({
        reason: damaged ? 'after_damage' : 'malformed',
        seq: record.seq,
        bytes: size,
        record,
        detail: damaged ? 'follows a damaged record' : `seq ${record.seq} where ${seq} was expected`,
      });
      damaged = true;
    } else {
      frames.push({ record, offset, bytes: size });
    }
    offset += size;
    seq++;
  }
  return { frames, end: frames.length ? frames[frames.length - 1]!.offset + frames[frames.length - 1]!.bytes : 0, lost };
}

function parse(payload: Buffer): JournalRecord | undefined {
  try {
    const value: unknown = JSON.parse(payload.toString('utf8'));
    return isJournalRecord(value) ? value : undefined;
  } catch {
    return undefined;
  }
}
