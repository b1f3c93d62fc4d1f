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
 *
 * Together these leave no gap: a host that runs a moved process either knows a newcomer when it
 * learns of the move (and tells it then) or takes the newcomer up later (and tells it then).
 * Notices travel in the per-host data queues, so they come after what the same host sent before
 * (a node's down notice after the moves into it); notices from different hosts may cross, which
 * the registry settles by the move count (a location older than the one known is not taken).
 */
import { isPid, nodeOf } from '../kernel/pid.js';
import type { ProcessLocation } from '../host/migration.js';
import type { ClusterEvent, ClusterHost } from './hooks.js';

export interface MovesView {
  /** The other hosts alive now. */
  hosts(): string[];
  /** The live host of a node of another host. */
  hostOf(node: string): string | undefined;
  /** Tells `hosts` where a process runs now (a notice in their data queues). */
  tell(hosts: string[], location: ProcessLocation): void;
}

export class Moves {
  constructor(
    private readonly system: ClusterHost,
    private readonly view: MovesView,
    private readonly emit: (event: ClusterEvent) => void,
  ) {}

  /** A move this host drove (its registry knows it already). */
  driven(location: ProcessLocation): void {
    if (this.local(location.node)) return this.view.tell(this.view.hosts(), location);
    const host = this.view.hostOf(location.node);
    if (host !== undefined) this.view.tell([host], location);
  }

  /** Where a process runs now, as host `from` tells it (a malformed location is reported as `forged`). True if it was news. */
  heard(location: unknown, from: string): boolean {
    if (!isLocation(location)) {
      const node = (location as { node?: unknown } | null)?.node;
      this.emit({ type: 'forged', host: from, node: typeof node === 'string' ? node : '', dropped: 0 });
      return false;
    }
    const news = this.system.moved(location, from);
    if (news && this.local(location.node))
      this.view.tell(
        this.view.hosts().filter((h) => h !== from),
        location,
      );
    return news;
  }

  /** A host taken up: where the moved processes of this host's nodes run. */
  hostUp(host: string): void {
    for (const node of this.system.local()) for (const location of this.system.movedTo(node.name)) this.view.tell([host], location);
  }

  private local(node: string): boolean {
    return this.system.local().some((h) => h.name === node);
  }
}

const LOCATION_KEYS = ['home', 'moves', 'node', 'path', 'pid'].join();

/** A location as a host tells it: exactly the fields of a ProcessLocation, consistent with each other. */
function isLocation(value: unknown): value is ProcessLocation {
  if (!value || typeof value !== 'object' || Object.keys(value).sort().join() !== LOCATION_KEYS) return false;
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
