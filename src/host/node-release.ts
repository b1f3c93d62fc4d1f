/**
 * What a node must get back when its thread is started again: its code policies and each
 * module's current version (compiled), in load order. The host keeps it on the trusted side, as
 * the node's control operations succeed, and replays it into every new incarnation.
 */
import { checkPolicy, type CodePolicy } from '../kernel/policy.js';
import type { ControlArgs, ControlOp, ControlReply } from '../wire/node.js';

/** A way to run control operations on the incarnation being booted. */
export type Replay = <K extends ControlOp>(op: K, ...args: ControlArgs<K>) => Promise<ControlReply<K>>;

export class NodeRelease {
  private policy: CodePolicy | undefined;
  private readonly modulePolicies = new Map<string, CodePolicy>();
  /** Module → compiled source of its current version, in load order. */
  private readonly modules = new Map<string, string>();

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
    return this.modules.get(module);
  }

  loaded(module: string, js: string): void {
    this.modules.delete(module);
    this.modules.set(module, js);
  }

  deleted(module: string): void {
    this.modules.delete(module);
  }

  policyChanged(policy: CodePolicy, module?: string): void {
    if (module === undefined) this.policy = policy;
    else this.modulePolicies.set(module, policy);
  }

  /** Brings a fresh incarnation up to this release: policies first, then the modules in order. */
  async replay(call: Replay): Promise<void> {
    if (this.policy) await call('setPolicy', this.policy);
    for (const [module, policy] of this.modulePolicies) await call('setPolicy', policy, module);
    for (const [module, js] of this.modules) await call('load', module, js, {});
  }
}
