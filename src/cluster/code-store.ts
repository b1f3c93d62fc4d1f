/**
 * Compiled module code in a JetStream object store, named by its SHA-256: a load sent to a node
 * of another host carries the hash, and the owning host fetches the code (once; it keeps what it
 * fetched), so code of any size goes through, each version stored once cluster-wide.
 */
import { createHash } from 'node:crypto';
import type { ObjectStore } from '@nats-io/obj';
import { LoadError } from '../errors.js';

export interface CodeRef {
  $code: string;
}

export const isCodeRef = (value: unknown): value is CodeRef => typeof value === 'object' && value !== null && typeof (value as CodeRef).$code === 'string';

export class CodeStore {
  private readonly known = new Map<string, string>();

  constructor(private readonly store: ObjectStore) {}

  async put(js: string): Promise<CodeRef> {
    const hash = createHash('sha256').update(js).digest('hex');
    if (!this.known.has(hash)) {
      if (!(await this.store.info(hash))) await this.store.putBlob({ name: hash }, new TextEncoder().encode(js));
      this.known.set(hash, js);
    }
    return { $code: hash };
  }

  async get(ref: CodeRef): Promise<string> {
    const cached = this.known.get(ref.$code);
    if (cached !== undefined) return cached;
    const bytes = await this.store.getBlob(ref.$code);
    if (!bytes) throw new LoadError(`module code ${ref.$code} is not in the cluster's code store`, { hash: ref.$code });
    const js = new TextDecoder().decode(bytes);
    if (createHash('sha256').update(js).digest('hex') !== ref.$code)
      throw new LoadError(`module code ${ref.$code} does not match its hash`, { hash: ref.$code });
    this.known.set(ref.$code, js);
    return js;
  }
}
