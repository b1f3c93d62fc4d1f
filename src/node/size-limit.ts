/**
 * `maxMessageBytes` on delivery, on the node's thread (the trusted half): a node is protected from
 * what other nodes send it, whatever their own limits. A message (a send, a host's call or its
 * reply) over the limit is dropped; an exit reason over it is replaced by a `TooLarge` error. Each
 * is reported as `capability_denied` (at most EVENT_RATE a second, then one summary line).
 */
import { estimateSize } from '../kernel/values.js';
import { Sig, type Envelope } from '../kernel/signals.js';
import type { KernelEvent } from '../kernel/types.js';
import { EventGate } from './event-guard.js';

/** Where an envelope's measured value sits: a message's payload or an exit reason (-1: nothing to measure). */
function measuredAt(sig: Sig): number {
  if (sig === Sig.Message) return 2;
  if (sig === Sig.Exit || sig === Sig.Reply) return 3;
  if (sig === Sig.Down || sig === Sig.Call) return 4;
  return -1;
}

export class DeliveryLimit {
  private readonly gate: EventGate;

  constructor(
    private readonly node: string,
    readonly max: number,
    private readonly report: (event: KernelEvent) => void,
    log: (text: string) => void,
  ) {
    this.gate = new EventGate(log);
  }

  /** `envelopes` from `from` as they may enter: the same array when all are within the limit. */
  check(envelopes: Envelope[], from: string): Envelope[] {
    let kept: Envelope[] | undefined;
    for (let i = 0; i < envelopes.length; i++) {
      const e = envelopes[i]!;
      const sig = e[0];
      const at = measuredAt(sig);
      if (at < 0 || estimateSize((e as unknown[])[at], this.max) <= this.max) {
        kept?.push(e);
        continue;
      }
      kept ??= envelopes.slice(0, i);
      // A host's call and its reply carry a message too (the request, the value).
      const message = sig === Sig.Message || sig === Sig.Reply || sig === Sig.Call;
      if (this.gate.pass('capability_denied'))
        this.report({
          type: 'capability_denied',
          node: this.node,
          what: `${message ? 'a message' : 'an exit reason'} from '${from}' over this node's size limit of ${this.max} bytes (${message ? 'dropped' : 'replaced'} on delivery)`,
        });
      if (!message) {
        const copy = [...e] as unknown[];
        copy[at] = { error: { name: 'TooLarge', message: `an exit reason over the limit of ${this.max} bytes was replaced` } };
        kept.push(copy as Envelope);
      }
    }
    return kept ?? envelopes;
  }
}
