/**
 * The receive a `server.call` / `statem.call` waits in: the reply (`{ $reply: ref }`) or the
 * callee's DOWN for the same ref (the call's tag is its monitor's ref, as in OTP), or the timeout.
 * One object per call instead of a clause array, patterns and handlers: request/reply is the
 * hottest path of most systems.
 */
import type { ModuleVersion } from './code-server.js';
import { After, Receive, type Handler } from './directives.js';
import { ExitNow } from './scheduler.js';
import type { Dest } from './types.js';
import type { Process } from './proc.js';

/** Only `ms` of a call's After is read: the step on timeout comes from `timeoutStep()`, made when needed. */
const NO_HANDLER = (): unknown => undefined;
const DEFAULT_AFTER = new After(5_000, NO_HANDLER);

export interface CallHost {
  endCall(wait: CallWait): void;
}

export class CallWait extends Receive {
  constructor(
    private readonly host: CallHost,
    version: ModuleVersion | null,
    private readonly dest: Dest,
    private readonly request: unknown,
    readonly ref: string,
    /**
     * The monitored callee: its process when it was on this node (so the monitor ends without a
     * lookup), true when it is elsewhere, false when its pid was not known (no monitor).
     */
    readonly callee: Process | boolean,
    private readonly then: (reply: unknown) => unknown,
    private readonly timeout: number,
    private readonly onTimeout: (() => unknown) | undefined,
  ) {
    super(version, null, null, timeout === Infinity ? null : timeout === 5_000 ? DEFAULT_AFTER : new After(timeout, NO_HANDLER));
  }

  override select(message: unknown): Handler | undefined {
    if (message === null || typeof message !== 'object') return undefined;
    try {
      const m = message as { $reply?: unknown; type?: unknown; ref?: unknown };
      if (m.$reply === this.ref) return (r) => this.replied(r);
      if (this.callee !== false && m.type === 'DOWN' && m.ref === this.ref) return (d) => this.failed(d);
    } catch {
      // A message whose getters throw matches nothing, as a throwing guard.
    }
    return undefined;
  }

  override timeoutStep(): Handler {
    return () => this.timedOut();
  }

  private replied(message: unknown): unknown {
    this.host.endCall(this);
    return this.then((message as { value: unknown }).value);
  }

  private failed(down: unknown): never {
    throw new ExitNow({ call_failed: { dest: this.dest, reason: (down as { reason: unknown }).reason } });
  }

  private timedOut(): unknown {
    this.host.endCall(this);
    if (this.onTimeout) return this.onTimeout();
    throw new ExitNow({ call_timeout: { dest: this.dest, request: this.request, timeout: this.timeout } });
  }
}

(CallWait.prototype as { runsModuleCode: boolean }).runsModuleCode = false;
