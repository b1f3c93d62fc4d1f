/**
 * The release store's format record: which layout a store holds, written once, checked on open —
 * the rule for both stores, and the directory's format file.
 */
import { open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { StoreCorrupt, StoreFormatTooNew } from './errors.js';
import { exists, type Disk } from './disk.js';

/** The journal/blob layout this code writes; a store with a higher number is refused. */
export const FORMAT_VERSION = 1;
/** What a store's format record names itself (the directory's format file, the JetStream store's format key). */
export const STORE_TAG = 'subnode-release-store';
/** The format record a new store is given. */
export const FORMAT_RECORD = JSON.stringify({ store: STORE_TAG, format: FORMAT_VERSION });

/** Checks `<dir>/format`, or writes it for a new store (a journal without one is corrupt). */
export async function checkFormat(dir: string, disk: Disk): Promise<void> {
  const path = join(dir, 'format');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    if (await exists(join(dir, 'journal'))) throw new StoreCorrupt(`release store ${dir} has a journal but no format file`, { dir: dir });
    await writeFormat(dir, path, disk);
    return;
  }
  checkFormatRecord(text, dir, 'format file');
}

/**
 * Checks a store's format record (the directory's format file, the JetStream store's format key),
 * read from `where`: StoreCorrupt unless it names a release store, StoreFormatTooNew when it was
 * written by a newer format than this code reads.
 */
export function checkFormatRecord(text: string, where: string, what: string): void {
  let format: { store?: unknown; format?: unknown };
  try {
    format = JSON.parse(text) as typeof format;
  } catch {
    throw new StoreCorrupt(`release store ${where}: the ${what} is not JSON`, { dir: where });
  }
  if (!format || format.store !== STORE_TAG || !Number.isInteger(format.format) || (format.format as number) < 1) {
    throw new StoreCorrupt(`${where} is not a subnode release store (${what} ${JSON.stringify(text.slice(0, 80))})`, { dir: where });
  }
  if ((format.format as number) > FORMAT_VERSION) throw new StoreFormatTooNew(where, format.format as number, FORMAT_VERSION);
}

async function writeFormat(dir: string, path: string, disk: Disk): Promise<void> {
  const temp = `${path}.tmp`;
  const file = await open(temp, 'w');
  try {
    await file.writeFile(`${FORMAT_RECORD}\n`);
    await disk.sync(file);
  } finally {
    await file.close();
  }
  await disk.fault('format:temp-written');
  await rename(temp, path);
  await disk.fault('format:renamed');
  await disk.syncDir(dir);
}
