/**
 * Runs in the isolate. `plain(value)` copies a value into plain data before it leaves the sandbox:
 * every getter and proxy trap runs here, once, while the embedder's CPU limit still applies, and
 * what the embedder then copies out holds only data properties. (Copying out runs getters on the
 * embedder's side of the call, where no time limit holds: a getter that loops would hang the
 * node's thread for good.)
 *
 * The built-ins it uses are taken when this file loads, before any module code can replace them.
 */
const keys = Object.keys;
const isArray = Array.isArray;
const defineProperty = Object.defineProperty;
const NativeDate = Date;
const getTime = Date.prototype.getTime;
const NativeMap = Map;
const NativeSet = Set;
const mapForEach = Map.prototype.forEach;
const setForEach = Set.prototype.forEach;
const mapSet = Map.prototype.set;
const setAdd = Set.prototype.add;
const NativeRegExp = RegExp;
const NativeError = Error;
const NativeArrayBuffer = ArrayBuffer;
const isView = ArrayBuffer.isView;
const bufferSlice = ArrayBuffer.prototype.slice;
const getPrototypeOf = Object.getPrototypeOf;

/** Thrown for what cannot leave a sandbox (functions, symbols). */
export class NotPlain extends Error {}

export function plain(value: unknown): unknown {
  return copy(value, new NativeMap());
}

function copy(value: unknown, seen: Map<object, unknown>): unknown {
  if (value === null) return null;
  const type = typeof value;
  if (type === 'function' || type === 'symbol') throw new NotPlain(`a ${type} cannot leave the sandbox`);
  if (type !== 'object') return value;
  const object = value as object;
  const done = seen.get(object);
  if (done !== undefined) return done;
  if (isArray(object)) {
    const out: unknown[] = [];
    seen.set(object, out);
    const length = (object as unknown[]).length;
    for (let i = 0; i < length; i++) out[i] = copy((object as unknown[])[i], seen);
    return out;
  }
  if (object instanceof NativeDate) return remember(seen, object, new NativeDate(getTime.call(object)));
  if (object instanceof NativeRegExp) return remember(seen, object, new NativeRegExp(object.source, object.flags));
  if (object instanceof NativeMap) {
    const out = new NativeMap();
    seen.set(object, out);
    mapForEach.call(object, (v: unknown, k: unknown) => mapSet.call(out, copy(k, seen), copy(v, seen)));
    return out;
  }
  if (object instanceof NativeSet) {
    const out = new NativeSet();
    seen.set(object, out);
    setForEach.call(object, (v: unknown) => setAdd.call(out, copy(v, seen)));
    return out;
  }
  if (object instanceof NativeArrayBuffer) return remember(seen, object, bufferSlice.call(object, 0));
  if (isView(object)) {
    const view = object as ArrayBufferView & { length?: number };
    const Ctor = getPrototypeOf(view).constructor as new (buffer: ArrayBuffer, offset?: number, length?: number) => ArrayBufferView;
    const buffer = bufferSlice.call(view.buffer as ArrayBuffer, view.byteOffset, view.byteOffset + view.byteLength);
    return remember(seen, object, view instanceof DataView ? new DataView(buffer) : new Ctor(buffer));
  }
  if (object instanceof NativeError) {
    const out = new NativeError(String(object.message));
    seen.set(object, out);
    defineProperty(out, 'name', { value: String(object.name), writable: true, configurable: true });
    defineProperty(out, 'stack', { value: String(object.stack), writable: true, configurable: true });
    if ('cause' in object) defineProperty(out, 'cause', { value: copy((object as { cause?: unknown }).cause, seen), writable: true, configurable: true });
    return out;
  }
  const out: Record<string, unknown> = {};
  seen.set(object, out);
  for (const key of keys(object)) {
    defineProperty(out, key, { value: copy((object as Record<string, unknown>)[key], seen), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function remember<T>(seen: Map<object, unknown>, from: object, to: T): T {
  seen.set(from, to);
  return to;
}
