/**
 * Typed errors shared by the kernel and the host. They cross thread boundaries as plain
 * `{ code, message, details }` records (`toWire` / `fromWire`), so the host rethrows the same class
 * the node threw. No Node API here: the kernel imports this file.
 */

export type ErrorCode =
  | 'bad_argument'
  | 'load_failed'
  | 'unknown_module'
  | 'unknown_function'
  | 'unknown_node'
  | 'no_process'
  | 'not_cloneable'
  | 'not_in_process'
  | 'name_taken'
  | 'node_down'
  | 'not_purged'
  | 'refused'
  | 'not_allowed'
  | 'too_large'
  | 'timeout'
  | 'unavailable';

export interface WireError {
  code: ErrorCode;
  message: string;
  details?: unknown;
}

export class SubnodeError extends Error {
  readonly code: ErrorCode = 'refused';
  constructor(
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
  override get name(): string {
    return this.constructor.name;
  }
  toWire(): WireError {
    return { code: this.code, message: this.message, details: this.details };
  }
}

/** A malformed argument: bad name, bad policy, bad pid. */
export class BadArgument extends SubnodeError {
  override readonly code = 'bad_argument';
}
/** Module source that does not compile or whose top level throws; the node keeps what it had. */
export class LoadError extends SubnodeError {
  override readonly code = 'load_failed';
}
export class UnknownModule extends SubnodeError {
  override readonly code = 'unknown_module';
}
export class UnknownFunction extends SubnodeError {
  override readonly code = 'unknown_function';
}
export class UnknownNode extends SubnodeError {
  override readonly code = 'unknown_node';
}
/** A name or pid with no live process behind it where one is required. */
export class NoProcess extends SubnodeError {
  override readonly code = 'no_process';
}
/** A message that cannot be copied to another node (functions, symbols, class-private state…). */
export class NotCloneable extends SubnodeError {
  override readonly code = 'not_cloneable';
}
export class NotInProcess extends SubnodeError {
  override readonly code = 'not_in_process';
}
export class NameTaken extends SubnodeError {
  override readonly code = 'name_taken';
}
export class NodeDown extends SubnodeError {
  override readonly code = 'node_down';
}
/** Loading over old code that a policy says must be purged first (Erlang's `not_purged`). */
export class NotPurged extends SubnodeError {
  override readonly code = 'not_purged';
}
/** An operation the node or a policy declined, with the reason in `message`. */
export class Refused extends SubnodeError {
  override readonly code = 'refused';
}
export class Timeout extends SubnodeError {
  override readonly code = 'timeout';
}
/** Outside the node's capabilities: a node it may not address, a module it may not load… */
export class NotAllowed extends SubnodeError {
  override readonly code = 'not_allowed';
}
/** Over a size limit (a message larger than the node's `maxMessageBytes`). */
export class TooLarge extends SubnodeError {
  override readonly code = 'too_large';
}
/** Something this host lacks for the request: isolated-vm for an isolate node, or Node's --no-node-snapshot. */
export class Unavailable extends SubnodeError {
  override readonly code = 'unavailable';
}

/** NATS refused a host of a cluster: its credentials, or a subject its permissions do not grant. */
export class ClusterNotAuthorized extends NotAllowed {}
/** A host could not join its cluster for another reason: no NATS server reachable, no JetStream, a deadline. */
export class ClusterUnavailable extends Unavailable {}

const byCode: Record<ErrorCode, new (message: string, details?: unknown) => SubnodeError> = {
  bad_argument: BadArgument,
  load_failed: LoadError,
  unknown_module: UnknownModule,
  unknown_function: UnknownFunction,
  unknown_node: UnknownNode,
  no_process: NoProcess,
  not_cloneable: NotCloneable,
  not_in_process: NotInProcess,
  name_taken: NameTaken,
  node_down: NodeDown,
  not_purged: NotPurged,
  refused: Refused,
  not_allowed: NotAllowed,
  too_large: TooLarge,
  timeout: Timeout,
  unavailable: Unavailable,
};

/** Any thrown value as a wire record; foreign errors keep their name and message under `refused`. */
export function toWire(error: unknown): WireError {
  if (error instanceof SubnodeError) return error.toWire();
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return { code: 'refused', message };
}

export function fromWire(wire: WireError): SubnodeError {
  const Class = byCode[wire.code] ?? Refused;
  return new Class(wire.message, wire.details);
}
