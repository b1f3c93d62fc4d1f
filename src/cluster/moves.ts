/**
 * Where moved processes run, across hosts (README: Locating). The host that runs a moved process
 * is the one that tells the others where it is: its knowledge lives and dies with the process, so
 * a host that joins later, or comes back as a new process, or after a partition, hears it from
 * the one host that is right, and hears nothing of processes that died with their host.
 *
 * - A move this host drove: the host that runs the process now is told; if that is this host,
 *   every host is.
 * - A move heard of: learned; if the process runs on a node of this host, every other host hears
 *   it from here (so a host the driver did not know yet is told too).
 * - A host taken up (joining, restarted, back after a partition): it hears every moved process
 *   that runs on a node of this host.
 * - A moved process that ends on a node of this host: every other host hears the end, and forgets
 *   the move (unless it knows a later one). Only the host that owns the node it ended on may say
 *   so, and not of a process this host knows runs on a node of its own (it learns a move out of
 *   its nodes when it runs the move's commit, before any end of it can come).
 * - A move into a node of this host that another host drove (an arrival) waits for that host's
 *   notice for a bounded time only (an aborted move or a lost notice sends none).
 *
 * Who may say so: a notice is taken only from the host that owns the node it names (the node the
 * process runs on, or ended on), or, for a node of this host, from the host that drove the move
 * into it (this host ran that move's migrate-in at its request: an arrival). Anything else is
 * reported as `forged` and ignored. The owner of a node not announced yet is looked up in the node
 * names bucket (src/cluster/inbound.ts), so a late joiner that hears moves first still learns them.
 *
 * Together these leave no gap: a host that runs a moved process either knows a newcomer when it
 * learns of the move (and tells it then) or takes the newcomer up later (and tells it then).
 * Notices travel in the per-host data queues, so they come after what the same host sent before
 * (a node's down notice after the moves into it, an end after the move); notices from different
 * hosts may cross, which the registry settles by the move count (a location older than the one
 * known is not taken, an end older than it does not erase it).
 */
import { isPid, nodeOf, type Pid } from '../kernel/pid.js';
import type { MoveEnd, ProcessLocation } from '../host/migration.js';
import type { ClusterEvent, ClusterHost } from './hooks.js';
import type { MoveNotice } from '../net/frames.js';

export interface MovesView {
  /** The other hosts alive now. */
  hosts(): string[];
  /** The live host of a node of another host. */
  hostOf(node: string): string | undefined;
  /** Tells `hosts` where a process runs now (a notice in their data queues). */
  tell(hosts: string[], location: ProcessLocation): void;
  /** Tells `hosts` that a moved process ended (a notice in their data queues). */
  tellEnded(hosts: string[], end: MoveEnd): void;
}

/** Moves into a node of this host that another host drove, whose notice has not come yet. */
interface Arrival {
  driver: string;
  /** Migrate-ins not confirmed yet (a process may come to the same node again before the first notice). */
  count: number;
  /** The process ended there before its notice came. */
  ended: boolean;
  /** After this (ms, `now()`), no notice is waited for: the move was aborted, or its notice lost. */
  until: number;
}

export class Moves {
  /** `pid node` → the arrival its driver's notice will confirm. */
  private readonly arrivals = new Map<string, Arrival>();
  /** Sweeps expired arrivals while there are any (unref'd: it holds nothing up). */
  private sweeper: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly system: ClusterHost,
    private readonly view: MovesView,
    private readonly emit: (event: ClusterEvent) => void,
    /**
     * How long an arrival waits for its driver's notice, ms. The driver sends it once its commit
     * is answered, within a request's deadline; an aborted move (the source went down, its copies
     * here were killed) or a lost notice sends none, so the arrival goes after this.
     */
    private readonly arrivalMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** A move this host drove (its registry knows it already). */
  driven(location: ProcessLocation): void {
    if (this.local(location.node)) return this.view.tell(this.view.hosts(), location);
    const host = this.view.hostOf(location.node);
    if (host !== undefined) this.view.tell([host], location);
  }

  /** Host `driver` moved `pids` into this host's `node` (their migrate-in ran here): its notice for each is expected. */
  arrived(driver: string, node: string, pids: Pid[]): void {
    this.sweep();
    const until = this.now() + this.arrivalMs;
    for (const pid of pids) {
      const key = `${pid} ${node}`;
      const arrival = this.arrivals.get(key);
      if (arrival?.driver === driver) {
        arrival.count++;
        arrival.until = until;
      } else this.arrivals.set(key, { driver, count: 1, ended: false, until });
    }
    this.armSweeper();
  }

  /**
   * Host `driver` moved `pids` out of this host's `node` to `to` (their commit ran here at its
   * request): where they run now, as the driver will tell the host that runs them. Learned here
   * at once, so an end that host tells (maybe before it learns the move: the process ended as it
   * arrived) finds the process where it ended, not on a node of this host.
   */
  departed(driver: string, node: string, pids: Pid[], to: string): void {
    // A move between two nodes of this host is learned from its driver's notice (and told on).
    if (this.local(to)) return;
    for (const pid of pids) {
      const known = this.system.locate(pid);
      if (known.node !== node) continue;
      this.system.moved({ pid, node: to, home: known.home, moves: known.moves + 1, path: [...known.path, to] }, driver);
    }
  }

  /**
   * A notice from host `from`, where `owner` is the host that owns the node it names (undefined:
   * none). True if it was news.
   */
  heard([kind, body]: MoveNotice, from: string, owner: string | undefined): boolean {
    if (kind === '!ended') {
      if (!isEnd(body) || owner !== from) return this.forged(body, from);
      // Where this host knows it runs: on a node of this host, only this host can say it ended (it
      // learns a move out of its nodes when it runs the commit); after as many moves, only where it ran.
      const known = this.system.locate(body.pid);
      if (known.node !== body.node && (this.local(known.node) || known.moves === body.moves)) return this.forged(body, from);
      return this.system.ended(body);
    }
    if (!isLocation(body)) return this.forged(body, from);
    if (owner !== from) {
      const arrival = this.local(body.node) ? this.confirm(body.pid, body.node, from) : undefined;
      if (arrival === undefined) return this.forged(body, from);
      // It ended here before the driver said it came: the driver (and whoever it told) hears the end.
      if (arrival.ended) {
        this.view.tellEnded(this.view.hosts(), { pid: body.pid, node: body.node, moves: body.moves });
        return false;
      }
    }
    const news = this.system.moved(body, from);
    if (news && this.local(body.node))
      this.view.tell(
        this.view.hosts().filter((h) => h !== from),
        body,
      );
    return news;
  }

  /** A migrated process ended on `node` of this host; `known`: where this host knew it ran (undefined if it did not). */
  ended(pid: Pid, node: string, known: ProcessLocation | undefined): void {
    this.sweep();
    const arrival = this.arrivals.get(`${pid} ${node}`);
    if (arrival) arrival.ended = true;
    if (known) this.view.tellEnded(this.view.hosts(), { pid, node, moves: known.moves });
  }

  /** A host taken up: where the moved processes of this host's nodes run. */
  hostUp(host: string): void {
    for (const node of this.system.local()) for (const location of this.system.movedTo(node.name)) this.view.tell([host], location);
  }

  /** A host that left or restarted sends no notice from before: the arrivals it drove are not waited for. */
  hostGone(host: string): void {
    for (const [key, arrival] of this.arrivals) if (arrival.driver === host) this.arrivals.delete(key);
  }

  /** A node of this host went down, with every process that had arrived on it. */
  nodeDown(node: string): void {
    for (const key of this.arrivals.keys()) if (key.endsWith(` ${node}`)) this.arrivals.delete(key);
  }

  /** Arrivals waiting for their notice (for tests: the map must not keep what no notice will confirm). */
  get waiting(): number {
    return this.arrivals.size;
  }

  /** This host leaves: nothing is swept any more. */
  stop(): void {
    clearTimeout(this.sweeper);
    this.sweeper = undefined;
    this.arrivals.clear();
  }

  /** The arrival of `pid` on `node` that `driver`'s notice confirms, if this host ran it. */
  private confirm(pid: Pid, node: string, driver: string): Arrival | undefined {
    this.sweep();
    const key = `${pid} ${node}`;
    const arrival = this.arrivals.get(key);
    if (arrival?.driver !== driver) return undefined;
    if (--arrival.count === 0) this.arrivals.delete(key);
    return arrival;
  }

  /** Drops the arrivals whose notice is past waiting for. */
  private sweep(): void {
    const now = this.now();
    for (const [key, arrival] of this.arrivals) if (arrival.until <= now) this.arrivals.delete(key);
  }

  private armSweeper(): void {
    if (this.sweeper !== undefined) return;
    this.sweeper = setTimeout(() => {
      this.sweeper = undefined;
      this.sweep();
      if (this.arrivals.size) this.armSweeper();
    }, this.arrivalMs);
    this.sweeper.unref?.();
  }

  private forged(body: unknown, from: string): false {
    const node = (body as { node?: unknown } | null)?.node;
    this.emit({ type: 'forged', host: from, node: typeof node === 'string' ? node : '', dropped: 0 });
    return false;
  }

  private local(node: string): boolean {
    return this.system.local().some((h) => h.name === node);
  }
}

const LOCATION_KEYS = ['home', 'moves', 'node', 'path', 'pid'].join();
const END_KEYS = ['moves', 'node', 'pid'].join();

const keysOf = (value: unknown): string | undefined => (value && typeof value === 'object' ? Object.keys(value).sort().join() : undefined);

/** A location as a host tells it: exactly the fields of a ProcessLocation, consistent with each other. */
function isLocation(value: unknown): value is ProcessLocation {
  if (keysOf(value) !== LOCATION_KEYS) return false;
  const { pid, node, home, moves, path } = value as ProcessLocation;
  return (
    isPid(pid) &&
    home === nodeOf(pid) &&
    typeof node === 'string' &&
    Number.isInteger(moves) &&
    moves >= 0 &&
    Array.isArray(path) &&
    path.length === moves + 1 &&
    path.every((n) => typeof n === 'string') &&
    path[0] === home &&
    path[path.length - 1] === node
  );
}

/** An end as a host tells it: exactly the fields of a MoveEnd, of a process that moved at least once. */
function isEnd(value: unknown): value is MoveEnd {
  if (keysOf(value) !== END_KEYS) return false;
  const { pid, node, moves } = value as MoveEnd;
  return isPid(pid) && typeof node === 'string' && Number.isInteger(moves) && moves >= 1;
}
