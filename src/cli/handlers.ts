/**
 * What the server does for each op of the control protocol: one handler per entry of OPS
 * (src/wire/cli.ts), typed by it. `Handlers` is a mapped type over the op list, so a missing op,
 * an extra one, or a handler taking or returning the wrong shape does not compile. Args arrive
 * checked (`checkRequest`): required fields present, every field of its type, no unknown ones.
 */
import { serialize } from 'node:v8';
import { BadArgument, Refused, Timeout, type SubnodeError } from '../errors.js';
import type { System } from '../host/system.js';
import type { Pid } from '../kernel/pid.js';
import type { LoadedConfig } from './config.js';
import { Resolver } from './resolve.js';
import { ObserveModel } from '../observe/model.js';
import type { ArgsOf, EventRecord, Id, Names, NodeRow, Op, Progress, ResultOf } from '../wire/cli.js';

/** One request being served: its id, and how to stream to its connection. */
export interface Call {
  id: Id;
  progress(progress: Progress): void;
  /** Streams the system's events to this connection from now on (until it closes). */
  follow(): void;
}

export type Handler<O extends Op> = (args: ArgsOf<O>, call: Call) => Promise<ResultOf<O>> | ResultOf<O>;
export type Handlers = { [O in Op]: Handler<O> };

export interface ServerState {
  system: System;
  config: LoadedConfig;
  socketPath: string;
  startedAt: Date;
  /** The most recent events, oldest first. */
  recent(): readonly EventRecord[];
  /** A line in the system's log. */
  say(text: string): void;
  /** Stops the system, after the answer is sent. */
  stop(): void;
}

export function makeHandlers(s: ServerState): Handlers {
  const { system } = s;
  const find = new Resolver(system);
  let upgrading = false;
  let observed: ObserveModel | undefined;
  /** Made on first use: a system nobody observes keeps no observer state. */
  const model = () => (observed ??= new ObserveModel(system));
  const versions = (vs: number[]) => vs.map((v) => `v${v}`).join(', ');

  return {
    info: () => ({
      pid: process.pid,
      config: s.config.file,
      socket: s.socketPath,
      startedAt: s.startedAt.toISOString(),
      uptimeMs: Date.now() - s.startedAt.getTime(),
      nodes: system.nodes().length,
      ...(system.cluster ? { cluster: { host: system.cluster.host, hosts: system.cluster.hosts().sort() } } : {}),
    }),

    nodes: () =>
      Promise.all(
        system.nodes().map(async (n): Promise<NodeRow> => {
          const handle = system.node(n.name);
          const [processes, modules] =
            n.status === 'running'
              ? await Promise.all([
                  handle.processes().then(
                    (p) => p.length,
                    () => null,
                  ),
                  handle.modules().then(
                    (m) => m.length,
                    () => null,
                  ),
                ])
              : [null, null];
          return { ...n, processes, modules };
        }),
      ),

    ps: async ({ node }) =>
      (await Promise.all(find.nodes(node).map(async (h) => (await h.processes()).map((p) => ({ node: h.name, ...find.hostOf(h.name), ...p }))))).flat(),

    modules: async ({ node }) =>
      (await Promise.all(find.nodes(node).map(async (h) => (await h.modules()).map((m) => ({ node: h.name, ...find.hostOf(h.name), ...m }))))).flat(),

    names: async () => {
      const names: Names = { nodes: system.nodes().map((n) => n.name), modules: {}, pids: [] };
      await Promise.all(
        find.nodes().map(async (h) => {
          const [modules, processes] = await Promise.all([h.modules().catch(() => []), h.processes().catch(() => [])]);
          names.modules[h.name] = modules.map((m) => m.name);
          for (const p of processes) if (names.pids.length < 10_000) names.pids.push(p.pid);
        }),
      );
      return names;
    },

    load: async ({ node: name, module, path, purge }) => {
      const node = find.node(name);
      const report = await node.load(module, { path }, purge === undefined ? {} : { purge });
      s.say(`control: loaded ${module} v${report.version} on ${node.name} from ${path}`);
      return report;
    },

    purge: async ({ node: name, module, to }) => {
      const node = find.node(name);
      if (to !== undefined) {
        const target = find.node(to);
        const { moved, purge } = await find.withModules(node, () => system.purgeToNode(node.name, module, target.name));
        s.say(
          `control: purge ${module} on ${node.name}: moved ${moved.filter((m) => m.ok).length} process(es) to ${target.name}; ${purge.ok ? `purged [${versions(purge.purged)}]${purge.killed.length ? `, killed ${purge.killed.join(' ')}` : ''}` : 'refused'}`,
        );
        return { ...purge, moved };
      }
      const report = await find.withModules(node, () => node.purge(module));
      s.say(
        `control: purge ${module} on ${node.name}: purged [${versions(report.purged)}]${report.killed.length ? `, killed ${report.killed.join(' ')}` : ''}`,
      );
      return report;
    },

    'soft-purge': async ({ node: name, module }) => {
      const node = find.node(name);
      const report = await find.withModules(node, () => node.softPurge(module));
      s.say(
        `control: soft-purge ${module} on ${node.name}: ${report.ok ? `purged [${versions(report.purged)}]` : `refused, lingering ${report.lingering.join(' ')}`}`,
      );
      return report;
    },

    lingering: ({ node: name, module }) => {
      const node = find.node(name);
      return find.withModules(node, () => node.lingering(module));
    },

    upgrade: async ({ plan, dryRun }, call) => {
      if (upgrading) throw new Refused('another upgrade is running; wait for it to finish');
      upgrading = true;
      try {
        // The same selection the upgrade makes: progress counts what it will walk.
        const total = (() => {
          try {
            return system.selectedNodes(plan.nodes, plan.canary).length;
          } catch {
            return 0;
          }
        })();
        let done = 0;
        const off = system.on('upgrade_node', (event) => {
          if (event.phase !== 'start') done++;
          call.progress({ node: event.node, phase: event.phase, done, total });
        });
        try {
          const report = await system.upgrade(plan, { dryRun });
          if (report.dryRun) return report;
          s.say(
            `control: upgrade of ${(plan.modules ?? []).map((m) => m.module).join(', ')}: ${report.nodes.map((n) => `${n.node} ${n.status}`).join(', ') || 'no nodes'}`,
          );
          return report;
        } finally {
          off();
        }
      } catch (error) {
        throw find.explain(error);
      } finally {
        upgrading = false;
      }
    },

    migrate: async ({ pid: given, node, extra }) => {
      const pid = await find.livePid(given);
      const target = find.node(node);
      const result = await system.migrate(pid, target.name, extra === undefined ? {} : { extra });
      s.say(
        `control: migrated ${pid} from ${result.from} to ${result.to}${result.vsn && result.vsn.from !== result.vsn.to ? ` (state converted ${JSON.stringify(result.vsn.from)} -> ${JSON.stringify(result.vsn.to)})` : ''}`,
      );
      return result;
    },

    'migrate-all': async ({ from: fromName, to: toName, module, batch = 100, extra }, call) => {
      const from = find.node(fromName);
      const to = find.node(toName);
      let pids: Pid[] | undefined;
      if (module === undefined) pids = (await from.processes()).map((p) => p.pid).filter((pid) => system.locate(pid).node === from.name);
      else await find.withModules(from, () => from.lingering(module)); // an unknown module fails here, with the node's list
      const results = await system.migrateAll({
        from: from.name,
        to: to.name,
        ...(module !== undefined ? { module } : { pids }),
        ...(extra !== undefined ? { extra } : {}),
        batch,
        onProgress: (done, total) => call.progress({ node: to.name, phase: 'migrated', done, total }),
      });
      const moved = results.filter((r) => r.ok).length;
      s.say(`control: migrated ${moved} of ${results.length} process${results.length === 1 ? '' : 'es'} from ${from.name} to ${to.name}`);
      return results;
    },

    spawn: async ({ node: name, module, fn, args = [], name: registered }) => {
      const node = find.node(name);
      const pid = await find.withModules(node, () => node.spawn(module, fn, args, registered !== undefined ? { name: registered } : {}));
      s.say(`control: spawned ${pid} (${module}.${fn}) on ${node.name}`);
      return pid;
    },

    kill: async ({ pid: given, reason = 'kill' }) => {
      const pid = await find.livePid(given);
      await system.node(system.locate(pid).node).exit(pid, reason);
      s.say(`control: exit signal ${JSON.stringify(reason)} sent to ${pid}`);
      return true as const;
    },

    send: async ({ to, message }) => {
      const dest = await find.dest(to);
      system.send(dest, message);
      return dest;
    },

    call: async ({ to, request, timeoutMs = 5_000 }) => {
      const dest = await find.dest(to);
      try {
        return { reply: await system.call(dest, request, timeoutMs) };
      } catch (error) {
        if ((error as SubnodeError)?.code !== 'timeout') throw error;
        throw new Timeout(
          `no reply from ${to} within ${timeoutMs} ms: is it a server (\`subnode ps\` shows what it runs), and busy? --timeout MS waits longer`,
          { dest },
        );
      }
    },

    events: ({ follow = false, last = follow ? 0 : 50 }, call) => {
      const recent = s.recent();
      const events = last > 0 ? recent.slice(-last) : [];
      if (follow) call.follow();
      return { events, following: follow };
    },

    releases: () => system.releases.list(),

    rollback: async ({ release }, call) => {
      const off = system.on('upgrade_node', (event) => call.progress({ node: event.node, phase: event.phase, done: 0, total: 0 }));
      try {
        const report = await system.rollback(release);
        s.say(`control: rollback to release ${release}: ${report.nodes.map((n) => `${n.node} ${n.status}`).join(', ') || 'nothing differed'}`);
        return report;
      } finally {
        off();
      }
    },

    'make-permanent': async ({ release }) => ({ release: await system.releases.makePermanent(release) }),

    durable: async ({ node }) =>
      (await system.durable.list(node)).map(({ node, key, module, vsn, state, at }) => ({ node, key, module, vsn, bytes: serialize(state).byteLength, at })),

    'durable-forget': async ({ key, node }) => {
      // Without a node: the one node that stores the key (a key is per node).
      const nodes = node === undefined ? [...new Set((await system.durable.list()).filter((s) => s.key === key).map((s) => s.node))] : [node];
      if (nodes.length > 1) throw new BadArgument(`durable state '${key}' is stored on nodes ${nodes.join(', ')}: name one with --node`, { key, nodes });
      if (!nodes.length || !(await system.durable.forget(nodes[0]!, key)))
        throw new Refused(`no durable state '${key}' is stored${node === undefined ? '' : ` on node '${node}'`} (see subnode durable)`, { key });
      s.say(`control: forgot durable state '${key}' of node ${nodes[0]}`);
      return { node: nodes[0]!, key };
    },

    stop: () => {
      setImmediate(() => s.stop());
      return { stopping: true as const, pid: process.pid };
    },

    'observe-nodes': () => model().nodes(),

    'observe-ps': (query) => {
      if (query.node !== undefined) find.node(query.node);
      return model().processes(query);
    },

    'observe-process': async ({ pid: given }) => {
      const pid = await find.livePid(given).catch(() => undefined);
      return pid === undefined ? null : model().process(pid);
    },

    'observe-code': ({ node }) => model().code(node === undefined ? undefined : find.node(node).name),

    'restart-node': async ({ node: name }) => {
      const node = find.node(name);
      await node.restart();
      model().invalidate();
      s.say(`control: restarted node ${node.name} (creation ${node.creation})`);
      return { node: node.name, creation: node.creation };
    },
  };
}
