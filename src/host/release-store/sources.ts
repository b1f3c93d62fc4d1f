/**
 * A release store's module sources, the rules both stores share: a source is stored once, under
 * the sha256 of its UTF-8 bytes; a hash is 64 lowercase hex digits; a source read back must match
 * its hash; and a hash found stored is remembered, so appends and opens ask the store once per
 * hash. Where the blobs live (a directory's `objects/`, a JetStream object store) is the store's
 * `SourceBlobs`.
 */
import { createHash } from 'node:crypto';
import { BadStep, SourceMissing, StoreCorrupt } from './errors.js';
import type { SourceHash } from './store.js';

const HASH = /^[0-9a-f]{64}$/;

/** Whether `value` is a source hash: a sha256 in lowercase hex. */
export function isSourceHash(value: unknown): value is SourceHash {
  return typeof value === 'string' && HASH.test(value);
}

/** Where a store keeps its source blobs. */
export interface SourceBlobs {
  /** Whether a blob is stored under `hash`. */
  has(hash: SourceHash): Promise<boolean>;
  /** The blob stored under `hash`, or undefined when there is none. */
  read(hash: SourceHash): Promise<Uint8Array | undefined>;
  /** Stores `bytes` under `hash`, durably before it resolves. */
  write(hash: SourceHash, bytes: Uint8Array): Promise<void>;
  /** Where the blob under `hash` is, for error details. */
  where(hash: SourceHash): string;
}

export class Sources {
  private readonly known = new Set<SourceHash>();

  constructor(private readonly blobs: SourceBlobs) {}

  /** Stores a compiled source unless it is stored already; its hash. */
  async put(js: unknown): Promise<SourceHash> {
    if (typeof js !== 'string') throw new BadStep('a source must be a string');
    const bytes = Buffer.from(js, 'utf8');
    const hash = createHash('sha256').update(bytes).digest('hex');
    if (await this.has(hash)) return hash;
    await this.blobs.write(hash, bytes);
    this.known.add(hash);
    return hash;
  }

  /** A stored source, checked against its hash. */
  async get(hash: unknown): Promise<string> {
    if (!isSourceHash(hash)) throw new BadStep(`not a source hash: ${JSON.stringify(hash)}`);
    const bytes = await this.blobs.read(hash);
    if (!bytes) throw new SourceMissing(hash);
    if (createHash('sha256').update(bytes).digest('hex') !== hash) {
      throw new StoreCorrupt(`stored source ${hash} does not match its hash`, { hash, path: this.blobs.where(hash) });
    }
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  }

  /** Whether the source is stored (asked once, remembered after); never for a string that is not a hash. */
  async has(hash: unknown): Promise<boolean> {
    if (!isSourceHash(hash)) return false;
    if (this.known.has(hash)) return true;
    if (!(await this.blobs.has(hash))) return false;
    this.known.add(hash);
    return true;
  }

  /** SourceMissing for the first of `hashes` that is not stored. */
  async require(hashes: Iterable<SourceHash>): Promise<void> {
    for (const hash of hashes) if (!(await this.has(hash))) throw new SourceMissing(hash);
  }

  /** The hashes among `hashes` that are not stored, each once. */
  async missing(hashes: Iterable<SourceHash>): Promise<SourceHash[]> {
    const missing: SourceHash[] = [];
    for (const hash of new Set(hashes)) if (!(await this.has(hash))) missing.push(hash);
    return missing;
  }
}
