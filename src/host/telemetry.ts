/**
 * Telemetry of a System, three ways, none costing anything unless someone listens:
 *
 *  - `node:diagnostics_channel` channels (`CHANNELS`, the one list of names): the host publishes
 *    each event on its channel only when the channel has subscribers (`hasSubscribers`).
 *  - OpenTelemetry metrics through `@opentelemetry/api`: counters and observable gauges on the
 *    meter `subnode`. Without an SDK the API's meter is its no-op one; install and register a
 *    MeterProvider before `System.start` to collect them.
 *  - Prometheus text (`prometheusText`), served by the observer's opt-in `/metrics`.
 */
import * as diagnostics_channel from 'node:diagnostics_channel';
import { metrics, type Meter } from '@opentelemetry/api';
import type { EventType, SystemEvent } from './events.js';
import type { Pid } from '../kernel/pid.js';

/**
 * The channels, by what they carry. Every message has `node`; the event channels carry the
 * SystemEvent itself (`type` says which), `subnode:event` carries every event.
 */
export const CHANNELS = {
  /** Spawns asked of a node by the host (`node.spawn`, `startServer`, `startStatem`): `{ node, pid, module, fn, kind }`. */
  spawn: 'subnode:spawn',
  /** `process_exit`: abnormal exits, as the kernel reports them (not normal, shutdown or killed). */
  exit: 'subnode:exit',
  /** `module_loaded`. */
  load: 'subnode:load',
  /** `module_purged`, `module_deleted`, `process_purged`, `drain_started`. */
  purge: 'subnode:purge',
  /** `upgrade_node`, `upgrade_step`, `upgrade_rollback`, `upgrade_converted`, `code_changed`. */
  upgrade: 'subnode:upgrade',
  /** `process_migrated`, `migrated_exit`. */
  migration: 'subnode:migration',
  /** `node_started`, `node_down`, `node_restarted`, `node_unresponsive`, `node_failed`, `node_stopped`. */
  node: 'subnode:node',
  /** Messages routed through the host, a count per batch: `{ node, from, count }`; and `message_dropped`. */
  messages: 'subnode:messages',
  /** Every event, whatever its type. */
  event: 'subnode:event',
} as const;

export type ChannelName = (typeof CHANNELS)[keyof typeof CHANNELS];

const CHANNEL_OF: Partial<Record<EventType, keyof typeof CHANNELS>> = {
  process_exit: 'exit',
  module_loaded: 'load',
  module_purged: 'purge',
  module_deleted: 'purge',
  process_purged: 'purge',
  drain_started: 'purge',
  upgrade_node: 'upgrade',
  upgrade_step: 'upgrade',
  upgrade_rollback: 'upgrade',
  upgrade_converted: 'upgrade',
  code_changed: 'upgrade',
  process_migrated: 'migration',
  migrated_exit: 'migration',
  migration_withdrawn: 'migration',
  node_started: 'node',
  node_down: 'node',
  node_restarted: 'node',
  node_unresponsive: 'node',
  node_failed: 'node',
  node_stopped: 'node',
  message_dropped: 'messages',
};

const channels = Object.fromEntries(Object.entries(CHANNELS).map(([k, name]) => [k, diagnostics_channel.channel(name)])) as Record<
  keyof typeof CHANNELS,
  diagnostics_channel.Channel
>;

/** Publishes an event on its channel and on `subnode:event`, each only if subscribed. */
export function publishEvent(event: SystemEvent): void {
  const key = CHANNEL_OF[event.type];
  if (key && channels[key].hasSubscribers) channels[key].publish(event);
  if (channels.event.hasSubscribers) channels.event.publish(event);
}

/** A spawn the host asked of a node. */
export function publishSpawn(node: string, pid: Pid, module: string, fn: string, kind: 'process' | 'server' | 'statem'): void {
  if (channels.spawn.hasSubscribers) channels.spawn.publish({ node, pid, module, fn, kind });
}

/** A batch of envelopes routed through the host to `node`: counts its messages (only when subscribed). */
/** Whether anyone counts routed messages (then a batch must be read to count them). */
export const routedWatched = (): boolean => channels.messages.hasSubscribers;

export function publishRouted(node: string, from: string, envelopes: readonly unknown[], isMessage: (e: unknown) => boolean): void {
  if (!channels.messages.hasSubscribers) return;
  let count = 0;
  for (const e of envelopes) if (isMessage(e)) count++;
  if (count) channels.messages.publish({ node, from, count });
}

// ---- counters, shared by OpenTelemetry and Prometheus ----

/** Totals since the system started, per node, as Prometheus and OpenTelemetry report them. */
export class Counters {
  readonly exits = new Map<string, number>();
  readonly loads = new Map<string, number>();
  readonly purges = new Map<string, number>();
  readonly migrations = new Map<string, number>();
  readonly upgrades = new Map<string, number>();
  readonly restarts = new Map<string, number>();
  readonly dropped = new Map<string, number>();

  count(event: SystemEvent): void {
    const add = (map: Map<string, number>, node: string, n = 1) => map.set(node, (map.get(node) ?? 0) + n);
    switch (event.type) {
      case 'process_exit':
        return void add(this.exits, event.node);
      case 'module_loaded':
        return void add(this.loads, event.node);
      case 'module_purged':
        return void add(this.purges, event.node);
      case 'process_migrated':
        return void add(this.migrations, event.to);
      case 'upgrade_node':
        if (event.phase !== 'start') add(this.upgrades, `${event.node}\u0000${event.phase}`);
        return;
      case 'node_restarted':
        return void add(this.restarts, event.node);
      case 'message_dropped':
        return void add(this.dropped, event.node, event.count);
    }
  }
}

/**
 * Wires a system's events to the channels and to OpenTelemetry counters (no-ops without an SDK).
 * `nodes` feeds the observable gauges, read only when a MeterProvider collects.
 */
export function instrument(
  on: (listener: (event: SystemEvent) => void) => () => void,
  nodes: () => { name: string; status: string; creation: number }[],
  meter: Meter = metrics.getMeter('subnode'),
): () => void {
  const exits = meter.createCounter('subnode.process.exits', { description: 'processes that ended abnormally' });
  const loads = meter.createCounter('subnode.module.loads', { description: 'module versions loaded' });
  const purges = meter.createCounter('subnode.module.purges', { description: 'module versions purged' });
  const migrations = meter.createCounter('subnode.process.migrations', { description: 'processes moved to another node' });
  const upgrades = meter.createCounter('subnode.upgrade.nodes', { description: 'nodes an upgrade plan finished on, by outcome' });
  const restarts = meter.createCounter('subnode.node.restarts', { description: 'node restarts' });
  const dropped = meter.createCounter('subnode.messages.dropped', { description: 'messages dropped for a node down or unknown' });
  const up = meter.createObservableGauge('subnode.node.up', { description: '1 when the node is running' });
  up.addCallback((result) => {
    for (const n of nodes()) result.observe(n.status === 'running' ? 1 : 0, { node: n.name });
  });
  return on((event) => {
    publishEvent(event);
    switch (event.type) {
      case 'process_exit':
        return exits.add(1, { node: event.node });
      case 'module_loaded':
        return loads.add(1, { node: event.node, module: event.module });
      case 'module_purged':
        return purges.add(1, { node: event.node, module: event.module });
      case 'process_migrated':
        return migrations.add(1, { from: event.from, to: event.to });
      case 'upgrade_node':
        if (event.phase !== 'start') upgrades.add(1, { node: event.node, outcome: event.phase });
        return;
      case 'node_restarted':
        return restarts.add(1, { node: event.node });
      case 'message_dropped':
        return dropped.add(event.count, { node: event.node, reason: event.reason });
    }
  });
}

// ---- Prometheus text exposition ----

export interface Gauges {
  nodes: { name: string; kind: string; status: string; restarts: number; processes: number | null; mailbox: number | null; memory: number | null }[];
}

const label = (value: string) => value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

/** The Prometheus text format (version 0.0.4) for the gauges and the counters. */
export function prometheusText(gauges: Gauges, counters: Counters): string {
  const out: string[] = [];
  const metric = (name: string, type: 'gauge' | 'counter', help: string, samples: [Record<string, string>, number][]) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) {
      const text = Object.entries(labels)
        .map(([k, v]) => `${k}="${label(v)}"`)
        .join(',');
      out.push(`${name}${text ? `{${text}}` : ''} ${Number.isFinite(value) ? value : 0}`);
    }
  };
  const per = (map: Map<string, number>) => [...map].map(([node, n]) => [{ node }, n] as [Record<string, string>, number]);
  const known = <T>(get: (n: Gauges['nodes'][number]) => T | null) =>
    gauges.nodes.filter((n) => get(n) !== null).map((n) => [{ node: n.name }, Number(get(n))] as [Record<string, string>, number]);
  metric(
    'subnode_node_up',
    'gauge',
    '1 when the node is running',
    gauges.nodes.map((n) => [{ node: n.name, kind: n.kind, status: n.status }, n.status === 'running' ? 1 : 0]),
  );
  metric(
    'subnode_node_restarts',
    'gauge',
    'restarts of the node (its creation)',
    gauges.nodes.map((n) => [{ node: n.name }, n.restarts]),
  );
  metric(
    'subnode_processes',
    'gauge',
    'processes on the node',
    known((n) => n.processes),
  );
  metric(
    'subnode_mailbox_messages',
    'gauge',
    'messages waiting in the mailboxes of the node',
    known((n) => n.mailbox),
  );
  metric(
    'subnode_process_memory_bytes',
    'gauge',
    'estimated bytes held by the processes of the node',
    known((n) => n.memory),
  );
  metric('subnode_process_exits_total', 'counter', 'processes that ended abnormally', per(counters.exits));
  metric('subnode_module_loads_total', 'counter', 'module versions loaded', per(counters.loads));
  metric('subnode_module_purges_total', 'counter', 'module versions purged', per(counters.purges));
  metric('subnode_process_migrations_total', 'counter', 'processes that arrived by migration', per(counters.migrations));
  metric(
    'subnode_upgrade_nodes_total',
    'counter',
    'nodes an upgrade plan finished on, by outcome',
    [...counters.upgrades].map(([key, n]) => {
      const [node, outcome] = key.split('\u0000');
      return [{ node: node!, outcome: outcome! }, n];
    }),
  );
  metric('subnode_messages_dropped_total', 'counter', 'messages dropped for a node down or unknown', per(counters.dropped));
  return `${out.join('\n')}\n`;
}
