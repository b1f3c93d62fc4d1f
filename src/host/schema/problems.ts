/**
 * The vocabulary every schema here speaks: zod issues as lines `field.path: what is wrong, got VALUE`,
 * unknown fields with a did-you-mean, the small field builders, and `validate` (a shape's problems,
 * then the references it cannot say).
 */
import { z } from 'zod';

/** Zod's issues as readable lines, one per problem (one per unknown field). */
export function problemsOf(error: z.ZodError): string[] {
  const lines: string[] = [];
  for (const issue of error.issues) describeIssue(issue, [], lines);
  return lines;
}

function describeIssue(issue: z.core.$ZodIssue, base: readonly PropertyKey[], lines: string[]): void {
  const path = [...base, ...issue.path];
  // A union whose value took the shape of exactly one of its options: that option's problems
  // ({ stack: 0 } is a bad { stack: N }, not "none of the code policies").
  if (issue.code === 'invalid_union') {
    const near = issue.errors.filter((branch) => branch.length && branch.every((i) => i.path.length > 0));
    if (near.length === 1) {
      for (const i of near[0]!) describeIssue(i, path, lines);
      return;
    }
  }
  const at = fieldPath(path);
  if (issue.code === 'unrecognized_keys') {
    for (const line of issue.message.split('\n')) lines.push(at ? `${at}.${line}` : line);
    return;
  }
  const input = (issue as { input?: unknown }).input;
  const got =
    issue.code === 'custom' || (issue.code === 'too_small' && Array.isArray(input)) || /\bgot\b/.test(issue.message) ? '' : `, got ${describe(input)}`;
  lines.push(at ? `${at}: ${issue.message}${got}` : `${issue.message}${got}`);
}

/** `['nodes', 0, 'kind']` as `nodes[0].kind`. */
export function fieldPath(path: readonly PropertyKey[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i ? '.' : ''}${String(p)}`)).join('');
}

/** A value as a problem quotes it: JSON, cut short. */
export function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  try {
    const text = JSON.stringify(value);
    return text.length > 60 ? `${text.slice(0, 57)}...` : text;
  } catch {
    return typeof value;
  }
}

/** `unknown field (did you mean 'nodes'?)`, or the known fields when none is near. */
export function unknownField(key: string, known: readonly string[], what = 'field'): string {
  const near = nearest(key, known);
  return `unknown ${what}${near ? ` (did you mean '${near}'?)` : known.length ? `; known ${what}s: ${known.join(', ')}` : ''}`;
}

/** The known name a misspelling is closest to, if it is close (a typo or two, a swap). */
export function nearest(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = distance(k.toLowerCase(), key.toLowerCase());
    if (d <= Math.max(1, Math.floor(k.length / 4)) && d < bestDistance) [best, bestDistance] = [k, d];
  }
  return best;
}

/** Edit distance with adjacent swaps counted as one edit ('canray' is one edit from 'canary'). */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/** An object whose unknown fields are errors, each with a did-you-mean; `what` says what it should be. */
export function strict<T extends z.core.$ZodLooseShape>(shape: T, what: string) {
  const known = Object.keys(shape);
  return z.strictObject(shape, {
    error: (issue) => {
      if (issue.code === 'unrecognized_keys') return issue.keys.map((k) => `${k}: ${unknownField(k, known)}`).join('\n');
      if (issue.code === 'invalid_type') return `must be ${what}`;
      return undefined;
    },
  });
}

export const text = (what: string) => z.string({ error: `must be ${what}` }).min(1, { error: `must be ${what}` });
export const positive = (what: string) =>
  z
    .number({ error: `must be ${what}` })
    .positive({ error: `must be ${what}` })
    .refine(Number.isFinite, { error: `must be ${what}` });
export const names = (what: string) => z.array(z.string({ error: 'must be a name' }), { error: `must be a list of ${what}` });
export const nameList = (what: string) => z.union([z.literal('*'), names(what)], { error: `must be '*' or a list of ${what}` });
export const bool = z.boolean({ error: 'must be true or false' });

/** `"$schema": "./node_modules/subnode/schema/config.schema.json"` lets an editor check a JSON file. */
export const $schema = z.string().optional().meta({ description: 'The JSON Schema of this file, for editors.' });

/** Problems of a value: its shape's, then its references' (those not about a field already named). */
export function validate(schema: z.ZodType, raw: unknown, references: (raw: unknown) => string[]): string[] {
  const parsed = schema.safeParse(raw, { reportInput: true });
  const problems = parsed.success ? [] : problemsOf(parsed.error);
  const fields = problems.map((p) => p.slice(0, p.indexOf(':')));
  for (const p of references(raw)) {
    const field = p.slice(0, p.indexOf(':'));
    if (!fields.some((f) => f === field || field.startsWith(`${f}.`) || field.startsWith(`${f}[`))) problems.push(p);
  }
  return problems;
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
