/**
 * Bounds on the host's services per node (`callHost`, `spawnOn`): the host runs at most
 * `inFlight` calls of a node at once and starts at most `perSecond` a second (a token bucket
 * holding a fifth of a second's worth, so a burst is short). A call over either bound is refused
 * at once with a typed error, before any host function runs. Refusals are reported as
 * `capability_denied`, at most one event per node per second, with the count.
 */
import type { HostCallLimit } from '../kernel/capabilities.js';

interface NodeGate {
  inFlight: number;
  tokens: number;
  refilled: number;
  refused: number;
  reported: number;
}

export class ServiceGate {
  private readonly nodes = new Map<string, NodeGate>();

  constructor(private readonly report: (node: string, what: string) => void, private readonly now: () => number = () => performance.now()) {}

  /** Takes a slot for one call of `node`, or says why not (the caller answers with a refusal). */
  admit(node: string, limit: HostCallLimit): string | undefined {
    const now = this.now();
    const burst = Math.max(1, Math.ceil(limit.perSecond / 5));
    let gate = this.nodes.get(node);
    if (!gate) this.nodes.set(node, (gate = { inFlight: 0, tokens: burst, refilled: now, refused: 0, reported: -Infinity }));
    gate.tokens = Math.min(burst, gate.tokens + ((now - gate.refilled) * limit.perSecond) / 1_000);
    gate.refilled = now;
    let why: string | undefined;
    if (gate.inFlight >= limit.inFlight) why = `${gate.inFlight} host calls in flight, its limit`;
    else if (gate.tokens < 1) why = `over its rate of ${limit.perSecond} host calls a second`;
    if (why === undefined) {
      gate.tokens--;
      gate.inFlight++;
      return undefined;
    }
    gate.refused++;
    if (now - gate.reported >= 1_000) {
      this.report(node, `host calls refused: ${why} (${gate.refused} refused since the last report)`);
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
