/**
 * Numbers for the benchmark table: how long a durable append takes (one fsynced journal frame,
 * the source blob already stored) and how long opening a store of 100 releases takes (lock,
 * format check, journal scan, CRC and replay of every record, one stat per distinct source).
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { DirectoryReleaseStore } from './directory.js';

export interface StoreMeasurement {
  /** Median wall time of `append` for a single-load release, in ms. */
  appendMsMedian: number;
  /** Wall time of `open` on a store holding 100 releases (10 distinct sources), in ms. */
  openMsWith100Releases: number;
}

/** Runs in `dir` (created, and emptied first); `n` appends are timed. */
export async function measureStore(dir: string, n: number): Promise<StoreMeasurement> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const appendDir = join(dir, 'append');
  const store = new DirectoryReleaseStore(appendDir);
  await store.open();
  const hash = await store.putSource('exports.hello = () => "world";\n');
  const times: number[] = [];
  for (let i = 1; i <= n; i++) {
    const start = performance.now();
    await store.append({ kind: 'load', node: 'bench', module: 'm', version: i, hash, vsn: i });
    times.push(performance.now() - start);
  }
  await store.close();

  const openDir = join(dir, 'open');
  const writer = new DirectoryReleaseStore(openDir);
  await writer.open();
  const hashes: string[] = [];
  for (let s = 0; s < 10; s++) hashes.push(await writer.putSource(`exports.v = ${s};\n`));
  for (let i = 1; i <= 100; i++) {
    await writer.append({
      kind: 'plan',
      steps: ['a', 'b'].map((node) => ({ kind: 'load' as const, node, module: `m${i % 7}`, version: i, hash: hashes[i % 10]! })),
    });
  }
  await writer.close();
  const reader = new DirectoryReleaseStore(openDir);
  const start = performance.now();
  await reader.open();
  const openMs = performance.now() - start;
  await reader.close();
  await rm(dir, { recursive: true, force: true });
  return { appendMsMedian: median(times), openMsWith100Releases: openMs };
}

function median(values: number[]): number {
  if (!values.length) return 0;
  const sorted = [...values].sort((x, y) => x - y);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
