/**
 * The release store under real crashes: a child process (the built dist code) runs a fixed
 * workload and is killed with SIGKILL at one write point — every occurrence of every point the
 * workload passes. Then this process opens the store (taking over the dead child's lock) and checks
 * that what the child was told is durable is there, that at most the one record in flight is
 * missing, that the state is exactly the replay of a prefix of the full run, and that a second
 * open is clean and the store takes new releases. Needs `npm run build` first (npm test does it).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DirectoryReleaseStore } from '../src/host/release-store/directory.js';
import { replay } from '../src/host/release-store/replay.js';
import type { JournalRecord } from '../src/host/release-store/store.js';

const DIST = resolve('dist/src/host/release-store/directory.js');
const CHILD = resolve('test/fixtures/release-store/crash-child.mjs');

interface Run {
  signal: NodeJS.Signals | null;
  code: number | null;
  lines: string[];
}

function runChild(dir: string, point?: string, occurrence?: number): Promise<Run> {
  return new Promise((done, fail) => {
    const args = [CHILD, pathToFileURL(DIST).href, dir, ...(point ? [point, String(occurrence)] : [])];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    child.on('error', fail);
    child.on('close', (code, signal) => {
      if (code) fail(new Error(`child failed (${code}): ${err}`));
      else done({ signal, code, lines: out.split('\n').filter(Boolean) });
    });
  });
}

const lastAck = (lines: string[]): number => {
  const acks = lines.filter((l) => l.startsWith('ack ')).map((l) => Number(l.slice(4)));
  return acks.length ? acks[acks.length - 1]! : -1;
};
const strip = (records: JournalRecord[]): unknown[] => records.map(({ at: _at, ...rest }) => rest);

let root: string;
let reference: JournalRecord[];
let points: { point: string; occurrence: number }[];

beforeAll(async () => {
  if (!existsSync(DIST)) throw new Error(`${DIST} is missing: build first (npm run build)`);
  root = mkdtempSync(join(tmpdir(), 'subnode-release-crash-'));
  const clean = join(root, 'clean');
  const run = await runChild(clean);
  expect(run.lines[run.lines.length - 1]).toBe('done');
  const counts = new Map<string, number>();
  points = [];
  for (const line of run.lines.filter((l) => l.startsWith('point '))) {
    const point = line.slice(6);
    counts.set(point, (counts.get(point) ?? 0) + 1);
    points.push({ point, occurrence: counts.get(point)! });
  }
  const store = new DirectoryReleaseStore(clean);
  const opened = await store.open();
  expect(opened.lost).toEqual([]);
  reference = opened.records;
  await store.close();
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('release store: SIGKILL at every write point', () => {
  it('the workload passes every kind of write point', () => {
    expect(reference.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(new Set(points.map((p) => p.point))).toEqual(
      new Set([
        'format:temp-written',
        'format:renamed',
        'blob:temp-written',
        'blob:temp-synced',
        'blob:renamed',
        'journal:before-write',
        'journal:half-written',
        'journal:written',
        'journal:synced',
      ]),
    );
  });

  it('recovers a consistent prefix after a kill at each point', async () => {
    expect(points.length).toBeGreaterThan(25);
    for (const { point, occurrence } of points) {
      const where = `${point} #${occurrence}`;
      const dir = join(root, `${point.replace(':', '-')}-${occurrence}`);
      const run = await runChild(dir, point, occurrence);
      expect(run.signal, where).toBe('SIGKILL');
      const acked = lastAck(run.lines);
      expect(existsSync(join(dir, 'lock')), where).toBe(true); // the dead child's, stale now

      const store = new DirectoryReleaseStore(dir);
      const opened = await store.open();
      const kept = opened.records.length;
      // Everything acknowledged survived; at most the record in flight is missing.
      expect(kept, where).toBeGreaterThanOrEqual(Math.max(acked, 0));
      expect(kept, where).toBeLessThanOrEqual(Math.max(acked, 0) + 1);
      expect(strip(opened.records), where).toEqual(strip(reference.slice(0, kept)));
      expect(opened.state, where).toEqual(replay(reference.slice(0, kept)));
      if (point === 'journal:half-written') {
        expect(
          opened.lost.map((l) => [l.seq, l.reason]),
          where,
        ).toEqual([[acked + 1, 'torn']]);
        expect(opened.quarantined && existsSync(opened.quarantined), where).toBe(true);
      } else {
        expect(opened.lost, where).toEqual([]);
      }
      for (const r of opened.records) {
        if (r.kind === 'release') for (const s of r.steps) if (s.kind === 'load') await expect(store.getSource(s.hash)).resolves.toContain('exports.vsn');
      }
      expect(
        readdirSync(join(dir, 'objects')).filter((f) => f.startsWith('.tmp-')),
        where,
      ).toEqual([]);
      // The store goes on: the next record gets the next seq.
      const hash = await store.putSource('exports.after = true;\n');
      const seq = await store.append({ kind: 'load', node: 'z', module: 'after', version: 1, hash });
      expect(seq, where).toBe(kept + 1);
      await store.close();

      const again = new DirectoryReleaseStore(dir);
      const second = await again.open();
      expect(second.lost, where).toEqual([]);
      expect(second.records.length, where).toBe(kept + 1);
      await again.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
