/** subnode, host side: start a system of virtual nodes and operate it. */
export { System, type SystemOptions, type HostFunction } from './host/system.js';
export { NodeHandle, type NodeSpec, type NodeStatus, type NodeSummary, type StartSpec } from './host/node-handle.js';
export { Inbox } from './host/inbox.js';
export { ProcessRef } from './host/process-ref.js';
export type { SystemEvent, EventType, EventOf } from './host/events.js';
export type { RestartPolicy, RestartKind } from './host/restart.js';
export type { ModuleSource, PathSource, CodeSource, ClusterSource } from './host/source.js';
export type { Pid, Dest, ProcessInfo, ModuleInfo, SpawnOptions, ProcessStatus, VersionState } from './kernel/types.js';
export { isPid, parsePid } from './kernel/pid.js';
export { ANY } from './kernel/match.js';
export * from './errors.js';
export { hostPermissions, type NatsPermissions } from './cluster/permissions.js';
export { JetStreamReleaseStore, type JetStreamStoreOptions } from './cluster/release-store.js';
export { JetStreamStateStore, type JetStreamStateStoreOptions } from './cluster/state-store.js';
export type { ClusterOptions, ClusterCredentials } from './cluster/options.js';
export type { UpgradePlan, PlanModule, UpgradeReport, NodeOutcome } from './host/upgrade-plan.js';
export type { RunConfig, NodeConfig, StartConfig, ModuleConfig, CodeShorthand } from './cli/config.js';
export type { NodeUpgradeReport } from './kernel/upgrade.js';
export type { CodePolicy, Retention, PurgeMode } from './kernel/policy.js';
export type { LoadReport, PurgeReport, Hazard } from './kernel/types.js';
export { findHazards } from './compiler/hazards.js';
export type { Capabilities, Limits, MailboxLimit } from './kernel/capabilities.js';
export type { NodeKind } from './host/node-backend.js';
export type { MigrateOptions, MigrationResult, BulkMigration, ProcessLocation } from './host/migration.js';
export type { MigrationSnapshot } from './kernel/types.js';
export type { DurableOptions, Checkpoint } from './kernel/durable-spec.js';
export type { DurableStates } from './host/durable-states.js';
export { DirectoryStateStore, MemoryStateStore, type StateStore, type StoredState } from './host/release-store/states.js';
export {
  observe,
  type ObserveOptions,
  type Observer,
  type NodeStats,
  type ProcessPage,
  type ProcessDetail,
  type CodeRow,
  type ProcessQuery,
  type SortKey,
} from './observe/index.js';
export { CHANNELS, type ChannelName } from './host/telemetry.js';
