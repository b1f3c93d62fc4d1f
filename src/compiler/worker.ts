/**
 * Entry point of the compiler pool's threads (piscina): TypeScript/JavaScript module source to
 * the kernel's module shape, plus hazard warnings. Stateless CPU work, off the host's thread.
 */
import { transpile, type TranspileResult } from './transpile.js';
import { toWire, type WireError } from '../errors.js';

export interface CompileTask { module: string; source: string; filename: string }

export default function compile(task: CompileTask): { ok: TranspileResult } | { error: WireError } {
  try {
    return { ok: transpile(task.module, task.source, task.filename) };
  } catch (error) {
    return { error: toWire(error) };
  }
}
