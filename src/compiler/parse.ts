/**
 * The one pass over module source that both the transpiler and the hazard analysis use: sucrase
 * turns TypeScript/JavaScript with ES module syntax into the kernel's CommonJS-shaped body, and
 * meriyah (an ESTree parser, ~2× faster than acorn on this) parses that body once, which both
 * checks its syntax and gives `hazards.ts` its tree — without positions, a third cheaper; only a
 * module in which the analysis finds hazards is parsed again with them, to name their lines.
 *
 * Why sucrase: it is an order of magnitude faster than `typescript.transpileModule`, keeps every
 * line where it was (so stack traces and hazard lines name the source's own lines), and with the
 * legacy TypeScript interop it compiles imports to property reads on the imported namespace at
 * each use — `import { loop } from './w'; loop()` becomes `_w.loop.call(void 0)` and
 * `import * as w from './w'` binds `w` to the required namespace itself — so a call into another
 * module enters its current version. (esbuild's CommonJS interop copies exports at import time,
 * which breaks that.)
 */
import { transform } from 'sucrase';
import { parseScript, type ESTree } from 'meriyah';
import { LoadError } from '../errors.js';

export interface Parsed {
  /** The kernel's module shape: a function body of `(require, exports, module)`. */
  js: string;
  /** The ESTree of `js`, without positions (cheaper: what a check that finds nothing needs). */
  program: ESTree.Program;
  /** The ESTree of `js` with `start`/`end` offsets (parsed again, once, when asked): same lines as the source. */
  positioned(): ESTree.Program;
  /** 1-based line of an offset into `js` (= the line in the source). */
  lineOf(offset: number): number;
}

const JS_FILE = /\.(js|mjs|cjs|jsx)$/;

/** A filename that says JavaScript: its source is compiled without the TypeScript transform. */
export function isJsFile(filename: string): boolean {
  return JS_FILE.test(filename);
}

export function parseModule(module: string, source: string, filename: string): Parsed {
  if (typeof source !== 'string') throw new LoadError(`module '${module}': source must be a string`, { module, phase: 'transpile' });
  let js: string;
  try {
    js = transform(source, {
      transforms: isJsFile(filename) ? ['imports'] : ['typescript', 'imports'],
      // `import * as m` is the namespace object itself and a default import reads `m.default`:
      // no interop helper that copies properties at import time.
      enableLegacyTypeScriptModuleInterop: true,
      // Node runs modern syntax as it is; keep it (and its line layout) untouched.
      disableESTransforms: true,
      filePath: filename,
    }).code;
  } catch (error) {
    throw syntaxError(module, filename, error, true);
  }
  let program: ESTree.Program;
  try {
    program = parseScript(js, { next: true, globalReturn: true });
  } catch (error) {
    throw syntaxError(module, filename, error, false);
  }
  let positioned: ESTree.Program | undefined;
  return { js, program, positioned: () => (positioned ??= parseScript(js, { next: true, ranges: true, globalReturn: true })), lineOf: lineIndex(js) };
}

/** Offsets to lines by binary search over the line starts, computed once and only if asked. */
function lineIndex(text: string): (offset: number) => number {
  let starts: number[] | undefined;
  return (offset) => {
    if (!starts) {
      starts = [0];
      for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) starts.push(i + 1);
    }
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  };
}

function syntaxError(module: string, filename: string, error: unknown, inSource: boolean): LoadError {
  const e = error as { message?: string; loc?: { line: number; column: number } };
  // sucrase: "Error transforming m.ts: Unexpected token (1:17)"; meriyah: "[3:4]: Unexpected token".
  // meriyah's columns are in the compiled text, so only its line (the source's) is reported.
  const text = String(e.message ?? error)
    .replace(/^Error transforming [^:]*: /, '')
    .replace(/ \(\d+:\d+\)$/, '')
    .replace(/^\[\d+:\d+\]: /, '');
  const where = e.loc ? (inSource ? `:${e.loc.line}:${e.loc.column}` : `:${e.loc.line}`) : '';
  const diagnostic = `${filename}${where} ${text}`;
  return new LoadError(`module '${module}' has syntax errors:\n  ${diagnostic}`, { module, phase: 'transpile', diagnostics: [diagnostic] });
}
