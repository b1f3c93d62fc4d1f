/**
 * The server side's names: a node, a live pid, a destination, each found through the System, or
 * an error that tells the operator what there is instead (the nodes, the node's modules).
 */
import { BadArgument, NoProcess, UnknownModule, UnknownNode, type SubnodeError } from '../errors.js';
import type { NodeHandle } from '../host/node-handle.js';
import type { System } from '../host/system.js';
import { parsePid, type Pid } from '../kernel/pid.js';
import type { Dest } from '../kernel/types.js';

export class Resolver {
  constructor(private readonly system: System) {}

  /** A node by name, or an UnknownNode error that lists the nodes there are. */
  node(name: string): NodeHandle {
    try {
      return this.system.node(name);
    } catch (error) {
      throw this.explain(error);
    }
  }

  /**
   * The nodes an op on `node` (one name, or every node when absent) applies to: in a cluster,
   * every host's (a remote node's handle runs the op on its host), those of gone hosts left out.
   */
  nodes(node?: string): NodeHandle[] {
    try {
      if (node !== undefined) return [this.system.node(node)];
      return this.system.nodes().map((n) => this.system.node(n.name));
    } catch (error) {
      throw this.explain(error);
    }
  }

  /** `{ host }` of a node in a cluster, `{}` otherwise (for rows that name their node). */
  hostOf(node: string): { host?: string } {
    const host = (this.system.nodes().find((n) => n.name === node) as { host?: string } | undefined)?.host;
    return host === undefined ? {} : { host };
  }

  /** An UnknownNode error gets the list of nodes added. */
  explain(error: unknown): unknown {
    const e = error as SubnodeError;
    if (e?.code === 'unknown_node' && !/\(nodes:/.test(e.message)) {
      return new UnknownNode(
        `${e.message} (nodes: ${
          this.system
            .nodes()
            .map((n) => n.name)
            .join(', ') || 'none'
        })`,
        e.details,
      );
    }
    return error;
  }

  /** Runs `fn`; an UnknownModule error gets the node's module list added. */
  async withModules<T>(node: NodeHandle, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      if ((error as SubnodeError)?.code !== 'unknown_module') throw error;
      const names = await node.modules().then(
        (m) => m.map((x) => x.name),
        () => [],
      );
      throw new UnknownModule(`${(error as Error).message} (modules on '${node.name}': ${names.join(', ') || 'none'})`, (error as SubnodeError).details);
    }
  }

  /** A pid of a live process, or an error saying which part is wrong. */
  async livePid(value: string): Promise<Pid> {
    const parts = parsePid(value);
    if (!parts) throw new BadArgument(`${JSON.stringify(value)} is not a pid: pids look like <node.N> (or <node.N.C> after a restart)`);
    const pid = value as Pid;
    const known = this.system.nodes().map((n) => n.name);
    if (!known.includes(parts.node)) {
      throw new UnknownNode(`pid ${pid}: no node named '${parts.node}' (nodes: ${known.join(', ')})`, { node: parts.node });
    }
    // A process that migrated runs elsewhere; its home node only forwards to it.
    const where = this.system.locate(pid).node;
    if (!(await this.system.node(where).processInfo(pid))) {
      throw new NoProcess(`no process ${pid} on node '${where}': it has ended, or never existed (\`subnode ps ${where}\` lists the live ones)`, { pid });
    }
    return pid;
  }

  /** A pid, `name@node` (a registered name) or `global:name`, checked to be alive. */
  async dest(value: string): Promise<Dest> {
    if (value.startsWith('global:')) {
      const name = value.slice(7);
      const pid = this.system.whereis(name);
      if (!pid) throw new NoProcess(`no process is registered globally as '${name}'`, { name });
      return pid;
    }
    const at = value.lastIndexOf('@');
    if (at > 0 && !value.startsWith('<')) {
      const name = value.slice(0, at);
      const node = this.node(value.slice(at + 1));
      const pid = await node.whereis(name);
      if (!pid) throw new NoProcess(`no process registered as '${name}' on node '${node.name}'`, { name, node: node.name });
      return pid;
    }
    return this.livePid(value);
  }
}
