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
  /**
   * By source text, the outputs for each module name and language it was compiled as (a small
   * list: the same source loaded under two names must not evict itself each time). Least recently
   * used source first (a Map keeps insertion order; a hit moves its source last).
   */
  private readonly entries = new Map<string, Entry[]>();
  private held = 0;
  private count = 0;

  constructor(private readonly maxChars: number) {}

  /** How many outputs it holds, and their characters (source and output). */
  get size(): { entries: number; chars: number } {
    return { entries: this.count, chars: this.held };
  }

  get(module: string, source: string, filename: string): TranspileResult | undefined {
    const list = this.entries.get(source);
    const jsFile = isJsFile(filename);
    const entry = list?.find((e) => e.module === module && e.jsFile === jsFile);
    if (!entry) return undefined;
    this.entries.delete(source);
    this.entries.set(source, list!);
    return copy(entry.result);
  }

  /** Keeps `result` (a source over the whole bound is not kept) and answers a copy of it. */
  set(module: string, source: string, filename: string, result: TranspileResult): TranspileResult {
    const jsFile = isJsFile(filename);
    const list = (this.entries.get(source) ?? []).filter((e) => {
      const same = e.module === module && e.jsFile === jsFile;
      if (same) this.drop(e);
      return !same;
    });
    this.entries.delete(source);
    const chars = source.length + result.js.length;
    if (chars <= this.maxChars) {
      list.push({ module, jsFile, result, chars });
      this.held += chars;
      this.count++;
    }
    if (list.length) this.entries.set(source, list);
    // The least recently used go first, the oldest output of a source before its newer ones.
    for (const [key, old] of this.entries) {
      while (this.held > this.maxChars && old.length) this.drop(old.shift()!);
      if (old.length === 0) this.entries.delete(key);
      if (this.held <= this.maxChars) break;
    }
    return copy(result);
  }

  private drop(entry: Entry): void {
    this.held -= entry.chars;
    this.count--;
  }
}

function copy(result: TranspileResult): TranspileResult {
  return { js: result.js, hazards: result.hazards.map((h) => ({ ...h })) };
}
