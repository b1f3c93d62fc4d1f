/** Where module source comes from: text, or a file named by `{ path }` or a file URL. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { LoadError } from '../errors.js';

export type ModuleSource = string | { path: string } | URL;

export function readSource(module: string, source: ModuleSource): { text: string; filename: string } {
  if (typeof source === 'string') return { text: source, filename: `${module}.ts` };
  const path = source instanceof URL ? fileURLToPath(source) : source?.path;
  if (typeof path !== 'string') throw new LoadError(`module '${module}': source must be text, { path } or a file URL`, { module, phase: 'read' });
  try {
    return { text: readFileSync(path, 'utf8'), filename: path };
  } catch (error) {
    throw new LoadError(`module '${module}': cannot read ${path}: ${(error as Error).message}`, { module, phase: 'read', path });
  }
}
