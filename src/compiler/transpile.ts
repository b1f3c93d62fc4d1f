/**
 * Module source (TypeScript or JavaScript, ES module syntax) to the CommonJS-shaped body the
 * kernel compiles into a function. ESM `import()` of each version would keep every version alive
 * forever in the module map; a function body is collected once nothing references it, which is
 * what lets a purge free memory. Runs on the host, so nodes never load a compiler.
 *
 * One pass (`parse.ts`): sucrase compiles, meriyah parses the result once for both the syntax check
 * and the hazard analysis (and again, with positions, only when there are hazards to place). The body keeps the source's line numbers, so a stack trace through a
 * module names the lines of its source.
 */
import type { Hazard } from '../kernel/types.js';
import { hazardsOf } from './hazards.js';
import { parseModule } from './parse.js';

export interface TranspileResult {
  js: string;
  /** Hazards found in the source: see `hazards.ts`. */
  hazards: Hazard[];
}

/** Throws a LoadError (phase `transpile`) listing the syntax errors, with the source's lines. */
export function transpile(module: string, source: string, filename = `${module}.ts`): TranspileResult {
  const parsed = parseModule(module, source, filename);
  return { js: parsed.js, hazards: hazardsOf(parsed, module) };
}
