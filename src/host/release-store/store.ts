/**
 * The release store: what a system has loaded, on which node, under which policy — kept so that a
 * restart (of a node or of the whole host) rebuilds every node's module namespace as it was.
 *
 * The vocabulary follows OTP's release_handler. The store is a journal of numbered *records*:
 *
 * - a **release**: one or more *steps* recorded atomically. A single load is a release; an upgrade
 *   plan (loads, purges… on many nodes) is one release. A release is a **trial** when appended;
 * - a **permanent** marker: release N (and every release before it) is permanent. After a crash
 *   on a trial release, `lastPermanent()` gives the state to fall back to;
 * - a **revert** marker: the releases after N are abandoned (the fall-back actually happened), so
 *   replaying the whole journal gives release N's state plus whatever comes after the marker.
 *
 * Module sources are content-addressed blobs (sha256 of the UTF-8 compiled JavaScript): the same
 * source loaded on ten nodes, or re-loaded after a rollback, is stored once.
 *
 * `replay(records)` (replay.ts) is the pure function from records to a `SystemRelease`: per node,
 * each module's versions (number, source hash, vsn, current/old) and the code policies.
 *
 * The interface is deliberately narrow and async: the embedded implementation is a directory
 * (directory.ts); a NATS JetStream one (src/cluster/release-store.ts: a KV bucket for the journal,
 * an object store for the blobs) fits behind it unchanged. Both answer the journal's queries and
 * append to it through one shared object (replayed.ts), and keep sources by one set of rules
 * (sources.ts); each says only where records and blobs are written.
 */
import type { CodePolicy, PurgeMode } from '../../kernel/policy.js';

/** A sha256 of a source, 64 lowercase hex digits. */
export type SourceHash = string;

/** A JSON value: what a vsn can be in the store (a module's exported `vsn`, or its version number). */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/**
 * A module version became current on a node. `version` is the number the node's kernel gave it
 * (LoadReport.version); `purged` are the old versions the load removed to make room (LoadReport
 * .purged, plus any the retention collected at once), so replay never has to guess.
 */
export interface LoadStep {
  kind: 'load';
  node: string;
  module: string;
  version: number;
  hash: SourceHash;
  /** The version's `vsn` (its exported `vsn`, else its version number); absent when unknown. */
  vsn?: Json;
  /** The purge mode the load used to make room, if one was given. */
  purge?: PurgeMode;
  purged?: number[];
}

/** A node's code policy (no `module`) or one module's, as `NodeHandle.setPolicy` sets it. */
export interface PolicyStep {
  kind: 'policy';
  node: string;
  module?: string;
  policy: CodePolicy;
}

/**
 * Old versions removed from a node: a purge (`mode` as given to purge) or a collection of idle old
 * code (`mode: 'collect'`, from `module_purged` events). `versions` are the ones actually removed
 * (PurgeReport.purged): a refused purge removes nothing and need not be recorded.
 */
export interface PurgeStep {
  kind: 'purge';
  node: string;
  module: string;
  mode: PurgeMode | 'collect';
  versions: number[];
}

/** `code:delete`: the module's current version becomes old (after `purged` made room). */
export interface DeleteStep {
  kind: 'delete';
  node: string;
  module: string;
  purged?: number[];
}

/** A node's thread restarted (its `creation` counter); its code is what the store says it is. */
export interface RestartStep {
  kind: 'restart';
  node: string;
  creation: number;
}

/** A node was removed from the system for good: forget it. */
export interface ForgetStep {
  kind: 'forget';
  node: string;
}

export type ReleaseStep = LoadStep | PolicyStep | PurgeStep | DeleteStep | RestartStep | ForgetStep;

/** Several steps recorded as one release, all or nothing: an upgrade plan. */
export interface PlanEntry {
  kind: 'plan';
  steps: ReleaseStep[];
  /** A name for the release (the plan's name, a version tag…). */
  label?: string;
}

/** What `append` takes: one step (its own release) or a plan. */
export type ReleaseEntry = ReleaseStep | PlanEntry;

/** One record of the journal. `seq` numbers records 1, 2, 3… with no gaps; a release is named by its seq. */
export type JournalRecord =
  | { seq: number; at: number; kind: 'release'; plan: boolean; label?: string; steps: ReleaseStep[] }
  | { seq: number; at: number; kind: 'permanent'; release: number }
  | { seq: number; at: number; kind: 'revert'; to: number; reason?: string };

export type VersionState = 'current' | 'old';

export interface VersionRecord {
  version: number;
  hash: SourceHash;
  vsn?: Json;
  state: VersionState;
}

export interface ModuleRelease {
  /** Ascending by version number; the current one, if any, is last. Empty after everything was purged. */
  versions: VersionRecord[];
  /** The number the node's next load of this module gets (the kernel keeps counting after purges). */
  nextVersion: number;
  /**
   * The vsn each code (by source hash) had when first loaded on the node, purged versions included:
   * a later load of the same code gets the same vsn. Absent until a load step carries a vsn.
   */
  vsns?: Record<SourceHash, Json>;
}

export interface NodeRelease {
  modules: Record<string, ModuleRelease>;
  /** Modules with a current version, in the order their current version was loaded (restart order). */
  loadOrder: string[];
  /** The node's code policy, if one was set. */
  policy?: CodePolicy;
  modulePolicies: Record<string, CodePolicy>;
  /** The node's thread incarnation: 0 until a restart is recorded. */
  creation: number;
}

export interface SystemRelease {
  /** The last release applied (0: none). */
  release: number;
  nodes: Record<string, NodeRelease>;
}

export type ReleaseStatus = 'trial' | 'permanent' | 'reverted';

export interface ReleaseInfo {
  release: number;
  at: number;
  plan: boolean;
  label?: string;
  status: ReleaseStatus;
  steps: ReleaseStep[];
}

/** A journal record (or a piece of one) that `open` could not keep, and why. */
export interface LostRecord {
  /** The record's seq when it could be read (or the seq it should have had, for a torn one). */
  seq: number;
  reason: 'torn' | 'checksum' | 'malformed' | 'missing_source' | 'inconsistent' | 'after_damage';
  /** Byte offset and length in the journal (directory store). */
  offset?: number;
  bytes?: number;
  /** The record's content, when it could be parsed: exactly which steps are gone. */
  record?: JournalRecord;
  /** For `missing_source`: the hashes not found. */
  missing?: SourceHash[];
  detail?: string;
}

export interface OpenResult {
  /** The state after every kept record. */
  state: SystemRelease;
  /** Every kept record, in order. */
  records: JournalRecord[];
  /** Records dropped on open: a torn tail after a crash, or damage. Empty on a clean open. */
  lost: LostRecord[];
  /** The last permanent release (0: none) and whether the state is on a trial release beyond it. */
  permanent: number;
  trial: boolean;
  /** Where the dropped bytes were saved, if any were (directory store: `lost/…`). */
  quarantined?: string;
}

export interface ReleaseStore {
  /** Takes the writer's lock, recovers, and says what state the store is in and what was lost. */
  open(): Promise<OpenResult>;
  /** Stores a compiled source (idempotent, durable before it resolves); its sha256. */
  putSource(js: string): Promise<SourceHash>;
  /** A stored source, checked against its hash. */
  getSource(hash: SourceHash): Promise<string>;
  /**
   * Durably records one release: a step, or a plan's steps as one record. Its sources must have
   * been stored first. The steps are checked against the current state (versions go up, purged
   * versions exist…); a bad entry is refused before anything is written. Resolves to its seq.
   */
  append(entry: ReleaseEntry, options?: { label?: string }): Promise<number>;
  /** Every record, in order. */
  history(): Promise<JournalRecord[]>;
  /** Every release with its status. */
  releases(): Promise<ReleaseInfo[]>;
  /** The state after every record. */
  current(): Promise<SystemRelease>;
  /** Makes release `release` — and so every release before it — permanent. */
  markPermanent(release: number): Promise<number>;
  /** The last permanent release and its state; undefined when no release is permanent yet. */
  lastPermanent(): Promise<{ release: number; state: SystemRelease } | undefined>;
  /** Abandons the releases after `to` (a permanent one, or 0): the state goes back to release `to`. */
  revert(to: number, reason?: string): Promise<number>;
  /** Releases the lock. */
  close(): Promise<void>;
}

/** Named moments of a write, for crash tests: a fault hook may throw or end the process there. */
export type WritePoint =
  | 'format:temp-written'
  | 'format:renamed'
  | 'blob:temp-written'
  | 'blob:temp-synced'
  | 'blob:renamed'
  | 'journal:before-write'
  | 'journal:half-written'
  | 'journal:written'
  | 'journal:synced';

export const WRITE_POINTS: readonly WritePoint[] = [
  'format:temp-written',
  'format:renamed',
  'blob:temp-written',
  'blob:temp-synced',
  'blob:renamed',
  'journal:before-write',
  'journal:half-written',
  'journal:written',
  'journal:synced',
];

export interface Faults {
  /** Called at each write point; throw (or exit the process) to simulate a crash there. */
  at(point: WritePoint): void | Promise<void>;
}
