/** The shell's words (quotes as in sh) and its tab completion. */
import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { commandNames, findCommand } from './commands.js';
import type { Names } from '../wire/cli.js';
import { EVENT_TYPES } from '../host/events.js';

/**
 * Splits a line into words: whitespace separates, '...' is literal, "..." and \ escape. `open`
 * says whether the line ends inside a word (so completion works on its prefix).
 */
export function tokenize(line: string): { words: string[]; open: boolean } {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote === "'") {
      if (c === "'") quote = undefined;
      else word += c;
    } else if (quote === '"') {
      if (c === '"') quote = undefined;
      else if (c === '\\' && i + 1 < line.length && '"\\$`'.includes(line[i + 1]!)) word += line[++i];
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < line.length) {
      word += line[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (quote) throw new Error(`unterminated ${quote === '"' ? 'double' : 'single'} quote`);
  if (inWord) words.push(word);
  return { words, open: inWord };
}

/** Files and directories (with a trailing /) starting with `prefix`, relative to `cwd`. */
export function completeFile(prefix: string, cwd = process.cwd()): string[] {
  const slash = prefix.lastIndexOf('/');
  const dirPart = slash >= 0 ? prefix.slice(0, slash + 1) : '';
  const base = slash >= 0 ? prefix.slice(slash + 1) : prefix;
  const dir = resolve(cwd, dirPart || '.');
  try {
    return readdirSync(dir)
      .filter((name) => name.startsWith(base) && (base.startsWith('.') || !name.startsWith('.')))
      .map((name) => {
        let isDir = false;
        try {
          isDir = statSync(join(dir, name)).isDirectory();
        } catch {
          /* dangling */
        }
        return `${dirPart}${name}${isDir ? '/' : ''}`;
      })
      .sort();
  } catch {
    return [];
  }
}

/**
 * What the word under the cursor at the end of `line` can become: readline's `[completions, word]`.
 * Command names first, then per argument: node names, the named node's modules, pids, files.
 */
export function completeLine(line: string, names: Names, files: (prefix: string) => string[] = completeFile): [string[], string] {
  let words: string[];
  let open: boolean;
  try {
    ({ words, open } = tokenize(line));
  } catch {
    return [[], ''];
  }
  const current = open ? words[words.length - 1]! : '';
  const before = open ? words.slice(0, -1) : words;
  const pick = (options: Iterable<string>) => {
    const list = [...new Set(options)].filter((o) => o.startsWith(current)).sort();
    return [list, current] as [string[], string];
  };
  if (before.length === 0) return pick([...commandNames('shell'), 'quit']);
  const command = findCommand(before[0]!, 'shell');
  if (!command) return [[], current];
  const flags = command.flags ?? [];
  if (current.startsWith('--')) return pick([...flags.map((f) => `--${f.name}`), '--json']);
  // Walk the words after the command: flags (and their values) aside, count the positional ones.
  const positional: string[] = [];
  for (let i = 1; i < before.length; i++) {
    const word = before[i]!;
    if (word.startsWith('--')) {
      const spec = flags.find((f) => f.name === word.slice(2));
      if (spec?.value) {
        if (i === before.length - 1) return pick(flagValues(spec.name, names));
        i++;
      }
      continue;
    }
    positional.push(word);
  }
  const spec = command.args[positional.length];
  if (!spec) return [[], current];
  switch (spec.kind) {
    case 'node':
      return pick(names.nodes);
    case 'module': {
      const nodeIndex = command.args.findIndex((a) => a.kind === 'node');
      const node = nodeIndex >= 0 ? positional[nodeIndex] : undefined;
      return pick(node && names.modules[node] ? names.modules[node]! : Object.values(names.modules).flat());
    }
    case 'pid':
    case 'dest':
      return pick(names.pids);
    case 'command':
      return pick(commandNames('shell'));
    case 'file':
      return pick(files(current));
    default:
      return [[], current];
  }
}

function flagValues(flag: string, names: Names): string[] {
  if (flag === 'node') return names.nodes;
  if (flag === 'type') return EVENT_TYPES;
  if (flag === 'purge') return ['kill', 'soft'];
  return [];
}

/** A readline completer that asks the system for names, at most every `ttlMs`. */
export function makeCompleter(fetchNames: () => Promise<Names>, ttlMs = 2_000, files?: (prefix: string) => string[]) {
  let cached: { at: number; names: Names } | undefined;
  return (line: string, callback: (error: Error | null, result: [string[], string]) => void): void => {
    const fresh =
      cached && Date.now() - cached.at < ttlMs
        ? Promise.resolve(cached.names)
        : fetchNames().then((names) => {
            cached = { at: Date.now(), names };
            return names;
          });
    fresh.then(
      (names) => callback(null, completeLine(line, names, files)),
      () => callback(null, completeLine(line, { nodes: [], modules: {}, pids: [] }, files)),
    );
  };
}
