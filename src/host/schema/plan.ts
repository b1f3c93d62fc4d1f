/**
 * Upgrade plans: their shape (as a JSON file, and as `system.upgrade` takes it), and what the shape
 * cannot say (modules twice, dependsOn outside the plan, a canary outside its nodes). The system's
 * node names and dependency cycles are checked in src/host/upgrade-plan.ts.
 */
import { z } from 'zod';
import type { UpgradePlan } from '../upgrade-plan.js';
import { $schema, bool, isObject, names, nearest, positive, strict, text } from './problems.js';
import { PURGE_TEXT, purgeModeSchema } from './policy.js';
import { codeSource, pathSource, planSourceError } from './sources.js';

// `api` adds what only the API can pass: URLs, and a URL as `base`.
function planSchema(api: boolean) {
  const fileSource = api
    ? strict({ path: text('a file path'), base: z.union([text('a file URL or a directory'), z.instanceof(URL)]).optional() }, '{ path, base? }')
    : pathSource('the plan file');
  const source = api
    ? z.union([z.instanceof(URL), fileSource, codeSource], { error: planSourceError })
    : z.union([fileSource, codeSource], { error: planSourceError });
  const moduleSchema = strict(
    {
      module: text('a module name'),
      source,
      dependsOn: names('module names of this plan').optional().meta({ description: 'Modules of this plan that must load before this one.' }),
      change: z
        .enum(['codeChange', 'load'], { error: "must be 'codeChange' or 'load'" })
        .optional()
        .meta({ description: "'codeChange' (default): suspend, codeChange, resume the processes using it; 'load': only load." }),
      extra: z.unknown().optional().meta({ description: 'Passed to codeChange as extra.' }),
      oldVsn: z.unknown().optional().meta({ description: 'Overrides the old vsn given to codeChange, e.g. { "down": 3 }.' }),
    },
    'an object { module, source, dependsOn?, change?, extra? }',
  );
  return strict(
    {
      $schema,
      modules: z
        .array(moduleSchema, { error: 'must be a list [{ module, source, dependsOn?, change?, extra? }]' })
        .min(1, { error: 'the list is empty; a plan needs at least one module' }),
      nodes: z
        .union([z.literal('*'), names('node names'), strict({ except: names('node names') }, '{ except: [...] }')], {
          error: "must be '*', a list of node names or { except: [...] }",
        })
        .optional()
        .meta({ description: "Which nodes: '*' (every running node, the default), names, or { except: names }." }),
      canary: text('a node name').optional().meta({ description: 'A node upgraded first, alone; if it fails, no other node is touched.' }),
      purge: z
        .union([z.literal('none'), purgeModeSchema], { error: `must be 'none' or ${PURGE_TEXT}` })
        .optional()
        .meta({ description: "After the change, what to do with old versions (default 'soft': keep them while used)." }),
      loadPurge: z.enum(['kill', 'soft'], { error: "must be 'kill' or 'soft'" }).optional(),
      codeChangeTimeoutMs: positive('a number of ms > 0').optional(),
      continueOnError: bool.optional(),
      mode: z.enum(['phased', 'rolling'], { error: "must be 'phased' or 'rolling'" }).optional().meta({
        description:
          "'phased' (default): each node suspends every process using the plan's modules, converts them all, resumes them, in one step. 'rolling': each node loads once, then converts its processes in chunks, serving calls between them.",
      }),
      rolling: strict(
        {
          chunk: z
            .int({ error: 'must be an integer >= 1 (processes per chunk)' })
            .min(1, { error: 'must be an integer >= 1 (processes per chunk)' })
            .optional()
            .meta({ description: 'Processes converted per chunk, at most (default 256).' }),
          chunkMs: positive('a number of ms > 0').optional().meta({ description: 'A chunk ends once it has run this long (default 2 ms).' }),
        },
        '{ chunk?, chunkMs? }',
      )
        .optional()
        .meta({ description: "With mode 'rolling': the size of its chunks." }),
    },
    'an object { modules: [...], nodes?, canary?, ... }',
  ).meta({ title: 'subnode upgrade plan', description: 'An upgrade plan for `subnode upgrade PLAN` and system.upgrade(plan).' });
}

/** A plan as JSON (the `subnode upgrade` file). */
export const upgradePlanSchema = planSchema(false);
/** A plan as `system.upgrade` takes it: sources may also be URLs, and a `base` a URL. */
export const upgradePlanApiSchema = planSchema(true);

// What the shape cannot say: references between fields. This runs even when the shape has problems
// (zod skips refinements of a value with issues), on the raw value, and skips what is malformed.

/** Modules twice; dependsOn naming a module not in the plan; a canary outside the plan's nodes. */
export function planReferenceProblems(raw: unknown): string[] {
  const problems: string[] = [];
  if (!isObject(raw)) return problems;
  const modules = Array.isArray(raw.modules) ? raw.modules : [];
  const names = modules.map((m) => (isObject(m) && typeof m.module === 'string' ? m.module : undefined));
  modules.forEach((m, i) => {
    if (!isObject(m)) return;
    const first = names.indexOf(names[i]);
    if (names[i] !== undefined && first !== i)
      problems.push(`modules[${i}].module: '${names[i]}' is already modules[${first}]; a module appears once in a plan`);
    if (!Array.isArray(m.dependsOn)) return;
    m.dependsOn.forEach((dep, j) => {
      if (typeof dep !== 'string' || names.includes(dep)) return;
      const known = names.filter((n): n is string => n !== undefined);
      const near = nearest(dep, known);
      problems.push(
        `modules[${i}].dependsOn[${j}]: '${dep}' is not a module of this plan${near ? ` (did you mean '${near}'?)` : ` (its modules: ${known.join(', ')})`}; list it in the plan, or drop it if it is already loaded`,
      );
    });
  });
  if (raw.rolling !== undefined && raw.mode !== 'rolling')
    problems.push('rolling: chunk options are for mode \'rolling\' (add "mode": "rolling", or drop them)');
  const { canary, nodes } = raw;
  if (typeof canary === 'string') {
    const out = Array.isArray(nodes) ? !nodes.includes(canary) : isObject(nodes) && Array.isArray(nodes.except) && nodes.except.includes(canary);
    if (out) problems.push(`canary: '${canary}' is not among the plan's nodes`);
  }
  return problems;
}

// The hand-written type (documented, exported) and the schema agree: a value of the type has the
// schema's shape. (The schema checks more: names, ranges, cross-references.)
true satisfies UpgradePlan extends z.input<typeof upgradePlanApiSchema> ? true : false;
