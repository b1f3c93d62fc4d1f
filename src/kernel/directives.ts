/**
 * What a process step returns. A process is a chain of synchronous steps: each step returns the
 * next thing to do — wait for a message (`Receive`), call a function as a tail call (`Next`) — or
 * anything else to end normally. No step ever awaits, so a loop that continues through a qualified
 * call runs in constant memory (no stack, no promise chain), and the kernel always knows which
 * process is running and which module version's code it is in.
 *
 * Each directive carries the module version whose code created it: module code gets an API
 * object bound to its own version, so that attribution is lexical and exact.
 */
import { ANY, matches, type Pattern } from './match.js';
import type { ModuleVersion } from './code-server.js';

export type Handler = (message: unknown) => unknown;

export class Clause {
  constructor(
    readonly pattern: Pattern,
    readonly handler: Handler,
  ) {}
}

export class After {
  constructor(
    readonly ms: number,
    readonly handler: () => unknown,
  ) {}
}

/**
 * A raw process's consent to migrate: called while it waits in this receive, it returns how the
 * process continues on another node — `next(exportedFn, ...state)` — the export half of the
 * export/import pair (the exported function is the import half).
 */
export class OnMigrate {
  constructor(readonly handler: () => unknown) {}
}

export class Receive {
  /** Whether `select` may run module code (guards): then it runs as the receiving process. On the prototype. */
  declare readonly runsModuleCode: boolean;
  /**
   * Clauses, timeout and migration consent: null unless given. Own properties only when given
   * (null on the prototype), so the one-handler receive an idle process waits in is two fields.
   */
  declare readonly clauses: readonly Clause[] | null;
  declare readonly after: After | null;
  declare readonly onMigrate: OnMigrate | null;

  constructor(
    /**
     * The version whose code waits here (null: kernel code). Written only for a behaviour's loop
     * receive, which a rolling upgrade pins to the version a process runs until it is converted.
     */
    public version: ModuleVersion | null,
    /** Set when the receive takes any message: the common case, without clause objects. */
    readonly anyHandler: Handler | null,
    clauses: readonly Clause[] | null = null,
    after: After | null = null,
    onMigrate: OnMigrate | null = null,
  ) {
    if (clauses !== null) (this as { clauses: readonly Clause[] | null }).clauses = clauses;
    if (after !== null) (this as { after: After | null }).after = after;
    if (onMigrate !== null) (this as { onMigrate: OnMigrate | null }).onMigrate = onMigrate;
  }

  /** The step to run when the receive times out. */
  timeoutStep(): Handler {
    return this.after!.handler as Handler;
  }

  /** The handler for `message`, or undefined when no clause accepts it. A throwing guard is false. */
  select(message: unknown): Handler | undefined {
    if (this.anyHandler) return this.anyHandler;
    const clauses = this.clauses!;
    for (let i = 0; i < clauses.length; i++) {
      const clause = clauses[i]!;
      try {
        if (matches(clause.pattern, message)) return clause.handler;
      } catch {
        // Erlang: a guard that raises simply fails.
      }
    }
    return undefined;
  }
}

Object.assign(Receive.prototype, { runsModuleCode: true, clauses: null, after: null, onMigrate: null });

export class Next {
  constructor(
    readonly version: ModuleVersion | null,
    readonly fn: (...args: unknown[]) => unknown,
    readonly args: unknown[],
  ) {}
}

/** Builds a Receive from `receive(...)`'s arguments; throws a TypeError for anything else. */
export function buildReceive(version: ModuleVersion | null, parts: unknown[]): Receive {
  if (parts.length === 1 && typeof parts[0] === 'function') return new Receive(version, parts[0] as Handler, null, null);
  const clauses: Clause[] = [];
  let after: After | null = null;
  let onMigrate: OnMigrate | null = null;
  for (const part of parts) {
    if (part instanceof Clause) clauses.push(part);
    else if (part instanceof OnMigrate) onMigrate = part;
    else if (typeof part === 'function') clauses.push(new Clause(ANY, part as Handler));
    else if (part instanceof After) {
      if (after) throw new TypeError('receive() takes at most one after() clause');
      after = part;
    } else throw new TypeError('receive() takes handlers, on(pattern, handler) clauses and one after(ms, handler)');
  }
  if (!clauses.length && !after) throw new TypeError('receive() needs at least one clause or an after()');
  return new Receive(version, null, clauses, after, onMigrate);
}

export function buildAfter(ms: number, handler: () => unknown): After {
  if (typeof ms !== 'number' || Number.isNaN(ms) || ms < 0) throw new TypeError(`after(): timeout must be a number >= 0 or Infinity, got ${ms}`);
  if (typeof handler !== 'function') throw new TypeError('after(): handler must be a function');
  return new After(ms, handler);
}

export function buildClause(pattern: Pattern, handler: Handler): Clause {
  if (typeof handler !== 'function') throw new TypeError('on(): handler must be a function');
  return new Clause(pattern, handler);
}
