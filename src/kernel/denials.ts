/**
 * `capability_denied` events of one node, bounded: a process refused in a loop must not flood the
 * host with events. The first few in each second go out one by one; the rest are counted and
 * reported together with the next one after the second is over. Runs in isolates: no Node API.
 */
import type { KernelPlatform } from './kernel.js';
import type { Pid } from './pid.js';

/** Denials reported one by one per second; beyond it they are counted. */
const PER_SECOND = 20;

export class Denials {
  private windowStart = -Infinity;
  private inWindow = 0;
  private suppressed = 0;

  constructor(
    private readonly node: string,
    private readonly platform: Pick<KernelPlatform, 'now' | 'emit'>,
  ) {}

  report(pid: Pid | undefined, what: string): void {
    const now = this.platform.now();
    if (now - this.windowStart >= 1_000) {
      this.windowStart = now;
      this.inWindow = 0;
    }
    if (++this.inWindow > PER_SECOND) {
      this.suppressed++;
      return;
    }
    const more = this.suppressed;
    this.suppressed = 0;
    this.platform.emit({ type: 'capability_denied', node: this.node, pid, what: more ? `${what} (and ${more} more denials not reported one by one)` : what });
  }
}
