/**
 * Control messages too large for one NATS message — a migration's snapshots with their mailboxes,
 * a big answer — go through a JetStream object store whose objects expire on their own
 * (`subnode_<cluster>_spill`): the sender stores the bytes under a fresh name and the NATS message
 * carries only `{ $spill: name }`; the receiver reads them back. Nothing is deleted by hand (hosts
 * may not purge the cluster's streams): the bucket's max age removes what was read, and what a
 * dead host left behind.
 */
import { randomUUID } from 'node:crypto';
import { deserialize, serialize } from 'node:v8';
import type { ObjectStore } from '@nats-io/obj';
import { ClusterUnavailable } from '../errors.js';

/** Room kept under the server's max payload for the message's own headers. */
const HEADROOM = 4096;

interface SpillRef {
  $spill: string;
}

const isSpillRef = (value: unknown): value is SpillRef =>
  typeof value === 'object' && value !== null && Object.keys(value).length === 1 && typeof (value as SpillRef).$spill === 'string';

export class Spill {
  private readonly limit: number;

  constructor(
    private readonly store: ObjectStore,
    /** The NATS server's max payload (bytes). */
    maxPayload: number,
    private readonly host: string,
  ) {
    this.limit = Math.max(1024, maxPayload - HEADROOM);
  }

  /** The bytes to send for `value`: its serialization, or a reference to it in the store when too large. */
  async out(value: unknown): Promise<Uint8Array> {
    const bytes = serialize(value);
    if (bytes.length <= this.limit) return bytes;
    const name = `${this.host}.${randomUUID()}`;
    await this.store.putBlob({ name }, bytes);
    return serialize({ $spill: name } satisfies SpillRef);
  }

  /** What `out` sent: the value, read back from the store if it went there. */
  async in(data: Uint8Array): Promise<unknown> {
    const value: unknown = deserialize(data);
    if (!isSpillRef(value)) return value;
    const bytes = await this.store.getBlob(value.$spill);
    if (!bytes)
      throw new ClusterUnavailable(`a control message stored as ${value.$spill} is not in the cluster's spill bucket (expired?)`, { name: value.$spill });
    return deserialize(bytes);
  }
}
