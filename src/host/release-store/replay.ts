/**
 * From journal records to state, with no I/O: `replay(records)` folds the records into a
 * `SystemRelease`, the per-node picture a restart restores (each module's versions with their
 * numbers, source hashes and vsns, which one is current; the code policies; the node's creation).
 *
 * Replay trusts nothing: every step is checked (`checkStep`) and must apply to the state before it
 * (a load's version is above every version the module had; purged versions exist and are old…).
 * The same check runs when a release is appended, so a journal written by this code always
 * replays; a record that does not apply is reported by `open` as lost, never half-applied.
 *
 * Steps carry explicit results (the version number the kernel gave, the versions a purge removed),
 * so replay never re-derives retention: it records what the node did.
 */
import { checkPolicy, checkPurge } from '../../kernel/policy.js';
import { isJson } from '../../kernel/values.js';
import { BadStep } from './errors.js';
import { isSourceHash } from './sources.js';
import type { JournalRecord, ModuleRelease, NodeRelease, ReleaseEntry, ReleaseInfo, ReleaseStep, SystemRelease } from './store.js';

export function emptyRelease(): SystemRelease {
  return { release: 0, nodes: {} };
}

/** The state after `records`, in order. Throws BadStep on a record that does not apply. */
export function replay(records: readonly JournalRecord[]): SystemRelease {
  const state = emptyRelease();
  const before: JournalRecord[] = [];
  for (const record of records) {
    applyRecord(state, record, before);
    before.push(record);
  }
  return state;
}

/**
 * Applies one record to `state` in place (all of a release's steps, or none: on an error `state`
 * is left as it was). `before` are the records preceding it, needed by a revert.
 */
export function applyRecord(state: SystemRelease, record: JournalRecord, before: readonly JournalRecord[]): void {
  switch (record.kind) {
    case 'release': {
      // Copy-on-write: only the nodes this release touches are cloned, so a long journal replays
      // in time linear in its length, and a failing step leaves `state` untouched.
      if (!Array.isArray(record.steps) || !record.steps.length) throw new BadStep(`release ${record.seq} has no steps`, record);
      const steps = record.steps.map(checkStep);
      const next: SystemRelease = { release: state.release, nodes: { ...state.nodes } };
      for (const node of new Set(steps.map((s) => s.node))) if (next.nodes[node]) next.nodes[node] = structuredClone(next.nodes[node]);
      for (const step of steps) applyStep(next, step);
      next.release = record.seq;
      Object.assign(state, next);
      return;
    }
    case 'permanent': {
      checkTarget(record.release, before, 'permanent');
      if (record.release === 0) throw new BadStep('release 0 cannot be made permanent', record);
      if (statusOf(before).get(record.release) === 'reverted') throw new BadStep(`release ${record.release} was reverted and cannot be made permanent`, record);
      return;
    }
    case 'revert': {
      checkTarget(record.to, before, 'revert');
      if (statusOf(before).get(record.to) === 'reverted') throw new BadStep(`release ${record.to} was reverted already`, record);
      const back = replay(record.to === 0 ? [] : before.filter((r) => r.seq <= record.to));
      state.release = back.release;
      state.nodes = back.nodes;
      return;
    }
    default:
      throw new BadStep(`unknown record kind ${JSON.stringify((record as { kind?: unknown }).kind)}`, record);
  }
}

function checkTarget(release: number, before: readonly JournalRecord[], what: string): void {
  if (!Number.isInteger(release) || release < 0) throw new BadStep(`${what}: release must be an integer >= 0, got ${JSON.stringify(release)}`);
  if (release !== 0 && !before.some((r) => r.kind === 'release' && r.seq === release)) {
    throw new BadStep(`${what}: there is no release ${release}`);
  }
}

/** The steps of an entry, checked for shape: a step alone, or a plan's steps (at least one). */
export function stepsOf(entry: ReleaseEntry): { plan: boolean; label?: string; steps: ReleaseStep[] } {
  if (!entry || typeof entry !== 'object') throw new BadStep('a release entry must be a step or { kind: "plan", steps }', entry);
  if (entry.kind === 'plan') {
    if (!Array.isArray(entry.steps) || !entry.steps.length) throw new BadStep('a plan needs at least one step', entry);
    if (entry.label !== undefined && typeof entry.label !== 'string') throw new BadStep('a plan label must be a string', entry);
    return { plan: true, label: entry.label, steps: entry.steps.map(checkStep) };
  }
  return { plan: false, steps: [checkStep(entry)] };
}

/** A step with every field checked and normalized (policies and purge modes as the kernel reads them). */
export function checkStep(step: ReleaseStep): ReleaseStep {
  if (!step || typeof step !== 'object') throw new BadStep(`a release step must be an object, got ${JSON.stringify(step)}`, step);
  const fail = (why: string): never => {
    throw new BadStep(`bad ${String(step.kind)} step: ${why}`, step);
  };
  if (!isName(step.node)) fail(`node must be a non-empty string, got ${JSON.stringify(step.node)}`);
  const wrap = <T>(check: () => T): T => {
    try {
      return check();
    } catch (error) {
      return fail((error as Error).message);
    }
  };
  switch (step.kind) {
    case 'load': {
      if (!isName(step.module)) fail('module must be a non-empty string');
      if (!isVersion(step.version)) fail(`version must be an integer >= 1, got ${JSON.stringify(step.version)}`);
      if (!isSourceHash(step.hash)) fail(`hash must be a sha256 in hex, got ${JSON.stringify(step.hash)}`);
      if (step.vsn !== undefined && !isJson(step.vsn)) fail('vsn must be plain JSON data');
      const purged = versionList(step.purged, fail);
      const out: ReleaseStep = { kind: 'load', node: step.node, module: step.module, version: step.version, hash: step.hash };
      if (step.vsn !== undefined) out.vsn = step.vsn;
      if (step.purge !== undefined) out.purge = wrap(() => checkPurge(step.purge));
      if (purged.length) out.purged = purged;
      return out;
    }
    case 'policy': {
      if (step.module !== undefined && !isName(step.module)) fail('module must be a non-empty string when given');
      const policy = wrap(() => checkPolicy(step.policy));
      return step.module === undefined ? { kind: 'policy', node: step.node, policy } : { kind: 'policy', node: step.node, module: step.module, policy };
    }
    case 'purge': {
      if (!isName(step.module)) fail('module must be a non-empty string');
      const mode = step.mode === 'collect' ? 'collect' : wrap(() => checkPurge(step.mode));
      return { kind: 'purge', node: step.node, module: step.module, mode, versions: versionList(step.versions, fail, true) };
    }
    case 'delete': {
      if (!isName(step.module)) fail('module must be a non-empty string');
      const purged = versionList(step.purged, fail);
      return purged.length ? { kind: 'delete', node: step.node, module: step.module, purged } : { kind: 'delete', node: step.node, module: step.module };
    }
    case 'restart':
      if (!Number.isInteger(step.creation) || step.creation < 0) fail(`creation must be an integer >= 0, got ${JSON.stringify(step.creation)}`);
      return { kind: 'restart', node: step.node, creation: step.creation };
    case 'forget':
      return { kind: 'forget', node: step.node };
    default:
      return fail('kind must be load, policy, purge, delete, restart or forget');
  }
}

/** Applies a checked step in place, or throws BadStep if it does not fit the state. */
function applyStep(state: SystemRelease, step: ReleaseStep): void {
  const fail = (why: string): never => {
    throw new BadStep(`${step.kind} on node '${step.node}' does not apply: ${why}`, step);
  };
  if (step.kind === 'forget') {
    if (!state.nodes[step.node]) fail('no such node');
    delete state.nodes[step.node];
    return;
  }
  const node = (state.nodes[step.node] ??= { modules: {}, loadOrder: [], modulePolicies: {}, creation: 0 });
  switch (step.kind) {
    case 'load': {
      const mod = (node.modules[step.module] ??= { versions: [], nextVersion: 1 });
      if (step.version < mod.nextVersion) fail(`module '${step.module}' version ${step.version} is not above the versions it had (next is ${mod.nextVersion})`);
      removeOld(mod, step.module, step.purged ?? [], fail);
      for (const v of mod.versions) v.state = 'old';
      mod.versions.push(
        step.vsn === undefined
          ? { version: step.version, hash: step.hash, state: 'current' }
          : { version: step.version, hash: step.hash, vsn: step.vsn, state: 'current' },
      );
      mod.nextVersion = step.version + 1;
      if (step.vsn !== undefined && !(mod.vsns && step.hash in mod.vsns)) mod.vsns = { ...mod.vsns, [step.hash]: step.vsn };
      node.loadOrder = node.loadOrder.filter((m) => m !== step.module);
      node.loadOrder.push(step.module);
      return;
    }
    case 'policy':
      if (step.module === undefined) node.policy = step.policy;
      else node.modulePolicies[step.module] = step.policy;
      return;
    case 'purge': {
      const mod = node.modules[step.module];
      if (!mod) return fail(`no module '${step.module}'`);
      removeOld(mod, step.module, step.versions, fail);
      return;
    }
    case 'delete': {
      const mod = node.modules[step.module];
      const current = mod?.versions[mod.versions.length - 1];
      if (!mod || current?.state !== 'current') return fail(`module '${step.module}' has no current version`);
      removeOld(mod, step.module, step.purged ?? [], fail);
      current.state = 'old';
      node.loadOrder = node.loadOrder.filter((m) => m !== step.module);
      return;
    }
    case 'restart':
      if (step.creation < node.creation) fail(`creation ${step.creation} is below the node's ${node.creation}`);
      node.creation = step.creation;
      return;
  }
}

function removeOld(mod: ModuleRelease, module: string, versions: number[], fail: (why: string) => never): void {
  for (const n of versions) {
    const v = mod.versions.find((x) => x.version === n);
    if (!v) fail(`module '${module}' has no version ${n} to purge`);
    else if (v.state !== 'old') fail(`module '${module}' version ${n} is current, not old`);
  }
  mod.versions = mod.versions.filter((v) => !versions.includes(v.version));
}

/** Each release's status: `reverted` if a later revert abandoned it, else `permanent` if a marker covers it, else `trial`. */
export function statusOf(records: readonly JournalRecord[]): Map<number, 'trial' | 'permanent' | 'reverted'> {
  const status = new Map<number, 'trial' | 'permanent' | 'reverted'>();
  for (const r of records) {
    if (r.kind === 'release') status.set(r.seq, 'trial');
    else if (r.kind === 'revert')
      for (const [seq] of status) {
        if (seq > r.to) status.set(seq, 'reverted');
      }
    else if (r.kind === 'permanent')
      for (const [seq, s] of status) {
        if (seq <= r.release && s === 'trial') status.set(seq, 'permanent');
      }
  }
  return status;
}

export function releasesOf(records: readonly JournalRecord[]): ReleaseInfo[] {
  const status = statusOf(records);
  const out: ReleaseInfo[] = [];
  for (const r of records) {
    if (r.kind !== 'release') continue;
    const info: ReleaseInfo = { release: r.seq, at: r.at, plan: r.plan, status: status.get(r.seq)!, steps: r.steps };
    if (r.label !== undefined) info.label = r.label;
    out.push(info);
  }
  return out;
}

/** The last permanent release that was not reverted (0: none). */
export function lastPermanentOf(records: readonly JournalRecord[]): number {
  let last = 0;
  for (const [seq, s] of statusOf(records)) if (s === 'permanent' && seq > last) last = seq;
  return last;
}

/** The source hashes a record needs. A step read back may be anything (even null): replay refuses it, this passes it by. */
export function hashesOf(record: JournalRecord): string[] {
  return record.kind === 'release' ? record.steps.flatMap((s: ReleaseStep | null) => (s?.kind === 'load' ? [s.hash] : [])) : [];
}

function isName(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= 1024;
}

function isVersion(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= 1;
}

function versionList(value: unknown, fail: (why: string) => never, required = false): number[] {
  if (value === undefined && !required) return [];
  if (!Array.isArray(value) || !value.every(isVersion)) return fail(`versions must be a list of integers >= 1, got ${JSON.stringify(value)}`);
  if (new Set(value).size !== value.length) fail('versions are listed twice');
  return [...value];
}

/** For callers that restore a node: its modules with a current version, in restart order. */
export function currentModules(node: NodeRelease): { module: string; version: number; hash: string }[] {
  return node.loadOrder.map((module) => {
    const v = node.modules[module]!.versions[node.modules[module]!.versions.length - 1]!;
    return { module, version: v.version, hash: v.hash };
  });
}
