/**
 * Module code in a JetStream object store, named by its SHA-256, each version stored once
 * cluster-wide:
 *
 * - a load sent to a node of another host carries the hash of its compiled code, and the owning
 *   host fetches it (once; it keeps what it fetched), so code of any size goes through;
 * - every version a host loads (node.load, a node's modules) is published as source text, and the
 *   modules bucket points each module name at the version loaded last, so a host starting a node
 *   whose modules say `{ cluster: 'latest' }` (or a hash) fetches the sources it lacks.
 */
import { createHash } from 'node:crypto';
import type { KV } from '@nats-io/kv';
import type { ObjectStore } from '@nats-io/obj';
import { LoadError } from '../errors.js';
import type { SharedCode } from '../host/source.js';

export interface CodeRef {
  $code: string;
}

export const isCodeRef = (value: unknown): value is CodeRef => typeof value === 'object' && value !== null && typeof (value as CodeRef).$code === 'string';

const SHA256 = /^[0-9a-f]{64}$/;
const key = (module: string): string => Buffer.from(module).toString('base64url');

export class CodeStore implements SharedCode {
  private readonly known = new Map<string, string>();

  constructor(
    private readonly store: ObjectStore,
    private readonly modules: KV,
    /** A version could not be published (the load itself stands): reported, never thrown. */
    private readonly publishFailed: (module: string, reason: string) => void,
  ) {}

  async put(js: string): Promise<CodeRef> {
    const hash = createHash('sha256').update(js).digest('hex');
    if (!this.known.has(hash)) {
      const info = await this.store.info(hash);
      if (!info || info.deleted) await this.store.putBlob({ name: hash }, new TextEncoder().encode(js));
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

  async fetch(module: string, ref: string): Promise<string> {
    let hash = ref;
    if (ref === 'latest') {
      const entry = await this.modules.get(key(module));
      if (!entry || entry.operation !== 'PUT')
        throw new LoadError(`module '${module}': no host of the cluster has loaded it, so the code store has no version of it`, { module, phase: 'read' });
      hash = entry.string();
    } else if (!SHA256.test(ref)) {
      throw new LoadError(`module '${module}': { cluster } must be 'latest' or a SHA-256 (64 hex digits), got ${JSON.stringify(ref)}`, {
        module,
        phase: 'read',
      });
    }
    try {
      return await this.get({ $code: hash });
    } catch (error) {
      throw new LoadError(`module '${module}': ${(error as Error).message}`, { module, phase: 'read', hash });
    }
  }

  async publish(module: string, text: string): Promise<void> {
    try {
      const { $code } = await this.put(text);
      await this.modules.put(key(module), $code);
    } catch (error) {
      this.publishFailed(module, (error as Error).message);
    }
  }
}
