/**
 * Compiling module sources for the host. sucrase + one meriyah parse take ~0.4 ms for a
 * 50-function module: less than shipping it to another thread and back, so ordinary modules are
 * compiled right here, on the host's thread, with no cold start. Only a source big enough to
 * stall the thread that routes messages and serves the control socket (over `HOST_LIMIT`: several
 * milliseconds) goes to a one-thread piscina pool. That thread, once started, stays (no idle exit,
 * so the next big load does not reload the compiler) but is unref'd by piscina while idle, so it
 * never keeps the process alive. The same source compiled again answers from a cache.
 */
import { Piscina } from 'piscina';
import { fromWire, type WireError } from '../errors.js';
import { transpile, type TranspileResult } from '../compiler/transpile.js';
import type { CompileTask } from '../compiler/worker.js';
import { CompileCache } from './compile-cache.js';

/** Source length (characters) above which compiling goes off the host's thread (~2–4 ms of work). */
export const HOST_LIMIT = 16 * 1024;

let pool: Piscina | undefined;

function workerUrl(): string {
  const here = import.meta.url;
  return (here.endsWith('.ts') ? new URL('../../dist/src/compiler/worker.js', here) : new URL('../compiler/worker.js', here)).href;
}

/** Characters (source and output) of the compiled modules kept for a compile of the same source. */
export const CACHE_CHARS = 4 * 1024 * 1024;

/** @internal what was compiled, by source text (see compile-cache.ts). */
export const compiled = new CompileCache(CACHE_CHARS);

export async function compile(module: string, source: string, filename: string): Promise<TranspileResult> {
  if (typeof source !== 'string') return transpile(module, source, filename);
  const known = compiled.get(module, source, filename);
  if (known) return known;
  if (source.length <= HOST_LIMIT) return compiled.set(module, source, filename, transpile(module, source, filename));
  pool ??= new Piscina({ filename: workerUrl(), minThreads: 0, maxThreads: 1, idleTimeout: Infinity });
  const task: CompileTask = { module, source, filename };
  const result = (await pool.run(task)) as { ok: TranspileResult } | { error: WireError };
  if ('error' in result) throw fromWire(result.error);
  return compiled.set(module, source, filename, result.ok);
}

// The compiler is loaded with this module; its first run pays for V8's lazy compilation of the
// transpiler (~20 ms). Do that once in the background, not on the first load someone waits for.
setImmediate(() => {
  try {
    transpile(
      'warmup',
      "import { receive, on, after } from 'subnode';\nimport * as self from './warmup';\nexport function loop(n: number): unknown { return receive(on('x', () => self.loop(n + 1)), after(10, () => loop(n))); }\n",
    );
  } catch {
    /* only a warm-up */
  }
}).unref();
