/**
 * The release store's writes to disk: fsync of files and directories (unless a throwaway store
 * turned it off), and the write points where a test injects a crash.
 */
import { open, stat, type FileHandle } from 'node:fs/promises';
import type { Faults, WritePoint } from './store.js';

export interface DiskOptions {
  /** Crash injection for tests: called at every write point. */
  faults?: Faults;
  /** Durability: `true` (default) fsyncs files and directories; `false` only for throwaway stores. */
  fsync?: boolean;
}

/** A fault hook's exception, passed through untouched: the "process" died there, so no cleanup runs. */
export class Crash {
  constructor(readonly error: unknown) {}
}

/** How one store writes: every sync goes through it, and every write point a crash may be injected at. */
export class Disk {
  constructor(private readonly options: DiskOptions = {}) {}

  /** A write point: a test's fault hook may end the "process" here (as a Crash). */
  async fault(point: WritePoint): Promise<void> {
    if (!this.options.faults) return;
    try {
      await this.options.faults.at(point);
    } catch (error) {
      throw new Crash(error);
    }
  }

  /** A test injects crashes: writes are split so one can land between their halves. */
  get injectsFaults(): boolean {
    return Boolean(this.options.faults);
  }

  async sync(file: FileHandle): Promise<void> {
    if (this.options.fsync !== false) await file.sync();
  }

  async datasync(file: FileHandle): Promise<void> {
    if (this.options.fsync !== false) await file.datasync();
  }

  async syncDir(path: string): Promise<void> {
    if (this.options.fsync === false) return;
    const dir = await open(path, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }
}

export async function writeAll(file: FileHandle, bytes: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await file.write(bytes, done, bytes.length - done, position + done);
    done += bytesWritten;
  }
}

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}
