/**
 * What the observer's web server (and `subnode top`) needs of a system, two ways: a System in
 * this process (`systemApi`, for an app that embeds one), or a running `subnode run` reached over
 * its control socket (`clientApi`). Both compute views with the same ObserveModel, in the
 * system's own process: only pages cross.
 */
import { resolve } from 'node:path';
import type { MigrationResult } from '../host/migration.js';
import type { System } from '../host/system.js';
import type { UpgradePlan, UpgradeReport } from '../host/upgrade-plan.js';
import type { Pid } from '../kernel/pid.js';
import type { PurgeReport } from '../kernel/types.js';
import type { Client } from '../cli/client.js';
import type { EventRecord, Progress } from '../wire/cli.js';
import { ObserveModel, type CodeRow, type NodeStats, type ProcessDetail, type ProcessPage, type ProcessQuery } from './model.js';

export interface ObserveApi {
  /** Where the system is: "this process", or the control socket's path. */
  readonly describe: string;
  nodes(): Promise<NodeStats[]>;
  processes(query: ProcessQuery): Promise<ProcessPage>;
  process(pid: string): Promise<ProcessDetail | null>;
  code(node?: string): Promise<CodeRow[]>;
  purge(node: string, module: string, mode: 'kill' | 'soft'): Promise<PurgeReport>;
  migrate(pid: string, node: string): Promise<MigrationResult>;
  upgrade(plan: UpgradePlan, dryRun: boolean, progress: (p: Progress) => void): Promise<UpgradeReport>;
  restart(node: string): Promise<{ node: string; creation: number }>;
  /** The latest events (oldest first), then every new one until the returned function is called. */
  follow(listener: (record: EventRecord) => void): Promise<() => void>;
  close(): void;
}

const RECENT = 500;

/** The API over a System in this process. */
export function systemApi(system: System): ObserveApi {
  const model = new ObserveModel(system);
  const recent: EventRecord[] = [];
  const listeners = new Set<(record: EventRecord) => void>();
  const off = system.on('*', (event) => {
    const record = { at: new Date().toISOString(), event };
    recent.push(record);
    if (recent.length > RECENT) recent.shift();
    for (const l of listeners) l(record);
  });
  const acted = <T>(result: Promise<T>): Promise<T> => result.finally(() => model.invalidate());
  return {
    describe: 'this process',
    nodes: () => model.nodes(),
    processes: (query) => model.processes(query),
    process: (pid) => model.process(pid as Pid),
    code: (node) => model.code(node),
    purge: (node, module, mode) => acted(mode === 'soft' ? system.node(node).softPurge(module) : system.node(node).purge(module, 'kill')),
    migrate: (pid, node) => acted(system.migrate(pid as Pid, node)),
    upgrade: (plan, dryRun, progress) => {
      let done = 0;
      const total = (() => {
        try {
          return system.selectedNodes(plan.nodes, plan.canary).length;
        } catch {
          return 0;
        }
      })();
      const stop = system.on('upgrade_node', (e) => {
        if (e.phase !== 'start') done++;
        progress({ node: e.node, phase: e.phase, done, total });
      });
      return acted(system.upgrade(plan, { dryRun })).finally(stop);
    },
    restart: async (node) => {
      const handle = system.node(node);
      await acted(handle.restart());
      return { node, creation: handle.creation };
    },
    follow: async (listener) => {
      for (const r of recent) listener(r);
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close: () => {
      off();
      model.close();
      listeners.clear();
    },
  };
}

/**
 * The API over a control socket. `connect` opens another connection for each event follower
 * (a followed connection streams events until it closes).
 */
export function clientApi(client: Client, connect: () => Promise<Client>, cwd = process.cwd()): ObserveApi {
  const followers = new Set<Client>();
  return {
    describe: client.found.path,
    nodes: () => client.request('observe-nodes', {}),
    processes: (query) => client.request('observe-ps', query),
    process: (pid) => client.request('observe-process', { pid }),
    code: (node) => client.request('observe-code', node === undefined ? {} : { node }),
    purge: (node, module, mode) => client.request(mode === 'soft' ? 'soft-purge' : 'purge', { node, module }),
    migrate: (pid, node) => client.request('migrate', { pid, node }),
    upgrade: (plan, dryRun, progress) => {
      // Source paths are relative to where the observer runs (the system may run elsewhere).
      const modules = (plan.modules ?? []).map((m) => {
        const source = m.source as { path?: unknown };
        return source && typeof source === 'object' && typeof source.path === 'string' ? { ...m, source: { path: resolve(cwd, source.path) } } : m;
      });
      return client.request('upgrade', { plan: { ...plan, modules }, dryRun }, { onMessage: (m) => progress(m.progress), timeoutMs: 10 * 60_000 });
    },
    restart: (node) => client.request('restart-node', { node }),
    follow: async (listener) => {
      const c = await connect();
      followers.add(c);
      // Streamed lines can be read before the answer's continuation runs: they wait for it.
      let early: EventRecord[] | null = [];
      const { events } = await c.request(
        'events',
        { follow: true, last: 200 },
        {
          onMessage: (m) => (early ? early.push({ at: m.at, event: m.event }) : listener({ at: m.at, event: m.event })),
        },
      );
      for (const r of [...events, ...early]) listener(r);
      early = null;
      return () => {
        followers.delete(c);
        c.close();
      };
    },
    close: () => {
      for (const c of followers) c.close();
      followers.clear();
    },
  };
}
