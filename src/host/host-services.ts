/**
 * The host's service process (`<host.0>`): spawns on other nodes (`spawnOn`) and host function
 * calls (`callHost`) asked for by processes. Bounded per node before anything runs (`ServiceGate`:
 * in flight and per second), and the asking node's capabilities checked again here, on the
 * trusted side, whatever its kernel let through.
 */
import { BadArgument, NotAllowed, Refused, UnknownFunction, UnknownNode, toWire, type WireError } from '../errors.js';
import { allows, KIND_DEFAULTS, type HostCallLimit } from '../kernel/capabilities.js';
import { isPid, nodeOf, type Pid } from '../kernel/pid.js';
import type { Dest } from '../kernel/types.js';
import type { Events } from './events.js';
import type { NodeHandle } from './node-handle.js';
import { describeLimit, ServiceGate } from './service-gate.js';

export type HostFunction = (...args: never[]) => unknown;

/** What the service process needs from its system. */
export interface ServiceSystem {
  events: Events;
  /** The local node of that name, if any. */
  local(name: string): NodeHandle | undefined;
  /** Any node of the system (remote ones included); throws UnknownNode. */
  node(name: string): NodeHandle;
  send(dest: Dest, message: unknown): void;
  /** Files a durable server's checkpoint (durable-states.ts); resolves once it is durable. */
  checkpoint(origin: NodeHandle, request: Record<string, unknown>): Promise<void>;
}

export class HostServices {
  private readonly gate: ServiceGate;
  private readonly refusals = new Map<string, { inFlight?: WireError; perSecond?: WireError }>();

  constructor(
    private readonly system: ServiceSystem,
    private readonly functions: Record<string, HostFunction>,
  ) {
    this.gate = new ServiceGate((node, what) => system.events.emit({ type: 'capability_denied', node, what }));
  }

  /**
   * The host's service process: spawns on other nodes and host function calls asked for by
   * processes. The asking node's capabilities are checked again here, on the trusted side.
   */
  serve(raw: unknown): void {
    const request = raw as { $service?: string; ref?: string; from?: Pid; node?: string; module?: string; fn?: string; name?: string; args?: unknown[] };
    if (!request || typeof request !== 'object' || !isPid(request.from) || typeof request.ref !== 'string') return;
    const from = request.from;
    const origin = this.system.local(nodeOf(from));
    const reply = (body: { ok: unknown } | { error: WireError }): void => {
      try {
        this.system.send(from, { $serviceReply: request.ref, ...body });
      } catch (error) {
        this.system.send(from, { $serviceReply: request.ref, error: toWire(error) });
      }
    };
    if (!origin) return reply({ error: toWire(new UnknownNode(`no node named '${nodeOf(from)}'`)) });
    // A checkpoint is not a service call: one per durable server at a time (its kernel waits, or
    // sends at most every N ms), bounded by the node's durable capability and size limit instead.
    if (request.$service === 'checkpoint') {
      const ack = (raw as { ack?: unknown }).ack === true;
      void this.system.checkpoint(origin, raw as Record<string, unknown>).then(
        () => ack && reply({ ok: true }),
        (error: unknown) => ack && reply({ error: toWire(error) }),
      );
      return;
    }
    // Bounded per node before anything runs, synchronously: a flood is refused here and costs the
    // host one small answer per request; the host goes on.
    // Both fields are there: checkLimits filled in the kind's defaults.
    const limit = (origin.limits.hostCalls ?? KIND_DEFAULTS[origin.kind].limits.hostCalls) as HostCallLimit;
    const over = this.gate.admit(origin.name, limit);
    // A flood is cut: dropped unanswered for a second (its callers time out), the host goes on.
    if (over === 'flood') return;
    if (over !== undefined) return reply({ error: this.refusal(origin, over, limit) });
    this.runService(origin, from, request)
      .then(
        (ok) => reply({ ok }),
        (error: unknown) => reply({ error: toWire(error) }),
      )
      .finally(() => this.gate.done(origin.name));
  }

  /** The answer to a call over a node's limits: made once per node and bound, so a flood costs no new error each. */
  private refusal(node: NodeHandle, over: 'inFlight' | 'perSecond', limit: HostCallLimit): WireError {
    let cached = this.refusals.get(node.name);
    if (!cached) this.refusals.set(node.name, (cached = {}));
    return (cached[over] ??= toWire(
      new Refused(`node '${node.name}' has ${describeLimit(over, limit)}`, { node: node.name, reason: 'host_call_limit', limit: over }),
    ));
  }

  /** One admitted service request; the asking node's capabilities are checked again here. */
  private async runService(
    origin: NodeHandle,
    from: Pid,
    request: { $service?: string; node?: string; module?: string; fn?: string; name?: string; args?: unknown[] },
  ): Promise<unknown> {
    const args = Array.isArray(request.args) ? request.args : [];
    if (request.$service === 'spawn') {
      const target = String(request.node);
      const granted = origin.capabilities.spawnRemote;
      if (granted === false || (Array.isArray(granted) && !granted.includes(target))) {
        this.system.events.emit({ type: 'capability_denied', node: origin.name, pid: from, what: `spawn on node '${target}'` });
        throw new NotAllowed(`node '${origin.name}' may not spawn on node '${target}'`, { node: target });
      }
      return await this.system.node(target).spawn(String(request.module), String(request.fn), args);
    }
    if (request.$service === 'host') {
      const name = String(request.name);
      if (!allows(origin.capabilities.services.functions, name)) {
        this.system.events.emit({ type: 'capability_denied', node: origin.name, pid: from, what: `host function '${name}'` });
        throw new NotAllowed(`node '${origin.name}' may not call host function '${name}'`, { name });
      }
      const fn = Object.prototype.hasOwnProperty.call(this.functions, name) ? this.functions[name] : undefined;
      if (!fn) throw new UnknownFunction(`the host has no function '${name}'`, { function: name });
      return await (fn as (...a: unknown[]) => unknown)(...args);
    }
    throw new BadArgument(`unknown service ${JSON.stringify(request.$service)}`);
  }
}
