/**
 * Process migration, host side: drives the three steps (out, in, commit or abort) on the two
 * nodes, in batches, and keeps the registry of where moved processes live. The pid never
 * changes: the process's home node (the one its pid names) forwards to wherever it went, so
 * senders, names, links and monitors keep working and per-sender order holds.
 *
 * The conversion rule is the hot-upgrade one: the target version's
 * `codeChange(fromVsn, state, extra)` converts the state whenever the two vsns differ.
 */
import { BadArgument, NodeDown, Refused, toWire, type WireError } from '../errors.js';
import { nodeOf, isPid, type Pid } from '../kernel/pid.js';
import type { Forward, MigrationOutcome, MigrationSnapshot } from '../kernel/types.js';
import type { Events } from './events.js';
import type { NodeHandle } from './node-handle.js';
import { askArrived, withdrawCopies } from './migration-unanswered.js';

export interface MigrateOptions {
  /** Passed to the target's codeChange as `extra`. */
  extra?: unknown;
  /** Limit for each conversion, ms (default 5000). */
  timeoutMs?: number;
}

export interface MigrationResult {
  pid: Pid;
  from: string;
  to: string;
  ok: boolean;
  /** The vsns the state was converted between (equal when no conversion ran). */
  vsn?: { from: unknown; to: unknown };
  moves?: number;
  /**
   * The target's answer to the move was lost (its request failed as a whole); asked afterwards,
   * the target said the process runs there. `vsn` is then unknown (absent).
   */
  unanswered?: true;
  /** Why it stayed where it was. */
  error?: WireError;
}

export interface BulkMigration {
  from: string;
  to: string;
  /** Processes using this module: servers and statems with it as a callback module, raw processes in its code. */
  module?: string;
  /** Or exactly these pids. */
  pids?: Pid[];
  extra?: unknown;
  timeoutMs?: number;
  /** Processes per round trip (default 1000). */
  batch?: number;
  /** Called after each batch: moved so far, total. */
  onProgress?(done: number, total: number): void;
}

export interface ProcessLocation {
  pid: Pid;
  /** The node that runs it now. */
  node: string;
  /** The node its pid names, which forwards to it. */
  home: string;
  moves: number;
  /** Nodes it has run on, oldest first, ending with `node`. */
  path: string[];
}

/** A moved process ended, as the host that ran it tells: where, after how many moves. */
export type MoveEnd = Pick<ProcessLocation, 'pid' | 'node' | 'moves'>;

export class Migrations {
  private readonly where = new Map<Pid, ProcessLocation>();
  /** The name each moved process left registered on its home node: a restarted home gets it back. */
  private readonly homeNames = new Map<Pid, string>();
  /** Migrated processes that went down with the node they had moved to (their pids name live nodes). */
  private readonly lost = new Set<Pid>();

  constructor(
    private readonly node: (name: string) => NodeHandle,
    private readonly events: Events,
  ) {}

  /** The node a process runs on now: `locate(pid).node` without a copy of its location (each `system.call` asks). */
  nodeNow(pid: Pid): string {
    return this.where.get(pid)?.node ?? nodeOf(pid);
  }

  /** Where a process runs now (its home node unless it moved). */
  locate(pid: Pid): ProcessLocation {
    if (!isPid(pid)) throw new BadArgument(`not a pid: ${JSON.stringify(pid)}`);
    const known = this.where.get(pid);
    if (known) return { ...known, path: [...known.path] };
    const home = nodeOf(pid);
    return { pid, node: home, home, moves: 0, path: [home] };
  }

  /** Forwarding entries a restarted home node needs back: where each moved process lives, and the name it left there. */
  forwardsHomedAt(node: string): Forward[] {
    const out: Forward[] = [];
    for (const loc of this.where.values()) {
      if (loc.home !== node || loc.node === node) continue;
      const name = this.homeNames.get(loc.pid);
      out.push(name === undefined ? [loc.pid, loc.node] : [loc.pid, loc.node, name]);
    }
    return out;
  }

  /** A node went down: the migrated processes that were running there are gone; returns their pids. */
  nodeDown(node: string): Pid[] {
    const lost: Pid[] = [];
    for (const [pid, loc] of this.where) {
      if (loc.node !== node) continue;
      this.where.delete(pid);
      this.homeNames.delete(pid);
      this.lost.add(pid);
      lost.push(pid);
    }
    return lost;
  }

  /**
   * A node of another host of the cluster went down, or its host is gone to this one: the moves
   * into it are forgotten here (`locate` answers the home node, as on a host that never heard of
   * them). Not marked lost: a host only cut off (a partition) tells them again when taken up.
   */
  forgetMovesTo(node: string): void {
    for (const [pid, loc] of this.where) {
      if (loc.node !== node) continue;
      this.where.delete(pid);
      this.homeNames.delete(pid);
    }
  }

  /** Whether a migrated process went down with the node it had moved to. */
  isLost(pid: Pid): boolean {
    return this.lost.has(pid);
  }

  /**
   * A move another host of the cluster told of: where the process runs now. Hosts may tell of a
   * process's moves in any order, so a location older (fewer moves) than the one known is not
   * taken, nor one of a process that went down with its node. A process moved back home keeps its
   * record (with its moves), as the driving host keeps it. True if it was news.
   */
  learn(location: ProcessLocation): boolean {
    const known = this.where.get(location.pid);
    if (this.lost.has(location.pid) || (known && (known.moves > location.moves || (known.moves === location.moves && known.node === location.node))))
      return false;
    this.where.set(location.pid, { ...location, path: [...location.path] });
    return true;
  }

  /** The moved processes that run on `node` now, as this registry knows them. */
  movedTo(node: string): ProcessLocation[] {
    const out: ProcessLocation[] = [];
    for (const loc of this.where.values()) if (loc.node === node) out.push({ ...loc, path: [...loc.path] });
    return out;
  }

  /** A migrated process ended: returns where it was known to run, if it was. */
  ended(pid: Pid): ProcessLocation | undefined {
    const known = this.where.get(pid);
    this.where.delete(pid);
    this.homeNames.delete(pid);
    return known;
  }

  /**
   * Another host of the cluster told that a moved process ended (`end`): forgotten here, unless a
   * later move is known (a location with more moves than the end's came after it, so it is not
   * this end's to erase). True if it forgot one.
   */
  learnEnded(end: MoveEnd): boolean {
    const known = this.where.get(end.pid);
    if (!known || known.moves > end.moves) return false;
    this.where.delete(end.pid);
    this.homeNames.delete(end.pid);
    return true;
  }

  /** How many moved processes this registry knows where to find (for tests: it must not grow with processes that ended). */
  get known(): number {
    return this.where.size;
  }

  async migrate(pids: Pid[], to: string, options: MigrateOptions = {}): Promise<MigrationResult[]> {
    const target = this.node(to);
    const byNode = new Map<string, Pid[]>();
    for (const pid of pids) {
      const from = this.locate(pid).node;
      if (!byNode.has(from)) byNode.set(from, []);
      byNode.get(from)!.push(pid);
    }
    const results: MigrationResult[] = [];
    for (const [from, group] of byNode) {
      if (from === to) {
        for (const pid of group) results.push({ pid, from, to, ok: false, error: new Refused(`${pid} already runs on node '${to}'`).toWire() });
        continue;
      }
      results.push(...(await this.moveWithRetries(this.node(from), target, group, options)));
    }
    return results;
  }

  /**
   * Some refusals are moments, not reasons (a process between two steps, one still receiving from
   * its previous node): those are tried again, with a growing pause, until `timeoutMs`.
   */
  private async moveWithRetries(source: NodeHandle, target: NodeHandle, pids: Pid[], options: MigrateOptions): Promise<MigrationResult[]> {
    const deadline = Date.now() + (options.timeoutMs ?? 5_000);
    const final = new Map<Pid, MigrationResult>();
    let todo = pids;
    for (let pause = 1; todo.length; pause = Math.min(pause * 2, 50)) {
      const round = await this.moveGroup(source, target, todo, options);
      todo = [];
      for (const r of round) {
        const retry = !r.ok && (r.error?.details as { retry?: boolean } | undefined)?.retry === true && Date.now() < deadline;
        if (retry) todo.push(r.pid);
        else final.set(r.pid, r);
      }
      if (todo.length) await new Promise((resolve) => setTimeout(resolve, pause));
    }
    return pids.map((pid) => final.get(pid)!);
  }

  async migrateAll(spec: BulkMigration): Promise<MigrationResult[]> {
    if (!spec || typeof spec.from !== 'string' || typeof spec.to !== 'string') throw new BadArgument('migrateAll needs { from, to, module? | pids? }');
    if (spec.module === undefined && spec.pids === undefined) throw new BadArgument('migrateAll needs a module or a list of pids');
    const source = this.node(spec.from);
    this.node(spec.to);
    let pids = spec.pids ?? [];
    if (spec.module !== undefined) {
      const servers = await source.behavioursOf(spec.module);
      const raw = (await source.processes()).filter((p) => !p.behaviour && p.versions.some((v) => v.module === spec.module)).map((p) => p.pid);
      pids = [...new Set([...pids, ...servers, ...raw])];
    }
    const batch = Math.max(1, spec.batch ?? 1000);
    const results: MigrationResult[] = [];
    // Every pid gets a result, moved or not, whatever fails on the way (a node going down mid-way).
    for (let i = 0; i < pids.length; i += batch) {
      const group = pids.slice(i, i + batch);
      try {
        results.push(...(await this.migrate(group, spec.to, spec)));
      } catch (error) {
        const failure = toWire(error);
        for (const pid of group) results.push({ pid, from: spec.from, to: spec.to, ok: false, error: failure });
      }
      spec.onProgress?.(Math.min(i + batch, pids.length), pids.length);
    }
    return results;
  }

  private async moveGroup(source: NodeHandle, target: NodeHandle, pids: Pid[], options: MigrateOptions): Promise<MigrationResult[]> {
    const from = source.name;
    const to = target.name;
    const results = new Map<Pid, MigrationResult>();
    const fail = (pid: Pid, error: WireError): void => {
      results.set(pid, { pid, from, to, ok: false, error });
    };
    if (target.status !== 'running') {
      for (const pid of pids) fail(pid, new NodeDown(`node '${to}' is ${target.status}`).toWire());
      return pids.map((pid) => results.get(pid)!);
    }
    // 1. out: suspended at a safe point, snapshots taken; their messages keep queueing at the source.
    const incarnation = source.creation;
    let outs: MigrationOutcome<MigrationSnapshot>[];
    try {
      outs = await source.migrateOut(pids);
    } catch (error) {
      for (const pid of pids) fail(pid, toWire(error));
      return pids.map((pid) => results.get(pid)!);
    }
    const snapshots: MigrationSnapshot[] = [];
    const names = new Map<Pid, string>();
    for (const o of outs) {
      if ('ok' in o) {
        snapshots.push(o.ok);
        // Leaving its home, a registered process leaves its name there (forwarded to it).
        if (o.ok.name !== undefined && nodeOf(o.pid) === from) names.set(o.pid, o.ok.name);
      } else fail(o.pid, o.error);
    }
    // 2. in: converted and started on the target under the same pids.
    let ins: MigrationOutcome<{ from: unknown; to: unknown; awaitDrain: boolean } | 'unanswered'>[] = [];
    if (snapshots.length) {
      try {
        ins = await target.migrateIn(snapshots, options.extra, options.timeoutMs);
      } catch (error) {
        ins = await this.settleUnanswered(target, snapshots, from, toWire(error), options);
      }
    }
    // The source went down while they were suspended: it was reported, with their DOWNs, as gone.
    // Copies started on the target would be duplicates of processes the system saw die.
    if (source.creation !== incarnation || source.status !== 'running') {
      const gone = new NodeDown(`node '${from}' went down during the move`, { node: from }).toWire();
      for (const i of ins) {
        if ('ok' in i) target.exit(i.pid, 'kill').catch(() => {});
        fail(i.pid, gone);
      }
      return pids.map((pid) => results.get(pid)!);
    }
    const arrived: Pid[] = [];
    const refused: Pid[] = [];
    const awaitDrain: Pid[] = [];
    for (const i of ins) {
      if ('ok' in i) {
        arrived.push(i.pid);
        const before = this.locate(i.pid);
        // Unanswered, the target's word on it is unknown: it forwarded the pid (so sends the source
        // a Drained marker) unless it is the pid's home and the process never left it.
        if (i.ok === 'unanswered' ? nodeOf(i.pid) !== to || this.where.has(i.pid) : i.ok.awaitDrain) awaitDrain.push(i.pid);
        const loc: ProcessLocation = { pid: i.pid, node: to, home: before.home, moves: before.moves + 1, path: [...before.path, to] };
        this.where.set(i.pid, loc);
        if (names.has(i.pid)) this.homeNames.set(i.pid, names.get(i.pid)!);
        // Back home, it holds its name there as any process does.
        if (to === loc.home) this.homeNames.delete(i.pid);
        results.set(
          i.pid,
          i.ok === 'unanswered'
            ? { pid: i.pid, from, to, ok: true, moves: loc.moves, unanswered: true }
            : { pid: i.pid, from, to, ok: true, vsn: { from: i.ok.from, to: i.ok.to }, moves: loc.moves },
        );
      } else {
        refused.push(i.pid);
        fail(i.pid, i.error);
      }
    }
    // 3. commit the ones that arrived (forward what queued, then keep forwarding); the rest resume.
    // From here the ones that arrived run on the target, whatever happens to the source.
    if (arrived.length) await source.migrateCommit(arrived, to, awaitDrain).catch(() => {});
    if (refused.length) {
      await source.migrateAbort(refused).catch((error: unknown) => {
        for (const pid of refused) fail(pid, toWire(error));
      });
    }
    for (const pid of arrived) {
      const loc = this.where.get(pid)!;
      this.events.emit({ type: 'process_migrated', node: to, pid, from, to, moves: loc.moves });
    }
    return pids.map((pid) => results.get(pid)!);
  }

  /**
   * `migrateIn` failed as a whole (`error`), yet the target may have run it (migration-unanswered.ts):
   * the pids it says arrived count as arrived. If it says nothing within the conversion limit
   * (`timeoutMs`), every copy that may have started there is withdrawn (it leaves without dying),
   * and all count as refused (`details.uncertain`): the source resumes them, so a move never leaves
   * two live processes with one pid, as long as the target's host handles the withdrawal it was sent.
   */
  private async settleUnanswered(
    target: NodeHandle,
    snapshots: MigrationSnapshot[],
    from: string,
    error: WireError,
    options: MigrateOptions,
  ): Promise<MigrationOutcome<'unanswered'>[]> {
    const arrived = await askArrived(target, snapshots, from, options.timeoutMs ?? 5_000);
    if (arrived) return snapshots.map((s) => (arrived.has(s.pid) ? { pid: s.pid, ok: 'unanswered' } : { pid: s.pid, error }));
    await withdrawCopies(
      target,
      snapshots.map((s) => s.pid),
      from,
    );
    const uncertain = { ...error, details: { ...(error.details as object | undefined), uncertain: true } };
    return snapshots.map((s) => ({ pid: s.pid, error: uncertain }));
  }
}
