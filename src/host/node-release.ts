/**
 * What a node must get back when its thread is started again: its code policies and, for each
 * module in load order, every version it still holds (the current one and the old ones its
 * retention keeps), compiled, under the version numbers they had. The host keeps it on the
 * trusted side — from the node's answers (loads) and events (purges, deletes) — replays it into
 * every new incarnation, and tells a release journal (the release store) of each change.
 */
import { checkPolicy, type CodePolicy } from '../kernel/policy.js';
import type { KernelEvent, LoadReport } from '../kernel/types.js';
import type { ControlArgs, ControlOp, ControlReply } from '../wire/node.js';

/** A way to run control operations on the incarnation being booted. */
export type Replay = <K extends ControlOp>(op: K, ...args: ControlArgs<K>) => Promise<ControlReply<K>>;

export interface HeldVersion {
  version: number;
  js: string;
}

export interface ModuleHeld {
  /** Oldest first. */
  versions: HeldVersion[];
  /** Deleted (`deleteModule`): no version is current, the last one is old. */
  deleted: boolean;
}

/** What changed in a node's release, for whoever keeps a journal of it. */
export type ReleaseChange =
  | { kind: 'load'; module: string; version: number; js: string; purged: number[] }
  | { kind: 'purge'; module: string; versions: number[] }
  | { kind: 'delete'; module: string }
  | { kind: 'policy'; policy: CodePolicy; module?: string };

export class NodeRelease {
  private policy: CodePolicy | undefined;
  private readonly modulePolicies = new Map<string, CodePolicy>();
  private readonly modules = new Map<string, ModuleHeld>();
  /** Told of every change (the release journal), when there is one. */
  onChange: (change: ReleaseChange) => void = () => {};
  /** Settles once every change so far is durable (the journal's flush); at once without a journal. */
  durable: () => Promise<void> = () => Promise.resolve();
  /** Told when a first boot (the spec's modules and policies) is done: the journal records it as one release. */
  booted: () => void = () => {};

  constructor(node: string, policy?: CodePolicy, modulePolicies: Record<string, CodePolicy> = {}) {
    if (policy !== undefined) this.policy = checkPolicy(policy, `node '${node}' code policy`);
    for (const [module, p] of Object.entries(modulePolicies)) this.modulePolicies.set(module, checkPolicy(p, `module '${module}' code policy`));
  }

  /** Whether no module was loaded yet (a first boot then loads the spec's modules). */
  get empty(): boolean {
    return this.modules.size === 0;
  }

  /** A module's current version, as compiled. */
  sourceOf(module: string): string | undefined {
    const held = this.modules.get(module);
    return held && !held.deleted ? held.versions.at(-1)?.js : undefined;
  }

  /** Every module with the versions held, in load order. */
  held(): [string, ModuleHeld][] {
    return [...this.modules].map(([module, h]) => [module, { versions: [...h.versions], deleted: h.deleted }]);
  }

  /** A load (or a plan's load) succeeded: the new version is current; purged versions are gone. */
  loaded(module: string, js: string, report: Pick<LoadReport, 'version' | 'purged'>): void {
    const held = this.modules.get(module);
    const versions = (held?.versions ?? []).filter((v) => !report.purged.includes(v.version));
    versions.push({ version: report.version, js });
    this.modules.delete(module);
    this.modules.set(module, { versions, deleted: false });
    this.onChange({ kind: 'load', module, version: report.version, js, purged: [...report.purged] });
  }

  /** Replaces what is known of a module (a restore from the release store). */
  restore(module: string, held: ModuleHeld): void {
    this.modules.delete(module);
    this.modules.set(module, { versions: [...held.versions], deleted: held.deleted });
  }

  /** Sets a policy known from the release store (not a change: nothing is journaled). */
  restorePolicy(policy: CodePolicy, module?: string): void {
    if (module === undefined) this.policy = policy;
    else this.modulePolicies.set(module, policy);
  }

  policyChanged(policy: CodePolicy, module?: string): void {
    if (module === undefined) this.policy = policy;
    else this.modulePolicies.set(module, policy);
    this.onChange({ kind: 'policy', policy, module });
  }

  /** Keeps up with what the node reports: versions purged (by a purge, a load making room, or collected idle), modules deleted. */
  observe(event: KernelEvent): void {
    if (event.type === 'module_purged') {
      const held = this.modules.get(event.module);
      if (!held || !held.versions.some((v) => v.version === event.version)) return;
      held.versions = held.versions.filter((v) => v.version !== event.version);
      if (!held.versions.length) this.modules.delete(event.module);
      this.onChange({ kind: 'purge', module: event.module, versions: [event.version] });
    } else if (event.type === 'module_deleted') {
      const held = this.modules.get(event.module);
      if (!held || held.deleted) return;
      held.deleted = true;
      this.onChange({ kind: 'delete', module: event.module });
    }
  }

  /** Brings a fresh incarnation up to this release: policies first, then every version held, in order. */
  async replay(call: Replay): Promise<void> {
    if (this.policy) await call('setPolicy', this.policy);
    for (const [module, policy] of this.modulePolicies) await call('setPolicy', policy, module);
    for (const [module, held] of this.modules) {
      for (const { version, js } of held.versions) await call('load', module, js, { version, purge: 'soft' });
      if (held.deleted) await call('deleteModule', module);
    }
  }
}
