/**
 * The control requests of one node, in the order issued: each waits out a start or restart,
 * leaves after every request issued before it (even one still being prepared, like a load being
 * compiled), and fails with a typed error rather than hang (NodeDown; Timeout from the node's
 * deadline; NotCloneable when part of it cannot be copied to the node).
 */
import { NodeDown, NotCloneable } from '../errors.js';
import { checkPid } from '../kernel/pid.js';
import type { ControlArgs, ControlOp, ControlReply } from '../wire/node.js';
import type { NodeSupervision } from './node-supervision.js';

export class ControlQueue {
  /** Settles once the request issued last has been posted. */
  private issued: Promise<void> = Promise.resolve();

  constructor(
    private readonly node: string,
    /** The node's life as its handle has it now (a handle on another host's node replaces it: src/cluster/control.ts). */
    private readonly life: () => NodeSupervision,
  ) {}

  /** Issues `op`; its arguments may still be in preparation (a promise): it keeps its place anyway. */
  issue<K extends ControlOp>(op: K, args: ControlArgs<K> | Promise<ControlArgs<K>>): Promise<ControlReply<K>> {
    const before = this.issued;
    let posted!: () => void;
    this.issued = new Promise<void>((resolve) => (posted = resolve));
    const request = (async (): Promise<ControlReply<K>> => {
      try {
        const ready = await args;
        await before;
        const supervision = this.life();
        if (supervision.status === 'starting' || supervision.status === 'restarting') await supervision.up.catch(() => {});
        if (supervision.status !== 'running') throw new NodeDown(`node '${this.node}' is ${supervision.status}`, { node: this.node });
        return supervision.callNow(op, ...ready) as Promise<ControlReply<K>>;
      } finally {
        posted();
      }
    })();
    return request.catch((error: unknown) => {
      // A request that could not be posted because part of it cannot be copied to the node.
      if (error instanceof Error && error.name === 'DataCloneError') throw new NotCloneable(`${op}: ${error.message}`, { op });
      throw error;
    });
  }

  /** Issues an operation whose first argument is a pid: a malformed one is rejected with BadArgument here. */
  onPid<K extends ControlOp>(op: K, args: ControlArgs<K>): Promise<ControlReply<K>> {
    try {
      checkPid(args[0]);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.issue(op, args);
  }
}
