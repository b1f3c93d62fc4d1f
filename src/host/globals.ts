/**
 * The host's registry of system-wide names, and its replicas on the nodes. Each node keeps a
 * replica (so `send({ global })` resolves without a round trip); the host is the authority. Changes
 * are batched: whatever changed during one turn of the event loop reaches each node as ONE
 * `setGlobals` control call, however many names it holds, so a node registering thousands of
 * names costs the others one call per tick, not one per name. A node told about a name it may
 * not hold (refused, or taken) gets the host's word on it in the same batch.
 */
import { allows, KIND_DEFAULTS, type Capabilities, type Limits, type NodeKindName } from '../kernel/capabilities.js';
import { Denials } from '../kernel/denials.js';
import type { Pid } from '../kernel/pid.js';
import type { KernelEvent } from '../kernel/types.js';

/** What the registry needs to know of the node a registration comes from. */
export interface Registrant {
  name: string;
  kind: NodeKindName;
  capabilities: Capabilities;
  limits: Limits;
}

export interface Replica {
  readonly name: string;
  tell(op: 'setGlobals', entries: [string, Pid | null][]): void;
}

export class GlobalRegistry {
  private readonly names = new Map<string, Pid>();
  /** The node that registered a name (names the host registered count for no node). */
  private readonly heldBy = new Map<string, string>();
  private readonly held = new Map<string, number>();
  /** Names whose truth every replica must hear, and names one node must hear again. */
  private readonly changed = new Set<string>();
  private readonly corrections = new Map<string, Set<string>>();
  private pending: NodeJS.Immediate | null = null;
  /** capability_denied events about refused registrations, bounded per node per second. */
  private readonly denials = new Map<string, Denials>();

  constructor(private readonly replicas: () => Iterable<Replica>) {}

  /** The registry as a read-only map (what the cluster link reads). */
  get view(): ReadonlyMap<string, Pid> {
    return this.names;
  }

  get(name: string): Pid | undefined {
    return this.names.get(name);
  }
  has(name: string): boolean {
    return this.names.has(name);
  }
  entries(): [string, Pid][] {
    return [...this.names];
  }

  /** Names held now by processes of `node` (registered from it). */
  heldByNode(node: string): number {
    return this.held.get(node) ?? 0;
  }

  /** Sets or frees a name; `by` is the node that registered it. Every replica hears of it in the next batch. */
  set(name: string, pid: Pid | null, by?: string): void {
    const was = this.heldBy.get(name);
    if (was !== undefined) {
      this.heldBy.delete(name);
      const n = (this.held.get(was) ?? 1) - 1;
      if (n > 0) this.held.set(was, n);
      else this.held.delete(was);
    }
    if (pid) {
      this.names.set(name, pid);
      if (by !== undefined) {
        this.heldBy.set(name, by);
        this.held.set(by, (this.held.get(by) ?? 0) + 1);
      }
    } else {
      this.names.delete(name);
    }
    this.changed.add(name);
    this.schedule();
  }

  /**
   * The host's own check of a registration a node reported, whatever its kernel checked: the name
   * is granted by the node's capabilities and the node holds fewer than its limit. A refused one
   * is undone on that node (in the next batch) and reported, at most 20 events a second per node.
   */
  admit(origin: Registrant, event: { name: string; pid: Pid }, emit: (event: KernelEvent) => void): boolean {
    const limit = origin.limits.globalNames ?? KIND_DEFAULTS[origin.kind].limits.globalNames;
    let why: string | undefined;
    if (typeof event.name !== 'string' || !event.name || event.name.length > 255) why = 'register a bad global name';
    else if (!allows(origin.capabilities.globalNames, event.name)) why = `register the global name '${event.name}'`;
    else if (this.names.get(event.name) !== event.pid && this.heldByNode(origin.name) >= limit)
      why = `register the global name '${event.name}': it holds ${limit}, its limit`;
    if (why === undefined) return true;
    let denials = this.denials.get(origin.name);
    if (!denials) this.denials.set(origin.name, (denials = new Denials(origin.name, { now: Date.now, emit })));
    denials.report(event.pid, `${why} (refused by the host)`);
    if (typeof event.name === 'string') this.correct(origin.name, event.name);
    return false;
  }

  /** `node` must hear the host's word on `name` again (it registered it and was refused). */
  correct(node: string, name: string): void {
    let names = this.corrections.get(node);
    if (!names) this.corrections.set(node, (names = new Set()));
    names.add(name);
    this.schedule();
  }

  /** Sends what changed now, instead of at the end of the tick (the host's own register, a node going down). */
  flush(): void {
    if (this.pending) clearImmediate(this.pending);
    this.pending = null;
    if (!this.changed.size && !this.corrections.size) return;
    const truth = (name: string): [string, Pid | null] => [name, this.names.get(name) ?? null];
    const names = new Set(this.changed);
    this.changed.clear();
    const common = [...names].map(truth);
    for (const replica of this.replicas()) {
      const own = this.corrections.get(replica.name);
      const entries = own ? [...common, ...[...own].filter((name) => !names.has(name)).map(truth)] : common;
      if (entries.length) replica.tell('setGlobals', entries);
    }
    this.corrections.clear();
  }

  /** No batch is left pending (the system stops). */
  close(): void {
    if (this.pending) clearImmediate(this.pending);
    this.pending = null;
  }

  private schedule(): void {
    this.pending ??= setImmediate(() => {
      this.pending = null;
      this.flush();
    });
  }
}
