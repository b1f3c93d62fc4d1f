/**
 * Node restart policy, as OTP supervisors have it: `permanent` nodes are always restarted,
 * `transient` ones only after an abnormal exit, `temporary` ones never; more than `intensity`
 * restarts within `period` ms and the supervisor gives up on the node.
 */
import { BadArgument } from '../errors.js';

export type RestartKind = 'permanent' | 'transient' | 'temporary';

export interface RestartPolicy {
  restart?: RestartKind;
  /** Restarts allowed within `period`. Default 3. */
  intensity?: number;
  /** Window for `intensity`, in ms. Default 5000. */
  period?: number;
}

export class RestartTracker {
  readonly kind: RestartKind;
  readonly intensity: number;
  readonly period: number;
  private readonly times: number[] = [];

  constructor(policy: RestartPolicy = {}) {
    const kind = policy.restart ?? 'permanent';
    if (!['permanent', 'transient', 'temporary'].includes(kind))
      throw new BadArgument(`bad restart kind ${JSON.stringify(kind)}: permanent, transient or temporary`);
    const intensity = policy.intensity ?? 3;
    const period = policy.period ?? 5_000;
    if (!Number.isInteger(intensity) || intensity < 0) throw new BadArgument(`bad restart intensity ${intensity}: an integer >= 0`);
    if (!(period > 0)) throw new BadArgument(`bad restart period ${period}: a number of ms > 0`);
    this.kind = kind;
    this.intensity = intensity;
    this.period = period;
  }

  /** Whether an exit (normal or not) calls for a restart at all. */
  wants(abnormal: boolean): boolean {
    return this.kind === 'permanent' || (this.kind === 'transient' && abnormal);
  }

  /** Records a restart at `now`; false when that would exceed the intensity. */
  allow(now: number): boolean {
    while (this.times.length && now - this.times[0]! > this.period) this.times.shift();
    if (this.times.length >= this.intensity) return false;
    this.times.push(now);
    return true;
  }
}
