/**
 * What a node must get back when its thread is started again: its code policies and, for each
 * module in load order, every version it still holds (the current one and the old ones its
 * retention keeps), compiled, under the version numbers they had. The host keeps it on the
 * trusted side — from the node's answers (loads) and events (purges, deletes) — replays it into
 * every new incarnation, and tells a release journal (the release store) of each change.
 */
import { createHash } from 'node:crypto';
import { checkPolicy, type CodePolicy } from '../kernel/policy.js';
import type { KernelEvent, LoadReport } from '../kernel/types.js';
import type { ControlArgs, ControlOp, ControlReply } from '../wire/node.js';

/** A way to run control operations on the incarnation being booted. */
export type Replay = <K extends ControlOp>(op: K, ...args: ControlArgs<K>) => Promise<ControlReply<K>>;

export interface HeldVersion {
  version: number;
  js: string;
  /** Its vsn as the node reported it (absent when not plain data): a restart gives it back. */
  vsn?: unknown;
}

export interface ModuleHeld {
  /** Oldest first. */
  versions: HeldVersion[];
  /** Deleted (`deleteModule`): no version is current, the last one is old. */
  deleted: boolean;
}

/** What changed in a node's release, for whoever keeps a journal of it. */
export type ReleaseChange =
  | { kind: 'load'; module: string; version: number; vsn?: unknown; js: string; purged: number[] }
  | { kind: 'purge'; module: string; versions: number[] }
  | { kind: 'delete'; module: string }
  | { kind: 'policy'; policy: CodePolicy; module?: string };

export class NodeRelease {
  private policy: CodePolicy | undefined;
  private readonly modulePolicies = new Map<string, CodePolicy>();
  private readonly modules = new Map<string, ModuleHeld>();
  /**
   * Per module, the vsn each code (by its source's sha256) had when first loaded on this node,
   * purged or not: loading the same code again gives it the same vsn, as OTP's default vsn (the
   * module's MD5) is the same for the same code. So a rollback's state is tagged with the vsn of
   * the code it went back to, and the next upgrade converts from it.
   */
  private readonly vsns = new Map<string, Map<string, unknown>>();
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

  /** The vsn identical code had when first loaded on this node (the load's default vsn), if it was loaded before. */
  vsnOf(module: string, js: string): unknown {
    return this.vsns.get(module)?.get(hashOf(js));
  }

  /** The vsn of each code this module has had, by source hash (for the release journal, and from it). */
  codeVsns(module: string): Record<string, unknown> {
    return Object.fromEntries(this.vsns.get(module) ?? []);
  }

  /** A load (or a plan's load) succeeded: the new version is current; purged versions are gone. */
  loaded(module: string, js: string, report: Pick<LoadReport, 'version' | 'vsn' | 'purged'>): void {
    const held = this.modules.get(module);
    // The node reports each version a load purged (an event) before it answers the load: those
    // are gone already, and recorded once.
    const purged = report.purged.filter((v) => held?.versions.some((h) => h.version === v));
    const versions = (held?.versions ?? []).filter((v) => !purged.includes(v.version));
    versions.push(report.vsn === undefined ? { version: report.version, js } : { version: report.version, js, vsn: report.vsn });
    this.modules.delete(module);
    this.modules.set(module, { versions, deleted: false });
    this.remember(module, hashOf(js), report.vsn);
    this.onChange({ kind: 'load', module, version: report.version, vsn: report.vsn, js, purged });
  }

  /** Replaces what is known of a module (a restore from the release store), with the vsns its codes had. */
  restore(module: string, held: ModuleHeld, vsns: Record<string, unknown> = {}): void {
    this.modules.delete(module);
    this.modules.set(module, { versions: [...held.versions], deleted: held.deleted });
    for (const [hash, vsn] of Object.entries(vsns)) this.remember(module, hash, vsn);
    for (const v of held.versions) this.remember(module, hashOf(v.js), v.vsn);
  }

  private remember(module: string, hash: string, vsn: unknown): void {
    if (vsn === undefined) return;
    let codes = this.vsns.get(module);
    if (!codes) this.vsns.set(module, (codes = new Map()));
    if (!codes.has(hash)) codes.set(hash, vsn);
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
      for (const { version, js, vsn } of held.versions) await call('load', module, js, { version, vsn, purge: 'soft' });
      if (held.deleted) await call('deleteModule', module);
    }
  }
}

/** The last source hashed: a load hashes its source for its vsn, then again once loaded. */
let lastHashed: [js: string, hash: string] | undefined;

/** The sha256 of a compiled source, in hex: how the release store names it. */
function hashOf(js: string): string {
  if (lastHashed?.[0] !== js) lastHashed = [js, createHash('sha256').update(js).digest('hex')];
  return lastHashed[1];
}
