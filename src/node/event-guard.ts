/**
 * What a sandbox's events may cost the host: every text in an event (a log line, a stack, an exit
 * reason's strings) is capped at TEXT_MAX characters, a value in an event (an exit reason, a
 * converted state) that still measures over EVENT_VALUE_MAX bytes is replaced by a capped text of
 * it, and a node reports at most EVENT_RATE events a second: the rest are counted and reported as
 * one summary line when the second ends.
 */
export const TEXT_MAX = 8 * 1024;
export const EVENT_VALUE_MAX = 32 * 1024;
export const EVENT_RATE = 1_000;

/** A text cut to TEXT_MAX characters, saying how much was cut. */
export function capText(text: string, max = TEXT_MAX): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length - max} more characters)`;
}

/** Caps every string inside a value built by the decoder (plain data of this realm), in place. */
function capStrings(value: unknown, seen: Set<object>, depth: number): unknown {
  if (typeof value === 'string') return capText(value);
  if (typeof value !== 'object' || value === null || seen.has(value) || depth > 64) return value;
  seen.add(value);
  if (value instanceof Error) {
    for (const key of ['message', 'stack', 'name'] as const) {
      const text = Object.getOwnPropertyDescriptor(value, key)?.value as unknown;
      if (typeof text === 'string' && text.length > TEXT_MAX) Object.defineProperty(value, key, { value: capText(text), writable: true, configurable: true });
    }
  }
  if (value instanceof Map) {
    for (const [k, v] of value) value.set(k, capStrings(v, seen, depth + 1));
  } else if (value instanceof Set || ArrayBuffer.isView(value) || value instanceof ArrayBuffer) {
    return value;
  } else {
    for (const key of Object.keys(value)) {
      const v = (value as Record<string, unknown>)[key];
      Object.defineProperty(value, key, { value: capStrings(v, seen, depth + 1), writable: true, enumerable: true, configurable: true });
    }
  }
  return value;
}

/** A one-line text of a value, for one that is too big to report as it is. */
function summary(value: unknown): string {
  try {
    return capText(JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)) ?? String(value), 1024);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/**
 * An event as it may be reported: strings capped, and each value field that measures over
 * EVENT_VALUE_MAX replaced by `{ too_large: bytes, text }`. `measure` gives a value's bytes.
 */
export function capEvent<E extends object>(event: E, measure: (value: unknown) => number): E {
  for (const key of Object.keys(event)) {
    const v = (event as Record<string, unknown>)[key];
    if (typeof v === 'object' && v !== null) {
      const bytes = measure(v);
      if (bytes > EVENT_VALUE_MAX)
        Object.defineProperty(event, key, { value: { too_large: bytes, text: summary(v) }, writable: true, enumerable: true, configurable: true });
    }
  }
  return capStrings(event, new Set(), 0) as E;
}

/** At most `rate` events a second; what is over is counted by type and reported once the second ends. */
export class EventGate {
  private windowStart = 0;
  private count = 0;
  private dropped = new Map<string, number>();
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly report: (text: string) => void,
    private readonly rate = EVENT_RATE,
    private readonly now: () => number = () => performance.now(),
  ) {}

  pass(type: string): boolean {
    const now = this.now();
    if (now - this.windowStart >= 1_000) {
      this.flush();
      this.windowStart = now;
      this.count = 0;
    }
    if (++this.count <= this.rate) return true;
    this.dropped.set(type, (this.dropped.get(type) ?? 0) + 1);
    if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), Math.max(0, 1_000 - (now - this.windowStart)));
      this.timer.unref?.();
    }
    return false;
  }

  /** Reports what was dropped, if anything. */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.dropped.size) return;
    let total = 0;
    const parts: string[] = [];
    for (const [type, n] of this.dropped) {
      total += n;
      parts.push(`${type} ${n}`);
    }
    this.dropped = new Map();
    this.report(`${total} event(s) dropped: over ${this.rate} a second (${parts.join(', ')})`);
  }
}
