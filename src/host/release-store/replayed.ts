/**
 * The journal as a release store holds it while open: its records, in order, and the state they
 * replay to. Both stores — the directory (directory.ts) and JetStream (src/cluster/release-store.ts)
 * — keep one, so each rule of reading the journal back and of appending to it lives here once:
 *
 * - open: which records read back are kept and which are lost (the first that is not the record
 *   expected next, names a source that is not stored, or does not replay onto the state before
 *   it — and every record after it, which may depend on it), and what open reports;
 * - append: how an entry or a marker becomes the next record, one at a time in call order, checked
 *   against the state before it is written and visible only once it is written;
 * - read: history, releases, current, lastPermanent.
 *
 * Where a record is written, and whether the store is open, is the store's (`JournalBackend`).
 */
import { applyRecord, emptyRelease, hashesOf, lastPermanentOf, releasesOf, replay, statusOf, stepsOf } from './replay.js';
import type { Sources } from './sources.js';
import type { JournalRecord, LostRecord, OpenResult, ReleaseEntry, ReleaseInfo, SystemRelease } from './store.js';

/** What a store gives its journal. */
export interface JournalBackend {
  /** Throws (StoreClosed…) unless the store is open. */
  ready(): void;
  /** Makes one record durable (it was checked to apply); throws, with nothing written, if it cannot. */
  write(record: JournalRecord): Promise<void>;
  /** The store's sources: a record's sources are stored before it. */
  readonly sources: Sources;
}

/** Whether `value` has a journal record's shape (what each step holds is replay's to check). */
export function isJournalRecord(value: unknown): value is JournalRecord {
  if (!value || typeof value !== 'object') return false;
  const r = value as Record<string, unknown>;
  if (!Number.isInteger(r.seq) || typeof r.at !== 'number') return false;
  if (r.kind === 'release') return Array.isArray(r.steps) && typeof r.plan === 'boolean';
  if (r.kind === 'permanent') return Number.isInteger(r.release);
  if (r.kind === 'revert') return Number.isInteger(r.to);
  return false;
}

export class ReplayedJournal {
  private records: JournalRecord[] = [];
  private state: SystemRelease = emptyRelease();
  /** On open: a record read back was lost, so every one after it is lost too. */
  private damaged = false;
  /** Appends run one at a time, in call order. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly store: JournalBackend) {}

  /** Forgets every record, before open reads them back (`restore`). */
  reset(): void {
    this.records = [];
    this.state = emptyRelease();
    this.damaged = false;
  }

  /** One record read back on open, in order: kept (applied), or why it is lost. */
  async restore(value: unknown): Promise<LostRecord | undefined> {
    const record = isJournalRecord(value) ? value : undefined;
    const seq = this.nextSeq();
    const lost = (entry: Omit<LostRecord, 'seq'> & { seq?: number }): LostRecord => {
      this.damaged = true;
      return { seq, ...(record ? { record } : {}), ...entry };
    };
    if (this.damaged) return lost({ seq: record?.seq ?? seq, reason: 'after_damage', detail: 'follows a record that was lost' });
    if (record?.seq !== seq) return lost({ reason: 'malformed', detail: `expected record ${seq}` });
    const missing = await this.store.sources.missing(hashesOf(record));
    if (missing.length) return lost({ reason: 'missing_source', missing, detail: `source blob(s) missing: ${missing.join(', ')}` });
    try {
      applyRecord(this.state, record, this.records);
    } catch (error) {
      return lost({ reason: 'inconsistent', detail: (error as Error).message });
    }
    this.records.push(record);
    return undefined;
  }

  /** What open reports, once every record was read back: `lost` are the records `restore` did not keep. */
  opened(lost: LostRecord[], quarantined?: string): OpenResult {
    const permanent = lastPermanentOf(this.records);
    const trial = [...statusOf(this.records)].some(([seq, s]) => s === 'trial' && seq > permanent);
    return { state: structuredClone(this.state), records: structuredClone(this.records), lost, permanent, trial, ...(quarantined ? { quarantined } : {}) };
  }

  /** Appends one release: a step, or a plan's steps as one record; its sources must be stored. */
  append(entry: ReleaseEntry, options: { label?: string } = {}): Promise<number> {
    return this.commit(async (seq) => {
      const { plan, label, steps } = stepsOf(entry);
      const name = options.label ?? label;
      const record: JournalRecord = { seq, at: Date.now(), kind: 'release', plan, ...(name !== undefined ? { label: name } : {}), steps };
      await this.store.sources.require(hashesOf(record));
      return record;
    });
  }

  markPermanent(release: number): Promise<number> {
    return this.commit((seq) => ({ seq, at: Date.now(), kind: 'permanent', release }));
  }

  revert(to: number, reason?: string): Promise<number> {
    return this.commit((seq) => ({ seq, at: Date.now(), kind: 'revert', to, ...(reason !== undefined ? { reason } : {}) }));
  }

  /** Resolves once no append is running or waiting. */
  async settled(): Promise<void> {
    await this.queue;
  }

  async history(): Promise<JournalRecord[]> {
    this.store.ready();
    return structuredClone(this.records);
  }

  async releases(): Promise<ReleaseInfo[]> {
    this.store.ready();
    return structuredClone(releasesOf(this.records));
  }

  async current(): Promise<SystemRelease> {
    this.store.ready();
    return structuredClone(this.state);
  }

  async lastPermanent(): Promise<{ release: number; state: SystemRelease } | undefined> {
    this.store.ready();
    const release = lastPermanentOf(this.records);
    if (!release) return undefined;
    return { release, state: replay(this.records.filter((r) => r.seq <= release)) };
  }

  /**
   * Appends the record `make` builds, numbered next, once the appends before it are done: it is
   * checked against the state (BadStep, nothing written), written, and only then visible.
   */
  private commit(make: (seq: number) => JournalRecord | Promise<JournalRecord>): Promise<number> {
    const result = this.queue.then(async () => {
      this.store.ready();
      const record = await make(this.nextSeq());
      const next = structuredClone(this.state);
      applyRecord(next, record, this.records);
      await this.store.write(record);
      this.records.push(record);
      this.state = next;
      return record.seq;
    });
    this.queue = result.catch(() => {});
    return result;
  }

  private nextSeq(): number {
    return (this.records.at(-1)?.seq ?? 0) + 1;
  }
}
