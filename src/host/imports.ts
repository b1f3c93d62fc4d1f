/**
 * The packages and Node builtins a thread node's module code may import (`imports` in its spec),
 * resolved here on the host, once, when the node is defined: each specifier to the URL its worker
 * imports before the kernel starts. They are the node's, not its modules': not upgradable, listed
 * in `modules()` as native. Isolate nodes get none (they have host services only).
 */
import { createRequire, isBuiltin } from 'node:module';
import { resolve as resolvePath } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { BadArgument } from '../errors.js';

/** `[specifier, url]` pairs for a node's worker. */
export function resolveImports(node: string, kind: string, imports: unknown, from: string | URL | undefined): [string, string][] {
  if (imports === undefined) return [];
  if (!Array.isArray(imports) || imports.some((i) => typeof i !== 'string' || !i)) {
    throw new BadArgument(`node '${node}': imports must be a list of package or builtin names, got ${JSON.stringify(imports)}`);
  }
  if (imports.length && kind !== 'thread') {
    throw new BadArgument(`node '${node}': an isolate node cannot import packages or builtins (it is a sandbox); grant host functions instead`);
  }
  const base = from === undefined ? process.cwd() : from instanceof URL || String(from).startsWith('file:') ? fileURLToPath(from) : resolvePath(String(from));
  // createRequire wants a file path: a directory gets a file name inside it.
  const require = createRequire(base.endsWith('/') || !/\.[cm]?[jt]s$/.test(base) ? resolvePath(base, 'index.js') : base);
  return (imports as string[]).map((specifier): [string, string] => {
    if (isBuiltin(specifier)) return [specifier, specifier.startsWith('node:') ? specifier : `node:${specifier}`];
    try {
      return [specifier, pathToFileURL(require.resolve(specifier)).href];
    } catch (error) {
      throw new BadArgument(`node '${node}': cannot find the package '${specifier}' from ${base}: ${(error as Error).message.split('\n')[0]}`, {
        module: specifier,
      });
    }
  });
}
