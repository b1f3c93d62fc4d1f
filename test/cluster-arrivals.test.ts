// Who may say where a moved process runs, or that it ended (src/cluster/moves.ts), on a stand-in
// for the system: arrivals a driver's notice would confirm do not outlive a move that sends none,
// only the pids a driver asked to move count whatever the node answers, and an end is taken only
// of a process this host does not know runs on a node of its own.
import { describe, expect, it } from 'vitest';
import { Moves } from '../src/cluster/moves.js';
import { movedIn } from '../src/cluster/control.js';
import type { ClusterEvent, ClusterHost } from '../src/cluster/hooks.js';
import type { MoveEnd, ProcessLocation } from '../src/host/migration.js';
import type { Pid } from '../src/kernel/pid.js';
import { until } from './helpers/wait.js';

const P = '<a1.1.7>' as Pid;

/** This host is C, with node c1; `where` is its registry of moves. */
function fake(arrivalMs = 60_000, now: () => number = Date.now) {
  const where = new Map<Pid, ProcessLocation>();
  const events: ClusterEvent[] = [];
  const told: [string, string[], unknown][] = [];
  const system = {
    local: () => [{ name: 'c1' }],
    locate: (pid: Pid): ProcessLocation => where.get(pid) ?? { pid, node: 'a1', home: 'a1', moves: 0, path: ['a1'] },
    moved: (location: ProcessLocation) => {
      const known = where.get(location.pid);
      if (known && known.moves >= location.moves) return false;
      where.set(location.pid, location);
      return true;
    },
    ended: (end: MoveEnd) => {
      const known = where.get(end.pid);
      if (!known || known.moves > end.moves) return false;
      return where.delete(end.pid);
    },
    movedTo: () => [],
  } as unknown as ClusterHost;
  const moves = new Moves(
    system,
    {
      hosts: () => ['A', 'B'],
      hostOf: (node) => ({ a1: 'A', b1: 'B' })[node],
      tell: (hosts, location) => told.push(['moved', hosts, location]),
      tellEnded: (hosts, end) => told.push(['ended', hosts, end]),
    },
    (e) => events.push(e),
    arrivalMs,
    now,
  );
  return { moves, where, events, told };
}

const at = (node: string, moves: number, path: string[]): ProcessLocation => ({ pid: P, node, home: 'a1', moves, path });
const forged = (events: ClusterEvent[]) =>
  events.filter((e) => e.type === 'forged').map((e) => (e as { host: string; node: string }).host + ' ' + (e as { node: string }).node);

describe('arrivals', () => {
  it('an aborted move (its copy killed here, no notice ever) leaves no arrival behind once its deadline passes', async () => {
    const { moves } = fake(50);
    moves.arrived('A', 'c1', [P]);
    moves.ended(P, 'c1', undefined);
    expect(moves.waiting).toBe(1);
    await until('the arrival expired', () => moves.waiting === 0, 5_000);
  });

  it("a driver's notice within the deadline is taken; after it, it is not (reported forged)", () => {
    let now = 0;
    const { moves, where, events } = fake(60_000, () => now);
    moves.arrived('A', 'c1', [P]);
    expect(moves.heard(['!moved', at('c1', 1, ['a1', 'c1'])], 'A', 'C')).toBe(true);
    expect(where.get(P)?.node).toBe('c1');
    expect(moves.waiting).toBe(0);
    const Q = '<a1.1.8>' as Pid;
    moves.arrived('A', 'c1', [Q]);
    now = 60_001;
    expect(moves.heard(['!moved', { ...at('c1', 1, ['a1', 'c1']), pid: Q }], 'A', 'C')).toBe(false);
    expect(forged(events)).toEqual(['A c1']);
    expect(moves.waiting).toBe(0);
  });

  it("counts only the pids the driver asked to move, whatever the node's answer (an isolate's is untrusted)", () => {
    const Q = '<a1.1.8>';
    const snapshots = [{ pid: P }, { pid: Q }];
    expect(
      movedIn(snapshots, [
        { pid: P, ok: {} },
        { pid: '<z9.1.1>', ok: {} },
        { pid: Q, error: {} },
        { pid: P, ok: {} },
      ]),
    ).toEqual([P]);
    for (const answer of [null, 'ok', 42, [null, 7, 'x', { ok: 1 }], { 0: { pid: P, ok: {} } }]) expect(movedIn(snapshots, answer)).toEqual([]);
    expect(movedIn('not snapshots', [{ pid: P, ok: {} }])).toEqual([]);
  });
});

describe('ends', () => {
  it('a host that owns b1 says a process this host runs on c1 ended on b1: ignored and reported, whatever its move count', () => {
    const { moves, where, events } = fake();
    where.set(P, at('c1', 2, ['a1', 'b1', 'c1']));
    expect(moves.heard(['!ended', { pid: P, node: 'b1', moves: 99 }], 'B', 'B')).toBe(false);
    expect(moves.heard(['!ended', { pid: P, node: 'b1', moves: 2 }], 'B', 'B')).toBe(false);
    expect(where.get(P)?.node).toBe('c1');
    expect(forged(events)).toEqual(['B b1', 'B b1']);
  });

  it('of a process elsewhere, an end after as many moves must name the node it runs on; one after more moves is taken', () => {
    const { moves, where, events } = fake();
    where.set(P, at('a1', 2, ['a1', 'b1', 'a1']));
    expect(moves.heard(['!ended', { pid: P, node: 'b1', moves: 2 }], 'B', 'B')).toBe(false);
    expect(forged(events)).toEqual(['B b1']);
    where.set(P, at('b1', 2, ['a1', 'c1', 'b1']));
    expect(moves.heard(['!ended', { pid: P, node: 'b1', moves: 2 }], 'B', 'B')).toBe(true);
    where.set(P, at('a1', 1, ['x1', 'a1']));
    expect(moves.heard(['!ended', { pid: P, node: 'b1', moves: 3 }], 'B', 'B')).toBe(true);
    expect(where.has(P)).toBe(false);
  });

  it("a move out of this host's node that another host drove is learned when its commit runs here, so the end the new host tells (before its own notice: it ended as it arrived) is taken", () => {
    const { moves, where, events } = fake();
    where.set(P, at('c1', 2, ['a1', 'b1', 'c1']));
    moves.departed('A', 'c1', [P, '<a1.1.9>' as Pid], 'b1');
    expect(where.get(P)).toEqual(at('b1', 3, ['a1', 'b1', 'c1', 'b1']));
    // A pid this host locates elsewhere learns nothing from a commit on c1.
    expect(where.has('<a1.1.9>' as Pid)).toBe(false);
    expect(moves.heard(['!ended', { pid: P, node: 'b1', moves: 3 }], 'B', 'B')).toBe(true);
    expect(forged(events)).toEqual([]);
  });
});
