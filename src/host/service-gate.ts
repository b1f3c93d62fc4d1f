/**
 * Bounds on the host's services per node (`callHost`, `spawnOn`): the host runs at most
 * `inFlight` calls of a node at once and starts at most `perSecond` a second (a token bucket
 * holding a fifth of a second's worth, so a burst is short). A call over either bound is refused
 * at once with a typed error, before any host function runs. Refusals are reported as
 * `capability_denied`, at most one event per node per second, with the count. A node refused more
 * than five seconds' worth of calls within one second is flooding: for the next second its requests
 * are dropped unanswered (its callers time out), so a flood costs the host a check per request.
 */
import type { HostCallLimit } from '../kernel/capabilities.js';

interface NodeGate {
  inFlight: number;
  /** Refusals in the current second, and when it began: a node far over its limit is cut. */
  windowRefused: number;
  windowStart: number;
  /** Until then the node is cut: its requests are dropped unanswered (they time out in the node). */
  floodUntil: number;
  tokens: number;
  refilled: number;
  refused: number;
  reported: number;
}

export class ServiceGate {
  private readonly nodes = new Map<string, NodeGate>();

  constructor(
    private readonly report: (node: string, what: string) => void,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Takes a slot for one call of `node`, or says which bound refused it (the caller answers with a
   * refusal), or `'flood'`: the node was refused more than five seconds' worth of calls within one
   * second, and for the next second its requests are dropped unanswered (they time out in the
   * node): answering a flood one by one would cost the host more than the node. Cheap: it runs
   * for every request of a flood.
   */
  admit(node: string, limit: HostCallLimit): 'inFlight' | 'perSecond' | 'flood' | undefined {
    const now = this.now();
    const known = this.nodes.get(node);
    if (known !== undefined && now < known.floodUntil) return 'flood';
    const burst = Math.max(1, Math.ceil(limit.perSecond / 5));
    let gate = this.nodes.get(node);
    if (!gate)
      this.nodes.set(
        node,
        (gate = { inFlight: 0, windowRefused: 0, windowStart: now, floodUntil: 0, tokens: burst, refilled: now, refused: 0, reported: -Infinity }),
      );
    gate.tokens = Math.min(burst, gate.tokens + ((now - gate.refilled) * limit.perSecond) / 1_000);
    gate.refilled = now;
    let why: 'inFlight' | 'perSecond' | undefined;
    if (gate.inFlight >= limit.inFlight) why = 'inFlight';
    else if (gate.tokens < 1) why = 'perSecond';
    if (why === undefined) {
      gate.tokens--;
      gate.inFlight++;
      return undefined;
    }
    gate.refused++;
    if (now - gate.windowStart >= 1_000) {
      gate.windowStart = now;
      gate.windowRefused = 0;
    }
    if (++gate.windowRefused > 5 * limit.perSecond) {
      gate.windowRefused = 0;
      gate.floodUntil = now + 1_000;
      this.report(node, `host calls dropped for 1 s: a flood (over ${5 * limit.perSecond} refused within a second)`);
      gate.reported = now;
      gate.refused = 0;
      return 'flood';
    }
    if (now - gate.reported >= 1_000) {
      this.report(node, `host calls refused: ${describeLimit(why, limit)} (${gate.refused} refused since the last report)`);
      gate.reported = now;
      gate.refused = 0;
    }
    return why;
  }

  /** An admitted call of `node` finished. */
  done(node: string): void {
    const gate = this.nodes.get(node);
    if (gate && gate.inFlight > 0) gate.inFlight--;
  }
}

/** What a refusal says about the bound it hit. */
export function describeLimit(why: 'inFlight' | 'perSecond', limit: HostCallLimit): string {
  return why === 'inFlight' ? `${limit.inFlight} host calls in flight, its limit` : `over its rate of ${limit.perSecond} host calls a second`;
}
