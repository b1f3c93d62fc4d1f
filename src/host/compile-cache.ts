/**
 * The compiler's output by source text, on the host: the same source compiled again (loaded on
 * another node, or again on the same one, where it still makes a new version) skips the compiler.
 * The output depends only on the text, the module's name (hazard messages name it) and whether the
 * filename says JavaScript, so that is the key; a syntax error is never kept (it throws again,
 * naming the filename asked for). Bounded by
 * the characters held, source and output; the least recently used go first. Each answer is a copy,
 * so a caller that changes its hazards changes nobody else's.
 */
import type { TranspileResult } from '../compiler/transpile.js';
import { isJsFile } from '../compiler/parse.js';

interface Entry {
  module: string;
  jsFile: boolean;
  result: TranspileResult;
  chars: number;
}

export class CompileCache {
  /** Least recently used first (a Map keeps insertion order; a hit moves its entry last). */
  private readonly entries = new Map<string, Entry>();
  private held = 0;

  constructor(private readonly maxChars: number) {}

  /** How many outputs it holds, and their characters (source and output). */
  get size(): { entries: number; chars: number } {
    return { entries: this.entries.size, chars: this.held };
  }

  get(module: string, source: string, filename: string): TranspileResult | undefined {
    const entry = this.entries.get(source);
    if (!entry || entry.module !== module || entry.jsFile !== isJsFile(filename)) return undefined;
    this.entries.delete(source);
    this.entries.set(source, entry);
    return copy(entry.result);
  }

  /** Keeps `result` (a source over the whole bound is not kept) and answers a copy of it. */
  set(module: string, source: string, filename: string, result: TranspileResult): TranspileResult {
    const old = this.entries.get(source);
    if (old) {
      this.entries.delete(source);
      this.held -= old.chars;
    }
    const chars = source.length + result.js.length;
    if (chars <= this.maxChars) {
      this.entries.set(source, { module, jsFile: isJsFile(filename), result, chars });
      this.held += chars;
      for (const [key, entry] of this.entries) {
        if (this.held <= this.maxChars) break;
        this.entries.delete(key);
        this.held -= entry.chars;
      }
    }
    return copy(result);
  }
}

function copy(result: TranspileResult): TranspileResult {
  return { js: result.js, hazards: result.hazards.map((h) => ({ ...h })) };
}
