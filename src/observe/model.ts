/**
 * What the observer shows, computed where the system runs (in `subnode run` for the CLI, in the
 * app for an embedded System): node figures, the process table sorted, filtered and paged here so
 * that only one page ever leaves (100,000 processes stay one request of a few dozen rows), a
 * process's details, and each module's versions with the processes lingering in old code.
 *
 * Process lists are fetched from each node at most once per `ttlMs` (every open page and `top`
 * share the snapshot), and a sorted view is kept per snapshot, so paging through it is a slice.
 */
import type { SystemEvent } from '../host/events.js';
import type { System } from '../host/system.js';
import type { Pid } from '../kernel/pid.js';
import type { ProcessInfo } from '../kernel/types.js';
import type { ModuleRow, ProcessRow } from '../wire/cli.js';
import { filterRows, sortRows, type ProcessQuery } from './query.js';

export { SORT_KEYS, type ProcessQuery, type SortKey } from './query.js';

/** Per-process figures the kernel may report (newer kernels); absent ones show as blank. */
export interface Figures {
  reductions?: number;
  memory?: number;
  currentFunction?: string;
  monitors?: unknown[];
  monitoredBy?: unknown[];
}

export interface NodeStats {
  name: string;
  kind: string;
  status: string;
  creation: number;
  /** Restarts of this node (its creation: 0 for the first incarnation). */
  restarts: number;
  processes: number | null;
  /** Messages waiting in all its mailboxes. */
  mailbox: number | null;
  /** Reductions per second across the node, when the kernel counts them. */
  reductionsPerSec: number | null;
  /** Estimated bytes held by its processes, when the kernel estimates them. */
  memory: number | null;
  /** Abnormal exits per second (the kernel's process_exit events) over the last few seconds. */
  exitsPerSec: number;
  limits: Record<string, unknown>;
}

export interface ProcessPage {
  /** Processes on the nodes asked for, and how many matched the filter. */
  total: number;
  matched: number;
  offset: number;
  rows: ProcessRow[];
  /** When the snapshot behind this page was taken (ms since the epoch). */
  at: number;
}

export interface ProcessDetail {
  node: string;
  info: ProcessInfo & Figures;
  /** A behaviour's state (getState), or why it could not be read. */
  state?: unknown;
  stateError?: string;
  location: { node: string; home: string; moves: number; path: string[] };
}

export interface CodeRow extends ModuleRow {
  /** Processes still in old versions (at most 100 listed). */
  lingering: Pid[];
}

interface Snapshot {
  at: number;
  rows: ProcessRow[];
  sorted: Map<string, ProcessRow[]>;
}

const EXIT_WINDOW_MS = 5_000;

export class ObserveModel {
  private readonly snapshots = new Map<string, Snapshot>();
  private readonly inFlight = new Map<string, Promise<Snapshot>>();
  private readonly fetchMs = new Map<string, number>();
  private readonly exits = new Map<string, number[]>();
  private readonly reductions = new Map<string, { at: number; total: number; rate: number | null }>();
  private readonly off: () => void;

  constructor(
    readonly system: System,
    private readonly ttlMs = 500,
  ) {
    this.off = system.on('*', (event: SystemEvent) => {
      if (event.type !== 'process_exit') return;
      let list = this.exits.get(event.node);
      if (!list) this.exits.set(event.node, (list = []));
      list.push(Date.now());
      if (list.length > 100_000) list.splice(0, list.length - 100_000);
    });
  }

  close(): void {
    this.off();
  }

  async nodes(): Promise<NodeStats[]> {
    return Promise.all(
      this.system.nodes().map(async (n): Promise<NodeStats> => {
        const handle = this.system.node(n.name);
        const snap = n.status === 'running' ? await this.snapshot(n.name).catch(() => undefined) : undefined;
        let mailbox: number | null = null;
        let reductions: number | null = null;
        let memory: number | null = null;
        if (snap) {
          mailbox = 0;
          for (const p of snap.rows) {
            mailbox += p.mailbox;
            const f = p as Figures;
            if (typeof f.reductions === 'number') reductions = (reductions ?? 0) + f.reductions;
            if (typeof f.memory === 'number') memory = (memory ?? 0) + f.memory;
          }
        }
        const now = Date.now();
        const recent = (this.exits.get(n.name) ?? []).filter((t) => now - t < EXIT_WINDOW_MS);
        this.exits.set(n.name, recent);
        return {
          ...n,
          restarts: Math.max(0, n.creation),
          processes: snap ? snap.rows.length : null,
          mailbox,
          reductionsPerSec: snap ? this.reductionRate(n.name, snap.at, reductions) : null,
          memory,
          exitsPerSec: recent.length / (EXIT_WINDOW_MS / 1000),
          limits: { ...handle.limits },
        };
      }),
    );
  }

  /** One page of the process table: filtered, sorted and sliced here. */
  async processes(query: ProcessQuery = {}): Promise<ProcessPage> {
    const names = query.node
      ? [this.system.node(query.node).name]
      : this.system
          .nodes()
          .filter((n) => n.status === 'running')
          .map((n) => n.name);
    const snaps = (await Promise.all(names.map((name) => this.snapshot(name).catch(() => undefined)))).filter((s): s is Snapshot => !!s);
    const offset = Math.max(0, query.offset ?? 0);
    const limit = Math.min(Math.max(1, query.limit ?? 50), 1000);
    const sort = query.sort ?? 'pid';
    const key = `${sort}:${query.desc ? 'd' : 'a'}:${query.filter ?? ''}`;
    let rows: ProcessRow[];
    let total = 0;
    for (const s of snaps) total += s.rows.length;
    if (snaps.length === 1) {
      // One node: the sorted (and filtered) view is kept with its snapshot.
      const snap = snaps[0]!;
      let view = snap.sorted.get(key);
      if (!view) {
        view = sortRows(filterRows(snap.rows, query.filter), sort, query.desc ?? false);
        if (snap.sorted.size > 16) snap.sorted.clear();
        snap.sorted.set(key, view);
      }
      rows = view;
    } else {
      rows = sortRows(
        filterRows(
          snaps.flatMap((s) => s.rows),
          query.filter,
        ),
        sort,
        query.desc ?? false,
      );
    }
    return { total, matched: rows.length, offset, rows: rows.slice(offset, offset + limit), at: Math.min(...snaps.map((s) => s.at), Date.now()) };
  }

  async process(pid: Pid): Promise<ProcessDetail | null> {
    const location = this.system.locate(pid);
    const handle = this.system.node(location.node);
    const info = await handle.processInfo(pid);
    if (!info) return null;
    const detail: ProcessDetail = {
      node: handle.name,
      info,
      location: { node: location.node, home: location.home, moves: location.moves, path: [...location.path] },
    };
    if (info.behaviour) {
      try {
        detail.state = await handle.getState(pid);
      } catch (error) {
        detail.stateError = (error as Error).message;
      }
    }
    return detail;
  }

  async code(node?: string): Promise<CodeRow[]> {
    const handles = node
      ? [this.system.node(node)]
      : this.system
          .nodes()
          .filter((n) => n.status === 'running')
          .map((n) => this.system.node(n.name));
    const rows = await Promise.all(
      handles.map(async (h) => {
        const modules = await h.modules().catch(() => []);
        return Promise.all(
          modules.map(async (m): Promise<CodeRow> => {
            const lingers = m.versions.some((v) => v.state === 'old' && v.processes > 0);
            const lingering = lingers ? (await h.lingering(m.name).catch(() => [] as Pid[])).slice(0, 100) : [];
            return { node: h.name, ...m, lingering };
          }),
        );
      }),
    );
    return rows.flat().sort((a, b) => (a.name === b.name ? a.node.localeCompare(b.node) : a.name.localeCompare(b.name)));
  }

  /** Forgets cached snapshots (after an action, so the next view shows its effect). */
  invalidate(): void {
    this.snapshots.clear();
    this.fetchMs.clear();
  }

  private reductionRate(node: string, at: number, total: number | null): number | null {
    if (total === null) return null;
    const last = this.reductions.get(node);
    if (last && last.at === at) return last.rate;
    const rate = last && at > last.at && total >= last.total ? ((total - last.total) * 1000) / (at - last.at) : (last?.rate ?? null);
    this.reductions.set(node, { at, total, rate });
    return rate;
  }

  /**
   * A node's process list: fresh if younger than the TTL; stale (answered at once, refreshed in the
   * background) otherwise, so a page never waits for a big node's list except the first time. The
   * TTL grows with what a fetch costs (3 × its time): 100,000 processes take the node most of a
   * second to list, and it should not spend its time being watched.
   */
  private snapshot(node: string): Promise<Snapshot> {
    const cached = this.snapshots.get(node);
    const ttl = Math.max(this.ttlMs, 3 * (this.fetchMs.get(node) ?? 0));
    if (cached && Date.now() - cached.at < ttl) return Promise.resolve(cached);
    let pending = this.inFlight.get(node);
    if (!pending) {
      const started = Date.now();
      pending = (async () => {
        try {
          const list = await this.system.node(node).processes();
          const rows = list as ProcessRow[];
          for (const row of rows) row.node = node;
          const snap: Snapshot = { at: Date.now(), rows, sorted: new Map() };
          this.snapshots.set(node, snap);
          this.fetchMs.set(node, Date.now() - started);
          return snap;
        } finally {
          this.inFlight.delete(node);
        }
      })();
      this.inFlight.set(node, pending);
      if (cached) pending.catch(() => this.snapshots.delete(node));
    }
    return cached ? Promise.resolve(cached) : pending;
  }
}
