/**
 * The system's releases, kept in a release store (src/host/release-store/): every change to a
 * node's code — a load, a plan, a policy, a purge, a delete — is journaled as it happens, and a
 * system started on the same store brings each node back as it was (versions under their
 * numbers, policies). As OTP's release_handler: in trial mode a new release is a *trial* until
 * made permanent (by `makePermanent`, or after a health window with no node crash); a start while
 * the latest release is a trial boots the last permanent one instead, and says so.
 */
import { join } from 'node:path';
import { BadArgument } from '../errors.js';
import { DirectoryStateStore, MemoryStateStore, type StateStore } from './release-store/states.js';
import type { Events } from './events.js';
import type { NodeHandle } from './node-handle.js';
import type { ReleaseChange } from './node-release.js';
import {
  DirectoryReleaseStore,
  replay,
  type JournalRecord,
  type OpenResult,
  type ReleaseInfo,
  type ReleaseStep,
  type ReleaseStore,
  type SystemRelease,
} from './release-store/index.js';

export interface ReleaseOptions {
  /** A release store, or the directory of the embedded one. */
  store: ReleaseStore | string;
  /**
   * Trial releases (default false: every release is permanent at once). With `true`, a release
   * stays a trial until `makePermanent` — or, with `permanentAfterMs`, until it ran that long with
   * no node crash — and a start on a trial release falls back to the last permanent one.
   */
  trial?: boolean;
  permanentAfterMs?: number;
  /**
   * Where durable server states are kept: a StateStore, or by default `states/` inside the store's
   * directory (a ReleaseStore object without `states`: the host's memory, which a host restart loses).
   */
  states?: StateStore;
}

export class Releases {
  private state: SystemRelease = { release: 0, nodes: {} };
  /** Appends happen one at a time, in the order the changes happened. */
  private writing: Promise<unknown> = Promise.resolve();
  /** While a plan runs: its changes, journaled together as one release when it ends. */
  private group: { label: string; steps: { load: boolean; make: () => Promise<ReleaseStep> }[] } | undefined;
  private health: NodeJS.Timeout | undefined;
  /** Without trial mode: the latest release not yet marked permanent in the store. */
  private unmarked = 0;
  private failure: Error | undefined;

  private constructor(
    private readonly store: ReleaseStore,
    private readonly events: Events,
    private readonly options: ReleaseOptions,
  ) {}

  /** Opens the store: recovers it, reports what a crash lost, and falls back from a trial release. */
  static async open(options: ReleaseOptions, events: Events): Promise<Releases> {
    if (options.permanentAfterMs !== undefined && !(options.permanentAfterMs > 0))
      throw new BadArgument('releases.permanentAfterMs must be a number of ms > 0');
    const store = typeof options.store === 'string' ? new DirectoryReleaseStore(options.store) : options.store;
    const releases = new Releases(store, events, options);
    const opened: OpenResult = await store.open();
    releases.state = opened.state;
    for (const lost of opened.lost) {
      events.emit({ type: 'release_lost', seq: lost.seq, reason: lost.reason, detail: lost.detail ?? '' });
    }
    if (options.trial && opened.trial) {
      const permanent = await store.lastPermanent();
      const to = permanent?.release ?? 0;
      await store.revert(to, 'started on a trial release: booting the last permanent one');
      releases.state = permanent?.state ?? { release: 0, nodes: {} };
      events.emit({ type: 'release_reverted', from: opened.state.release, to });
    }
    return releases;
  }

  /** The state store for durable servers that goes with these options. */
  static stateStore(options: ReleaseOptions | undefined): StateStore {
    if (options?.states) return options.states;
    if (typeof options?.store === 'string') return new DirectoryStateStore(join(options.store, 'states'));
    return new MemoryStateStore();
  }

  /** Whether the store knows this node (then its release comes from the store, not its spec). */
  knows(node: string): boolean {
    return this.state.nodes[node] !== undefined;
  }

  /** Gives a node what the store holds for it, and journals its changes from now on. */
  async attach(node: NodeHandle): Promise<void> {
    const release = node.releaseState;
    const saved = this.state.nodes[node.name];
    if (saved) {
      if (saved.policy) release.restorePolicy(saved.policy);
      for (const [module, policy] of Object.entries(saved.modulePolicies)) release.restorePolicy(policy, module);
      const order = [...saved.loadOrder, ...Object.keys(saved.modules).filter((m) => !saved.loadOrder.includes(m))];
      for (const module of order) {
        const versions = saved.modules[module]!.versions;
        if (!versions.length) continue;
        const held = await Promise.all(versions.map(async (v) => ({ version: v.version, js: await this.store.getSource(v.hash) })));
        release.restore(module, { versions: held, deleted: versions.at(-1)!.state !== 'current' });
      }
    }
    release.durable = () => this.flushed();
    if (saved) {
      release.onChange = (change) => this.record(node.name, change);
      return;
    }
    // A node the store does not know: its first boot (the spec's policies and modules) is one release.
    const boot: ReleaseChange[] = [];
    release.onChange = (change) => boot.push(change);
    release.booted = () => {
      release.onChange = (change) => this.record(node.name, change);
      if (boot.length)
        this.enqueue(async () => ({ kind: 'plan', label: `start of node ${node.name}`, steps: await Promise.all(boot.map((c) => this.stepOf(node.name, c))) }));
    };
  }

  /** Runs `work` (a plan) with every change it makes journaled as one release. */
  async asOne<T>(label: string, work: () => Promise<T>): Promise<T> {
    this.group = { label, steps: [] };
    let result: T;
    try {
      result = await work();
    } finally {
      const group = this.group;
      this.group = undefined;
      // A node reports a plan's purges (events) before it answers with what the plan loaded: the
      // loads go first, so each purge names a version that is old by then.
      const steps = [...group.steps.filter((s) => s.load), ...group.steps.filter((s) => !s.load)];
      if (steps.length) this.enqueue(async () => ({ kind: 'plan', label: group.label, steps: await Promise.all(steps.map((s) => s.make())) }));
    }
    await this.flushed();
    return result;
  }

  /** Waits until every change so far is durable; rejects if one could not be written. */
  async flushed(): Promise<void> {
    await this.writing;
    if (this.failure) throw this.failure;
  }

  history(): Promise<JournalRecord[]> {
    return this.store.history();
  }

  async list(): Promise<ReleaseInfo[]> {
    await this.flushed();
    await this.markUnmarked();
    return this.store.releases();
  }

  /** Makes a release (default: the latest) and every one before it permanent. */
  async makePermanent(release?: number): Promise<number> {
    await this.flushed();
    const target = release ?? this.state.release;
    if (!target) throw new BadArgument('there is no release to make permanent yet');
    await this.store.markPermanent(target);
    this.events.emit({ type: 'release_permanent', release: target });
    return target;
  }

  /** The state of an earlier release, to roll back to. */
  async stateOf(release: number): Promise<SystemRelease> {
    await this.flushed();
    const records = (await this.store.history()).filter((r) => r.seq <= release);
    if (!records.some((r) => r.seq === release && r.kind === 'release')) throw new BadArgument(`there is no release ${release}`);
    return replay(records);
  }

  sourceOf(hash: string): Promise<string> {
    return this.store.getSource(hash);
  }

  /** A node crashed: in trial mode the health window starts again. */
  nodeCrashed(): void {
    if (this.health) this.armHealth();
  }

  async close(): Promise<void> {
    clearTimeout(this.health);
    await this.writing.catch(() => {});
    await this.markUnmarked().catch(() => {});
    await this.store.close();
  }

  private async markUnmarked(): Promise<void> {
    const seq = this.unmarked;
    if (!seq) return;
    this.unmarked = 0;
    await this.store.markPermanent(seq);
  }

  private record(node: string, change: ReleaseChange): void {
    const step = (): Promise<ReleaseStep> => this.stepOf(node, change);
    if (this.group) this.group.steps.push({ load: change.kind === 'load', make: step });
    else this.enqueue(step);
  }

  private async stepOf(node: string, change: ReleaseChange): Promise<ReleaseStep> {
    switch (change.kind) {
      case 'load':
        return { kind: 'load', node, module: change.module, version: change.version, hash: await this.store.putSource(change.js), purged: change.purged };
      case 'purge':
        return { kind: 'purge', node, module: change.module, mode: 'collect', versions: change.versions };
      case 'delete':
        return { kind: 'delete', node, module: change.module };
      case 'policy':
        return change.module === undefined
          ? { kind: 'policy', node, policy: change.policy }
          : { kind: 'policy', node, module: change.module, policy: change.policy };
    }
  }

  private enqueue(make: () => Promise<ReleaseStep | { kind: 'plan'; label: string; steps: ReleaseStep[] }>): void {
    this.writing = this.writing.then(async () => {
      try {
        const entry = await make();
        const seq = await this.store.append(entry);
        this.state = { ...this.state, release: seq };
        this.events.emit({ type: 'release_recorded', release: seq, steps: entry.kind === 'plan' ? entry.steps.length : 1, trial: this.options.trial === true });
        // Without trial mode every release counts as permanent; the marker is written once, when
        // the list is read or the store closes, not as a second fsync per release.
        if (!this.options.trial) this.unmarked = seq;
        else if (this.options.permanentAfterMs !== undefined) this.armHealth();
      } catch (error) {
        // The running system goes on; the journal stops here and says why (a restart would not have this change).
        this.failure ??= error as Error;
        this.events.emit({ type: 'release_lost', seq: 0, reason: 'not_written', detail: (error as Error).message });
      }
    });
  }

  private armHealth(): void {
    clearTimeout(this.health);
    this.health = setTimeout(() => {
      this.health = undefined;
      void this.makePermanent().catch(() => {});
    }, this.options.permanentAfterMs);
    this.health.unref();
  }
}
