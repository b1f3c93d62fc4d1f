/**
 * One writer per store: `<dir>/lock` holds the owner's pid.
 *
 * The lock file appears with its content already in it: the pid is written and fsynced to a
 * private temp file, which is then hard-linked to `lock` — link() fails with EEXIST if the lock
 * exists, atomically, so two processes cannot both win and no one ever reads a half-written lock.
 * A lock whose pid is not a live process (the owner was killed) is stale: it is renamed away and
 * the acquisition retried. A lock that does not hold a pid at all cannot come from this code
 * (see above) and is treated as stale too.
 *
 * Limits: pids are only meaningful on one host (a store on a shared file system needs the
 * JetStream implementation), and a recycled pid makes a stale lock look live — remove it by hand.
 */
import { link, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { StoreLocked } from './errors.js';

export interface Lock {
  readonly path: string;
  release(): Promise<void>;
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function acquireLock(dir: string): Promise<Lock> {
  const path = join(dir, 'lock');
  const temp = join(dir, `.lock-${process.pid}-${Date.now()}.tmp`);
  await writeFile(temp, `${process.pid}\n`);
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await link(temp, path);
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 5) throw error;
      }
      const owner = await readOwner(path);
      if (owner === 'gone') continue;
      if (owner !== undefined && pidAlive(owner)) throw new StoreLocked(dir, owner);
      // Stale: take it over. The rename moves exactly one lock away; whoever loses a race retries.
      const stale = join(dir, `.lock-stale-${process.pid}-${attempt}`);
      try {
        await rename(path, stale);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw error;
      }
      // Between reading the owner and the rename, another process may have taken the stale lock
      // over: then what moved is its live lock — put it back and give up.
      const moved = await readOwner(stale);
      if (typeof moved === 'number' && moved !== owner && pidAlive(moved)) {
        await link(stale, path).catch(() => {});
        await unlink(stale).catch(() => {});
        throw new StoreLocked(dir, moved);
      }
      await unlink(stale).catch(() => {});
    }
  } finally {
    await unlink(temp).catch(() => {});
  }
  let released = false;
  return {
    path,
    async release() {
      if (released) return;
      released = true;
      if ((await readOwner(path)) === process.pid) await unlink(path).catch(() => {});
    },
  };
}

async function readOwner(path: string): Promise<number | undefined | 'gone'> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
    throw error;
  }
  const pid = Number(text.trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}
