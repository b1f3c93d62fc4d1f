/**
 * Typed errors of the release store. They extend the shared classes of src/errors.ts, so they
 * cross the wire with a known code (`refused`, `bad_argument`…); `reason` says which store
 * condition it was, for callers that need to tell them apart on this side.
 */
import { BadArgument, Refused, SubnodeError } from '../../errors.js';

export type StoreErrorReason = 'locked' | 'format_too_new' | 'corrupt' | 'missing_source' | 'closed' | 'already_open' | 'contended';

/** A store that cannot be used as asked; `reason` says why. */
export class StoreError extends Refused {
  constructor(
    readonly reason: StoreErrorReason,
    message: string,
    details?: unknown,
  ) {
    super(message, details);
  }
}

/** Another live process holds the store's lock (`details.pid`). */
export class StoreLocked extends StoreError {
  constructor(
    readonly dir: string,
    readonly pid: number,
  ) {
    super('locked', `release store ${dir} is locked by live process ${pid}`, { dir, pid });
  }
}

/** The store was written by a newer format than this code reads: refused rather than misread. */
export class StoreFormatTooNew extends StoreError {
  constructor(
    readonly dir: string,
    readonly found: number,
    readonly supported: number,
  ) {
    super('format_too_new', `release store ${dir} has format version ${found}; this version of subnode reads up to ${supported}`, { dir, found, supported });
  }
}

/** Damage that cannot be recovered around (an unreadable format file, a blob whose bytes do not match its hash). */
export class StoreCorrupt extends StoreError {
  constructor(message: string, details?: unknown) {
    super('corrupt', message, details);
  }
}

/** A source hash with no blob behind it. */
export class SourceMissing extends StoreError {
  constructor(readonly hash: string) {
    super('missing_source', `no stored source with hash ${hash}`, { hash });
  }
}

/** The store is not open (never opened, or closed). */
export class StoreClosed extends StoreError {
  constructor(message = 'the release store is not open') {
    super('closed', message);
  }
}

/** A release step that is malformed or does not apply to the current state; nothing was written. */
export class BadStep extends BadArgument {
  constructor(
    message: string,
    readonly step?: unknown,
  ) {
    super(message, { step });
  }
}

export { SubnodeError };
