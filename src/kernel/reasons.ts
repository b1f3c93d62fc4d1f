/**
 * Exit reasons that can always be copied. A process that ends is reported to its links and
 * monitors wherever they live, and to the host: its reason must survive a structured clone. A
 * reason holding what cannot be copied (a symbol, a function, a WeakMap…) is replaced, in those
 * places only, by a description of itself, so the EXIT or DOWN still goes out.
 *
 * Plain data is copied once, here, with each property read once: a getter in a reason cannot
 * give one value to the check and another to the copy on the wire. Runs in isolates: no Node API.
 */
/** Properties copied per reason at most; the rest is cut (a reason is a diagnosis, not a payload). */
const MAX_NODES = 10_000;
const MAX_DEPTH = 64;

const WasmMemory = (globalThis as { WebAssembly?: { Memory: abstract new (...args: never[]) => object } }).WebAssembly?.Memory;

/** `reason` itself when it is a primitive; otherwise a copy that a structured clone takes. */
export function copyableReason(reason: unknown): unknown {
  switch (typeof reason) {
    case 'string':
    case 'number':
    case 'boolean':
    case 'undefined':
    case 'bigint':
      return reason;
    case 'object':
      if (reason === null) return reason;
      break;
    default:
      return describe(reason);
  }
  const budget = { left: MAX_NODES };
  return copy(reason, 0, new Map(), budget);
}

function describe(value: unknown): string {
  if (typeof value === 'symbol') return `<uncopyable ${value.toString()}>`;
  if (typeof value === 'function') return `<uncopyable function ${(value as { name?: string }).name || 'anonymous'}>`;
  return `<uncopyable ${Object.prototype.toString.call(value)}>`;
}

function copy(value: unknown, depth: number, seen: Map<object, unknown>, budget: { left: number }): unknown {
  if (typeof value !== 'object' || value === null) {
    return typeof value === 'symbol' || typeof value === 'function' ? describe(value) : value;
  }
  const known = seen.get(value);
  if (known !== undefined) return known;
  if (--budget.left < 0 || depth > MAX_DEPTH) return '<cut: reason too large>';
  if (value instanceof Date || value instanceof RegExp) return value;
  if (value instanceof ArrayBuffer) return value;
  if (ArrayBuffer.isView(value)) {
    return typeof SharedArrayBuffer === 'function' && value.buffer instanceof SharedArrayBuffer ? describe(value) : value;
  }
  if (value instanceof WeakMap || value instanceof WeakSet || value instanceof Promise) return describe(value);
  if (typeof SharedArrayBuffer === 'function' && value instanceof SharedArrayBuffer) return describe(value);
  if (WasmMemory !== undefined && value instanceof WasmMemory) return describe(value);
  // A structured clone reads an Error's own data properties only (name, message, stack, cause).
  if (value instanceof Error) return value;
  if (Array.isArray(value)) {
    const out: unknown[] = [];
    seen.set(value, out);
    for (let i = 0; i < value.length; i++) out.push(copy(value[i], depth + 1, seen, budget));
    return out;
  }
  if (value instanceof Map) {
    const out = new Map<unknown, unknown>();
    seen.set(value, out);
    for (const [k, v] of value) out.set(copy(k, depth + 1, seen, budget), copy(v, depth + 1, seen, budget));
    return out;
  }
  if (value instanceof Set) {
    const out = new Set<unknown>();
    seen.set(value, out);
    for (const v of value) out.add(copy(v, depth + 1, seen, budget));
    return out;
  }
  const out: Record<string, unknown> = {};
  seen.set(value, out);
  for (const key of Object.keys(value)) {
    // defineProperty: a key named __proto__ stays a plain key.
    Object.defineProperty(out, key, {
      value: copy((value as Record<string, unknown>)[key], depth + 1, seen, budget),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}
