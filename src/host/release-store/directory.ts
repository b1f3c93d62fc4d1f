/**
 * The embedded release store: a directory.
 *
 *     <dir>/format            {"store":"subnode-release-store","format":1}
 *     <dir>/journal           the records, framed and checksummed (journal.ts)
 *     <dir>/objects/<sha256>  compiled module sources, content-addressed
 *     <dir>/lock              the writer's pid while a store is open (lock.ts)
 *     <dir>/lost/             bytes cut from the journal on open, kept for inspection
 *
 * Why it survives kill -9 (or power loss) at every write point:
 * - A source blob is written to a temp file, fsynced, renamed to its hash, and the directory is
 *   fsynced: `objects/<hash>` is either absent or complete. Leftover temp files are removed on open.
 * - A journal record is one frame written at the end of the journal and fsynced before `append`
 *   resolves; its blobs were made durable before it was written. A crash leaves at most a torn
 *   last frame, which open detects (length/CRC/seq) and cuts off. A plan is one frame, so a
 *   release is never half there.
 * - `format` is written once, by temp file + fsync + rename + directory fsync.
 * On open the records are re-checked: each must replay onto the state before it and each source it
 * names must exist. The first record that fails — and everything after it, which may depend on it —
 * is reported in `lost` (with its steps when they can still be read); the cut bytes are copied to
 * `lost/` before the journal is truncated, so nothing that was on disk is thrown away.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { StoreClosed, StoreError } from './errors.js';
import { encodeFrame, scan } from './journal.js';
import { acquireLock, type Lock } from './lock.js';
import { Crash, Disk, exists, writeAll, type DiskOptions } from './disk.js';
import { checkFormat } from './format.js';
import { ReplayedJournal } from './replayed.js';
import { Sources } from './sources.js';
import type { JournalRecord, OpenResult, ReleaseEntry, ReleaseInfo, ReleaseStore, SourceHash, SystemRelease } from './store.js';

/** How a directory store writes: fsync or not, and (tests) the crashes injected at its write points. */
export type DirectoryStoreOptions = DiskOptions;

export class DirectoryReleaseStore implements ReleaseStore {
  private lock: Lock | undefined;
  private journal: FileHandle | undefined;
  private size = 0;
  private crashed = false;
  private readonly sources = new Sources({
    has: (hash) => exists(this.blobPath(hash)),
    read: (hash) => this.readBlob(hash),
    write: (hash, bytes) => this.writeBlob(hash, bytes),
    where: (hash) => this.blobPath(hash),
  });
  /** The records read back on open and appended since, replayed. */
  private readonly replayed = new ReplayedJournal({ ready: () => this.assertOpen(), write: (record) => this.write(record), sources: this.sources });

  /** Where the store's writes are made durable, and where a test's crash is injected. */
  private readonly disk: Disk;

  constructor(
    readonly dir: string,
    options: DirectoryStoreOptions = {},
  ) {
    this.disk = new Disk(options);
  }

  async open(): Promise<OpenResult> {
    if (this.journal) throw new StoreError('already_open', `release store ${this.dir} is already open`);
    await mkdir(this.dir, { recursive: true });
    this.lock = await acquireLock(this.dir);
    try {
      return await this.recover();
    } catch (error) {
      await (this.journal as FileHandle | undefined)?.close().catch(() => {});
      this.journal = undefined;
      if (error instanceof Crash) {
        this.crashed = true; // a dead process leaves its lock behind
        throw error.error;
      }
      await this.lock.release();
      this.lock = undefined;
      throw error;
    }
  }

  async putSource(js: string): Promise<SourceHash> {
    this.assertOpen();
    return this.sources.put(js);
  }

  async getSource(hash: SourceHash): Promise<string> {
    this.assertOpen();
    return this.sources.get(hash);
  }

  append(entry: ReleaseEntry, options: { label?: string } = {}): Promise<number> {
    return this.replayed.append(entry, options);
  }

  markPermanent(release: number): Promise<number> {
    return this.replayed.markPermanent(release);
  }

  revert(to: number, reason?: string): Promise<number> {
    return this.replayed.revert(to, reason);
  }

  history(): Promise<JournalRecord[]> {
    return this.replayed.history();
  }

  releases(): Promise<ReleaseInfo[]> {
    return this.replayed.releases();
  }

  current(): Promise<SystemRelease> {
    return this.replayed.current();
  }

  lastPermanent(): Promise<{ release: number; state: SystemRelease } | undefined> {
    return this.replayed.lastPermanent();
  }

  async close(): Promise<void> {
    await this.replayed.settled();
    const journal = this.journal;
    this.journal = undefined;
    await journal?.close().catch(() => {});
    if (!this.crashed) await this.lock?.release();
    this.lock = undefined;
  }

  /** Writes one record durably at the end of the journal (a torn frame is cut back on an I/O error). */
  private async write(record: JournalRecord): Promise<void> {
    this.assertOpen();
    const journal = this.journal!;
    const frame = encodeFrame(record);
    const at = this.size;
    await this.guard(
      async () => {
        await this.disk.fault('journal:before-write');
        if (this.disk.injectsFaults) {
          // Two writes so a crash can land between them: the torn frame a real crash may leave.
          const half = frame.length >> 1;
          await writeAll(journal, frame.subarray(0, half), at);
          await this.disk.fault('journal:half-written');
          await writeAll(journal, frame.subarray(half), at + half);
        } else {
          await writeAll(journal, frame, at);
        }
        await this.disk.fault('journal:written');
        await this.disk.datasync(journal);
        await this.disk.fault('journal:synced');
      },
      () => journal.truncate(at),
    );
    this.size = at + frame.length;
  }

  private async recover(): Promise<OpenResult> {
    await checkFormat(this.dir, this.disk);
    const objects = join(this.dir, 'objects');
    await mkdir(objects, { recursive: true });
    for (const name of await readdir(objects)) if (name.startsWith('.tmp-')) await unlink(join(objects, name)).catch(() => {});
    for (const name of await readdir(this.dir))
      if (name.startsWith('.lock-stale-') || name === 'format.tmp') await unlink(join(this.dir, name)).catch(() => {});
    // Blobs renamed into place by a process that died before its directory fsync become durable now,
    // before any new record can refer to them.
    await this.disk.syncDir(objects);
    const path = join(this.dir, 'journal');
    const created = !(await exists(path));
    this.journal = await open(path, created ? 'w+' : 'r+');
    if (created) await this.disk.syncDir(this.dir);
    const bytes = await this.journal.readFile();
    const { frames, lost, end } = scan(bytes);
    this.replayed.reset();
    let kept = end;
    for (const frame of frames) {
      const problem = await this.replayed.restore(frame.record);
      if (!problem) continue;
      kept = Math.min(kept, frame.offset);
      lost.push({ ...problem, offset: frame.offset, bytes: frame.bytes });
    }
    lost.sort((x, y) => (x.offset ?? 0) - (y.offset ?? 0));
    let quarantined: string | undefined;
    if (kept < bytes.length) {
      quarantined = await this.quarantine(bytes.subarray(kept), kept);
      await this.journal.truncate(kept);
      await this.disk.sync(this.journal);
    }
    this.size = kept;
    return this.replayed.opened(lost, quarantined);
  }

  private async readBlob(hash: SourceHash): Promise<Buffer | undefined> {
    try {
      return await readFile(this.blobPath(hash));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  /** Writes a blob to a temp file, fsynced, renamed to its hash, the directory fsynced: it is there whole or not at all. */
  private async writeBlob(hash: SourceHash, bytes: Uint8Array): Promise<void> {
    const objects = join(this.dir, 'objects');
    const temp = join(objects, `.tmp-${hash}-${process.pid}-${randomBytes(4).toString('hex')}`);
    await this.guard(
      async () => {
        const file = await open(temp, 'wx');
        try {
          await file.writeFile(bytes);
          await this.disk.fault('blob:temp-written');
          await this.disk.sync(file);
          await this.disk.fault('blob:temp-synced');
        } finally {
          await file.close();
        }
        await rename(temp, this.blobPath(hash));
        await this.disk.fault('blob:renamed');
        await this.disk.syncDir(objects);
      },
      () => unlink(temp),
    );
  }

  /** Saves bytes cut from the journal under lost/ (temp + fsync + rename), returns the path. */
  private async quarantine(bytes: Buffer, offset: number): Promise<string> {
    const lostDir = join(this.dir, 'lost');
    await mkdir(lostDir, { recursive: true });
    const path = join(lostDir, `journal-${new Date().toISOString().replace(/[:.]/g, '-')}-at-${offset}.bin`);
    const file = await open(`${path}.tmp`, 'w');
    try {
      await file.writeFile(bytes);
      await this.disk.sync(file);
    } finally {
      await file.close();
    }
    await rename(`${path}.tmp`, path);
    await this.disk.syncDir(lostDir);
    return path;
  }

  /** Runs a write; on a real I/O error undoes it with `undo` and rethrows; a simulated crash ends the store as a crash would. */
  private async guard(run: () => Promise<void>, undo: () => Promise<unknown>): Promise<void> {
    try {
      await run();
    } catch (error) {
      if (error instanceof Crash) {
        this.crashed = true;
        const journal = this.journal;
        this.journal = undefined;
        await journal?.close().catch(() => {});
        throw error.error;
      }
      await undo().catch(() => {});
      throw error;
    }
  }

  private assertOpen(): void {
    if (!this.journal) throw new StoreClosed(this.crashed ? `release store ${this.dir} crashed (simulated)` : `release store ${this.dir} is not open`);
  }

  private blobPath(hash: SourceHash): string {
    return join(this.dir, 'objects', hash);
  }
}
