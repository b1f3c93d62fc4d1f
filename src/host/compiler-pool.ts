/**
 * Compiling module sources in a piscina pool: the TypeScript transpiler takes milliseconds per
 * module, which would otherwise stall the host thread that routes messages, supervises nodes and
 * serves the control socket. One shared pool; its threads exit after a second idle, so an idle
 * process holds none.
 */
import { Piscina } from 'piscina';
import { fromWire, type WireError } from '../errors.js';
import type { TranspileResult } from '../compiler/transpile.js';
import type { CompileTask } from '../compiler/worker.js';

let pool: Piscina | undefined;

function workerUrl(): string {
  const here = import.meta.url;
  return (here.endsWith('.ts') ? new URL('../../dist/src/compiler/worker.js', here) : new URL('../compiler/worker.js', here)).href;
}

export async function compile(module: string, source: string, filename: string): Promise<TranspileResult> {
  pool ??= new Piscina({ filename: workerUrl(), minThreads: 0, maxThreads: 2, idleTimeout: 1_000 });
  const task: CompileTask = { module, source, filename };
  const result = (await pool.run(task)) as { ok: TranspileResult } | { error: WireError };
  if ('error' in result) throw fromWire(result.error);
  return result.ok;
}
