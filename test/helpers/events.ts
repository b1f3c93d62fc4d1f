/** Waiting for a system's events in tests: for a condition, with a deadline, never a fixed sleep. */
import type { EventOf, EventType, System } from '../../src/index.js';

/** The first event of `type` that `match` accepts, or a rejection after `ms`. */
export function waitEvent<T extends EventType>(s: System, type: T, match: (e: EventOf<T>) => boolean = () => true, ms = 15_000): Promise<EventOf<T>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no ${type} event within ${ms} ms`));
    }, ms);
    const off = s.on(type, (e) => {
      if (match(e)) {
        clearTimeout(timer);
        off();
        resolve(e);
      }
    });
  });
}
