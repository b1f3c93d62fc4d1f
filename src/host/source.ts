/**
 * Where module source comes from: a file named by `{ path }` (relative to `base`, or to the current
 * directory), a file URL, or source text as `{ code }`. A plain string is source text too, kept for
 * `node.load(module, text)`; upgrade plans and configs refuse it (see schema/sources.ts).
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LoadError } from '../errors.js';

/**
 * A file: `{ path }`, with `base` the file or directory it is relative to — `import.meta.url` of the
 * module naming it (a file URL, as a string or a URL), or a directory path. Without `base` a relative
 * path is relative to the current directory.
 */
export interface PathSource {
  path: string;
  base?: string | URL;
}

/** Source text; `filename` is what diagnostics name (default `<module>.ts`). */
export interface CodeSource {
  code: string;
  filename?: string;
}

/**
 * Source from the cluster's code store (a host of a cluster only): `'latest'`, the version of the
 * module loaded last on any host's node, or one version by the SHA-256 (hex) of its source text.
 */
export interface ClusterSource {
  cluster: string;
}

export type ModuleSource = PathSource | CodeSource | ClusterSource | URL | string;

export const isClusterSource = (source: unknown): source is ClusterSource =>
  typeof source === 'object' && source !== null && !(source instanceof URL) && 'cluster' in source;

/** Fetches and publishes module source text in a cluster's code store (set on a host of a cluster). */
export interface SharedCode {
  /** The source text `ref` names ('latest' or a SHA-256) for `module`; LoadError if there is none. */
  fetch(module: string, ref: string): Promise<string>;
  /** Records `text` as the version of `module` loaded last, for other hosts to fetch. */
  publish(module: string, text: string): Promise<void>;
}

/** The absolute path a `{ path, base? }` names. */
export function resolvePath(path: string, base?: string | URL): string {
  if (base === undefined || isAbsolute(path)) return resolve(path);
  if (base instanceof URL || /^[a-z][a-z0-9+.-]+:/i.test(base)) {
    const url = new URL(path, base);
    if (url.protocol !== 'file:') throw new TypeError(`base must be a file URL or a directory, got ${String(base)}`);
    return fileURLToPath(url);
  }
  return resolve(base, path);
}

export function readSource(module: string, source: ModuleSource): { text: string; filename: string } {
  if (typeof source === 'string') return { text: source, filename: `${module}.ts` };
  if (isClusterSource(source))
    throw new LoadError(`module '${module}': a { cluster } source is fetched by a node of a cluster host (a node's modules, node.load)`, {
      module,
      phase: 'read',
    });
  if (source && typeof source === 'object' && !(source instanceof URL) && 'code' in source) {
    if (typeof source.code !== 'string')
      throw new LoadError(`module '${module}': { code } must be the source text, got ${typeof source.code}`, { module, phase: 'read' });
    return { text: source.code, filename: typeof source.filename === 'string' ? source.filename : `${module}.ts` };
  }
  let path: string;
  try {
    if (source instanceof URL) path = fileURLToPath(source);
    else if (source && typeof source === 'object' && typeof source.path === 'string') path = resolvePath(source.path, source.base);
    else throw new TypeError('source must be { path, base? }, { code }, a file URL, or the source text');
  } catch (error) {
    throw new LoadError(`module '${module}': ${(error as Error).message}`, { module, phase: 'read' });
  }
  try {
    return { text: readFileSync(path, 'utf8'), filename: path };
  } catch (error) {
    throw new LoadError(`module '${module}': cannot read ${path}: ${(error as Error).message}`, { module, phase: 'read', path });
  }
}
