/**
 * Module source (TypeScript or JavaScript, ES module syntax) to the CommonJS-shaped body the
 * kernel compiles into a function. ESM `import()` of each version would keep every version alive
 * forever in the module map; a function body is collected once nothing references it, which is
 * what lets a purge free memory. Runs on the host, so nodes never load a compiler.
 */
import ts from 'typescript';
import { LoadError } from '../errors.js';
import type { Hazard } from '../kernel/types.js';
import { findHazards } from './hazards.js';

export interface TranspileResult {
  js: string;
  /** Hazards found in the source: see `hazards.ts`. */
  hazards: Hazard[];
}

const options: ts.CompilerOptions = {
  module: ts.ModuleKind.CommonJS,
  target: ts.ScriptTarget.ES2022,
  esModuleInterop: false,
  // Named imports compile to property reads on the imported namespace at each call, so a call
  // into another module always enters its current version (a qualified call).
  importHelpers: false,
  sourceMap: false,
  inlineSourceMap: false,
  removeComments: false,
  isolatedModules: true,
  verbatimModuleSyntax: false,
};

export function transpile(module: string, source: string, filename = `${module}.ts`): TranspileResult {
  if (typeof source !== 'string') throw new LoadError(`module '${module}': source must be a string`, { module, phase: 'transpile' });
  const out = ts.transpileModule(source, { compilerOptions: options, fileName: filename, reportDiagnostics: true });
  const errors = (out.diagnostics ?? []).filter((d) => d.category === ts.DiagnosticCategory.Error);
  if (errors.length) {
    const diagnostics = errors.map((d) => formatDiagnostic(d));
    throw new LoadError(`module '${module}' has syntax errors:\n  ${diagnostics.join('\n  ')}`, { module, phase: 'transpile', diagnostics });
  }
  return { js: out.outputText, hazards: findHazards(source, filename, module) };
}

function formatDiagnostic(d: ts.Diagnostic): string {
  const text = ts.flattenDiagnosticMessageText(d.messageText, '\n');
  if (!d.file || d.start === undefined) return text;
  const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
  return `${d.file.fileName}:${line + 1}:${character + 1} ${text}`;
}
