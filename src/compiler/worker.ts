/**
 * Entry point of the compiler pool's thread (piscina), used only for sources too big to compile
 * on the host's thread (see `host/compiler-pool.ts`): TypeScript/JavaScript module source to the
 * kernel's module shape, plus hazard warnings. Stateless CPU work.
 */
import { transpile, type TranspileResult } from './transpile.js';
import { toWire, type WireError } from '../errors.js';

export interface CompileTask {
  module: string;
  source: string;
  filename: string;
}

export default function compile(task: CompileTask): { ok: TranspileResult } | { error: WireError } {
  try {
    return { ok: transpile(task.module, task.source, task.filename) };
  } catch (error) {
    return { error: toWire(error) };
  }
}
