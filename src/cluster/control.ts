/**
 * Control of nodes across hosts: `{ node, op, args }` over NATS request/reply to the host that
 * owns the node, which runs it as its own NodeHandle would (the op table makes this one generic
 * path), with a deadline. A handle on a remote node is a NodeHandle whose supervision is
 * `RemoteSupervision`, so every NodeHandle method (spawn, processes, load, the steps of
 * migration…) works on a node of any host, and `system.migrate` moves processes across hosts.
 *
 * The owning host checks what it would check for its own callers (the module allow-list on a
 * load) and keeps the node's release (a load from another host is replayed after a restart).
 * Requests for one node are posted to it in the order they arrived.
 */
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { BadArgument, ClusterUnavailable, NodeDown, NotAllowed, Timeout, UnknownNode, fromWire, toWire } from '../errors.js';
import { allows } from '../kernel/capabilities.js';
import type { ControlArgs, ControlOp, ControlReply, Result } from '../kernel/control-ops.js';
import type { Envelope } from '../kernel/signals.js';
import type { LoadReport } from '../kernel/types.js';
import { isPid, type Pid } from '../kernel/pid.js';
import type { CodePolicy } from '../kernel/policy.js';
import type { MessagePort } from 'node:worker_threads';
import { NodeHandle } from '../host/node-handle.js';
import type { NodeStatus } from '../host/node-supervision.js';
import { isCodeRef, type CodeRef, type CodeStore } from './code-store.js';
import type { NodeUpgradeReport, UpgradeStep } from '../kernel/upgrade.js';
import type { ClusterHost } from './hooks.js';
import type { Names, Settings } from './options.js';
import { senderOf } from '../net/subjects.js';
import type { Spill } from './spill.js';
import type { Moves } from './moves.js';

/** An upgrade step as it crosses: a load's code by hash. */
type Step = UpgradeStep | (Omit<Extract<UpgradeStep, { op: 'load' }>, 'js'> & { js: CodeRef });

interface Request {
  node: string;
  op: string;
  args: unknown[];
}

/** A plan's transaction on one node (phased or rolling): its steps' code goes by hash, its loads are recorded by the owning host. */
const UPGRADES = new Set(['applyUpgrade', 'rollingUpgrade']);

/** Operations on the node's life, beside the op table. */
const LIFE = new Set(['$restart', '$stop', '$kill']);

export class ControlServer {
  private sub: Subscription | undefined;
  /** Per node: settles once the request that arrived last has been posted to it. */
  private readonly posted = new Map<string, Promise<void>>();

  constructor(
    private readonly nc: NatsConnection,
    private readonly names: Names,
    private readonly settings: Settings,
    private readonly host: ClusterHost,
    private readonly code: CodeStore,
    private readonly spill: Spill,
    /** What the moves across hosts learn here: migrate-ins and commits other hosts drove on this host's nodes. */
    private readonly moves: Pick<Moves, 'arrived' | 'departed'>,
  ) {}

  start(): void {
    this.sub = this.nc.subscribe(this.names.control(this.settings.host, '*'), {
      callback: (error, msg) => {
        if (!error) void this.serve(msg);
      },
    });
  }

  stop(): void {
    this.sub?.unsubscribe();
  }

  private async serve(msg: Msg): Promise<void> {
    let result: Result<unknown>;
    try {
      const request = (await this.spill.in(msg.data)) as Request;
      result = { ok: await this.run(request, senderOf(msg.subject)) };
    } catch (error) {
      result = { error: toWire(error) };
    }
    try {
      msg.respond(await this.spill.out(result));
    } catch (error) {
      msg.respond(await this.spill.out({ error: toWire(new BadArgument(`the answer could not be sent: ${(error as Error).message}`)) }));
    }
  }

  private async run({ node, op, args }: Request, sender: string): Promise<unknown> {
    if (typeof node !== 'string' || typeof op !== 'string' || !Array.isArray(args)) throw new BadArgument('bad control request');
    const before = this.posted.get(node) ?? Promise.resolve();
    let posted!: () => void;
    const mine = new Promise<void>((resolve) => (posted = resolve));
    this.posted.set(node, mine);
    let reply: Promise<unknown>;
    try {
      if (op === 'load' && isCodeRef(args[1])) args[1] = await this.code.get(args[1]);
      if (UPGRADES.has(op) && Array.isArray(args[0])) args[0] = await Promise.all((args[0] as Step[]).map((step) => this.stepIn(step)));
      await before;
      const handle = this.host.local().find((h) => h.name === node);
      if (!handle) throw new UnknownNode(`no node named '${node}' on host '${this.settings.host}'`, { node });
      reply = this.invoke(handle, op, args, sender);
    } finally {
      posted();
      if (this.posted.get(node) === mine) this.posted.delete(node);
    }
    return reply;
  }

  /** Posts the request to the node now (so requests keep their order), resolving with its answer. */
  private async invoke(handle: NodeHandle, op: string, args: unknown[], sender: string): Promise<unknown> {
    if (LIFE.has(op)) {
      if (op === '$restart') return handle.restart();
      if (op === '$stop') return handle.stop();
      return handle.kill(typeof args[0] === 'string' ? args[0] : undefined);
    }
    const { supervision } = handle;
    if (supervision.status === 'starting' || supervision.status === 'restarting') await supervision.up.catch(() => {});
    if (supervision.status !== 'running') throw new NodeDown(`node '${handle.name}' is ${supervision.status}`, { node: handle.name });
    // Through the handle, which records it in the node's release (a restart keeps it).
    if (op === 'setPolicy') return handle.setPolicy(args[0] as CodePolicy, args[1] as string | undefined);
    if (op === 'load') {
      const module = String(args[0]);
      if (!allows(handle.capabilities.modules, module)) {
        this.host.events.emit({ type: 'capability_denied', node: handle.name, what: `load module '${module}' (from another host)` });
        throw new NotAllowed(`node '${handle.name}' may not load module '${module}'`, { node: handle.name, module });
      }
    }
    const answer = await (supervision.callNow as (op: string, ...a: unknown[]) => Promise<unknown>)(op, ...args);
    // Moved here at the sender's request: its notice of where they run now is expected from it
    // (moves.ts). Only pids it asked to move count, whatever the node (an isolate's, untrusted) answers.
    if (op === 'migrateIn') {
      const pids = movedIn(args[0], answer);
      if (pids.length) this.moves.arrived(sender, handle.name, pids);
    }
    // Moved from here to another node at the sender's request (before it tells anyone, so before any end).
    if (op === 'migrateCommit' && Array.isArray(args[0]) && typeof args[1] === 'string')
      this.moves.departed(sender, handle.name, (args[0] as unknown[]).filter(isPid), args[1]);
    // Recorded in the node's release, so a restart replays it (deletes and purges it follows itself).
    if (op === 'load') handle.released(String(args[0]), String(args[1]), answer as LoadReport);
    if (UPGRADES.has(op) && (answer as NodeUpgradeReport).ok) {
      for (const l of (answer as NodeUpgradeReport).loaded) {
        const step = (args[0] as UpgradeStep[]).find((s) => s.op === 'load' && s.module === l.module);
        if (step?.op === 'load') handle.released(l.module, step.js, { version: l.version, purged: [] });
      }
    }
    return answer;
  }

  /** A plan's load step with its code by hash: the code, from the store. */
  private async stepIn(step: Step): Promise<UpgradeStep> {
    return step.op === 'load' && isCodeRef(step.js) ? { ...step, js: await this.code.get(step.js) } : (step as UpgradeStep);
  }
}

/** The pids of `snapshots` that `answer` (a node's, maybe an isolate's: untrusted) says started: each once, only those asked for. */
export function movedIn(snapshots: unknown, answer: unknown): Pid[] {
  if (!Array.isArray(snapshots) || !Array.isArray(answer)) return [];
  const asked = new Set<unknown>(snapshots.map((s) => (s && typeof s === 'object' ? (s as { pid?: unknown }).pid : undefined)));
  const pids = new Set<Pid>();
  for (const o of answer as unknown[]) {
    if (!o || typeof o !== 'object' || !('ok' in o)) continue;
    const pid = (o as { pid?: unknown }).pid;
    if (isPid(pid) && asked.has(pid)) pids.add(pid);
  }
  return [...pids];
}

/** What a remote handle needs of the cluster. */
export interface RemoteView {
  /** The node's host, if that host is alive. */
  hostOf(node: string): string | undefined;
  /** The node's last reported status and creation. */
  summaryOf(node: string): { status: NodeStatus; creation: number } | undefined;
}

export class ControlClient {
  constructor(
    private readonly nc: NatsConnection,
    private readonly names: Names,
    private readonly settings: Settings,
    private readonly code: CodeStore,
    private readonly view: RemoteView,
    private readonly spill: Spill,
  ) {}

  async request(node: string, op: string, args: unknown[]): Promise<unknown> {
    const host = this.view.hostOf(node);
    if (!host) throw new NodeDown(`node '${node}' is not on any live host`, { node });
    if (op === 'load' && typeof args[1] === 'string') args = [args[0], await this.code.put(args[1]), ...args.slice(2)];
    // A plan's code goes through the code store too (each version once, whatever its size).
    if (UPGRADES.has(op) && Array.isArray(args[0]))
      args = [
        await Promise.all((args[0] as UpgradeStep[]).map(async (s) => (s.op === 'load' ? { ...s, js: await this.code.put(s.js) } : s))),
        ...args.slice(1),
      ];
    const timeout = this.settings.requestTimeoutMs;
    let payload: Uint8Array;
    try {
      payload = await this.spill.out({ node, op, args });
    } catch (error) {
      throw new ClusterUnavailable(
        `${op} on node '${node}': the request is too large for one NATS message and could not be stored (${(error as Error).message})`,
        {
          node,
          host,
          op,
        },
      );
    }
    let reply: Msg;
    try {
      reply = await this.nc.request(this.names.control(host, this.settings.host), payload, { timeout });
    } catch (error) {
      const name = (error as Error).name;
      if (/timeout/i.test(name)) throw new Timeout(`${op} on node '${node}' (host '${host}') did not answer within ${timeout} ms`, { node, host, op });
      throw new NodeDown(`${op} on node '${node}': host '${host}' cannot be reached (${(error as Error).message})`, { node, host, op });
    }
    const result = (await this.spill.in(reply.data)) as Result<unknown>;
    if ('error' in result) throw fromWire(result.error);
    return result.ok;
  }
}

/** The life of a node of another host, as a NodeHandle sees it: every call goes over NATS. */
export class RemoteSupervision {
  readonly up: Promise<void> = Promise.resolve();

  constructor(
    readonly name: string,
    private readonly client: ControlClient,
    private readonly view: RemoteView,
  ) {}

  /** Running while its host is alive and it is not stopped or failed there (its host waits out starts). */
  get status(): NodeStatus {
    if (!this.view.hostOf(this.name)) return 'stopped';
    const reported = this.view.summaryOf(this.name)?.status;
    return reported === 'stopped' || reported === 'failed' ? reported : 'running';
  }

  get creation(): number {
    return this.view.summaryOf(this.name)?.creation ?? -1;
  }

  callNow = <K extends ControlOp>(op: K, ...args: ControlArgs<K>): Promise<ControlReply<K>> =>
    this.client.request(this.name, op, args) as Promise<ControlReply<K>>;

  tell<K extends ControlOp>(op: K, ...args: ControlArgs<K>): void {
    this.callNow(op, ...args).catch(() => {});
  }

  deliver(_envelopes: Envelope[], _from: string): boolean {
    return false;
  }
  connect(_peer: string, port: MessagePort): void {
    port.close();
  }
  async restart(): Promise<void> {
    await this.client.request(this.name, '$restart', []);
  }
  kill(reason?: string): void {
    this.client.request(this.name, '$kill', [reason]).catch(() => {});
  }
  async stop(): Promise<void> {
    await this.client.request(this.name, '$stop', []);
  }
  async shutdown(): Promise<void> {}
}

/** A NodeHandle for a node of another host. */
export function remoteHandle(name: string, host: ClusterHost, supervision: RemoteSupervision): NodeHandle {
  const handle = new NodeHandle({ name }, host.context);
  Object.defineProperty(handle, 'supervision', { value: supervision });
  return handle;
}
