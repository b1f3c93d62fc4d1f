/**
 * The shapes of a `subnode run` config and of an upgrade plan, as zod schemas: the one definition
 * that checks them (every problem named by its field, unknown fields with a did-you-mean) and that
 * `npm run schema` turns into the JSON Schemas under schema/ for editors and other tools.
 *
 * What a shape cannot say is checked next to it: file contents (src/cli/config.ts), the system's
 * node names and dependency cycles (upgrade-plan.ts).
 */
import { z } from 'zod';
import { NODE_NAME } from '../kernel/pid.js';
import type { UpgradePlan } from './upgrade-plan.js';
import type { RunConfig } from '../cli/config.js';

// ---------------------------------------------------------------------------------------------
// Problems: zod issues as lines `field.path: what is wrong, got VALUE`.

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
function strict<T extends z.core.$ZodLooseShape>(shape: T, what: string) {
  const known = Object.keys(shape);
  return z.strictObject(shape, {
    error: (issue) => {
      if (issue.code === 'unrecognized_keys') return issue.keys.map((k) => `${k}: ${unknownField(k, known)}`).join('\n');
      if (issue.code === 'invalid_type') return `must be ${what}`;
      return undefined;
    },
  });
}

const text = (what: string) => z.string({ error: `must be ${what}` }).min(1, { error: `must be ${what}` });
const positive = (what: string) =>
  z
    .number({ error: `must be ${what}` })
    .positive({ error: `must be ${what}` })
    .refine(Number.isFinite, { error: `must be ${what}` });
const names = (what: string) => z.array(z.string({ error: 'must be a name' }), { error: `must be a list of ${what}` });
const nameList = (what: string) => z.union([z.literal('*'), names(what)], { error: `must be '*' or a list of ${what}` });
const bool = z.boolean({ error: 'must be true or false' });

// ---------------------------------------------------------------------------------------------
// Code policies and capabilities, as in src/kernel/policy.ts and capabilities.ts.

const PURGE_TEXT = "'kill', 'soft' or { drain: ms, then: 'kill' | 'refuse' }";
export const purgeModeSchema = z.union(
  [
    z.enum(['kill', 'soft']),
    strict(
      {
        drain: z.number({ error: 'must be a number of ms >= 0' }).min(0, { error: 'must be a number of ms >= 0' }),
        then: z.enum(['kill', 'refuse'], { error: "must be 'kill' or 'refuse'" }),
      },
      '{ drain: ms, then }',
    ),
  ],
  { error: `must be ${PURGE_TEXT}` },
);

const retentionSchema = z.discriminatedUnion(
  'kind',
  [
    strict({ kind: z.literal('erlang') }, "{ kind: 'erlang' }"),
    strict(
      { kind: z.literal('stack'), depth: z.int({ error: 'must be an integer >= 1' }).min(1, { error: 'must be an integer >= 1' }) },
      "{ kind: 'stack', depth }",
    ),
    strict({ kind: z.literal('forever') }, "{ kind: 'forever' }"),
  ],
  { error: "must be { kind: 'erlang' }, { kind: 'stack', depth: N } or { kind: 'forever' }" },
);

const CODE_PRESETS = ['erlang', 'erlang-kill', 'forever'] as const;
export const codeShorthandSchema = z
  .union(
    [
      z.enum(CODE_PRESETS),
      strict(
        {
          stack: z.int({ error: 'must be an integer >= 1 (old versions kept)' }).min(1, { error: 'must be an integer >= 1 (old versions kept)' }),
          purge: purgeModeSchema.optional(),
        },
        '{ stack: N, purge? }',
      ),
      strict({ retention: retentionSchema.optional(), purge: purgeModeSchema.optional() }, '{ retention, purge }'),
    ],
    { error: "must be 'erlang', 'erlang-kill', 'forever', { stack: N } or { retention, purge }" },
  )
  .meta({ description: "The node's code policy: a preset, { stack: N } (keep N old versions), or a full { retention, purge }." });

const capabilitiesSchema = strict(
  {
    sendTo: nameList('node names').optional().meta({ description: 'Nodes its processes may send to, link, monitor or signal.' }),
    modules: nameList('module names').optional().meta({ description: 'Module names that may be loaded into the node.' }),
    aliases: z.record(z.string(), z.string({ error: 'must be a module name' }), { error: 'must map names to module names' }).optional(),
    services: strict(
      { console: bool.optional(), clock: bool.optional(), random: bool.optional(), functions: nameList('host function names').optional() },
      'an object { console, clock, random, functions }',
    ).optional(),
    spawnRemote: z.union([z.boolean(), names('node names')], { error: 'must be true, false or a list of node names' }).optional(),
    globalNames: nameList('global names')
      .optional()
      .meta({ description: "System-wide names its processes may register (default: none on an isolate node, '*' on a thread node)." }),
    durable: nameList('durable state keys')
      .optional()
      .meta({ description: "Keys under which its servers may keep durable state (default: none on an isolate node, '*' on a thread node)." }),
  },
  'an object { sendTo, modules, aliases, services, spawnRemote, globalNames, durable }',
);

const limitsSchema = strict(
  {
    memoryMb: positive('a number > 0').optional(),
    cpuMsPerSlice: positive('a number > 0').optional(),
    maxMessageBytes: positive('a number > 0').optional(),
    mailbox: strict(
      {
        max: z.int({ error: 'must be an integer > 0' }).positive({ error: 'must be an integer > 0' }),
        overflow: z.enum(['drop', 'kill'], { error: "must be 'drop' or 'kill'" }),
      },
      "an object { max, overflow: 'drop' | 'kill' }",
    ).optional(),
    globalNames: positive('a number > 0')
      .optional()
      .meta({ description: 'Global names its processes may hold at once (default 100 on an isolate node, 1,000 on a thread node).' }),
    hostCalls: strict(
      {
        inFlight: positive('a number > 0').optional(),
        perSecond: positive('a number > 0').optional(),
      },
      'an object { inFlight, perSecond }',
    )
      .optional()
      .meta({
        description:
          'Host service calls (callHost, spawnOn) the host runs at once and starts per second (default 16 and 200 on an isolate node, 256 and 5,000 on a thread node).',
      }),
    durableBytes: positive('a number > 0')
      .optional()
      .meta({ description: 'Largest durable server state a checkpoint may save, estimated in bytes (default 1 MiB).' }),
    durableStates: positive('a number > 0')
      .optional()
      .meta({ description: 'Durable states (keys) the node may have stored at once (default 100 on an isolate node, 10,000 on a thread node).' }),
  },
  'an object { memoryMb, cpuMsPerSlice, mailbox, maxMessageBytes, globalNames, hostCalls, durableBytes, durableStates }',
);

const resourceLimitsSchema = strict(
  {
    maxOldGenerationSizeMb: positive('a number > 0').optional(),
    maxYoungGenerationSizeMb: positive('a number > 0').optional(),
    codeRangeSizeMb: positive('a number > 0').optional(),
    stackSizeMb: positive('a number > 0').optional(),
  },
  'an object of positive numbers (maxOldGenerationSizeMb, ...)',
);

// ---------------------------------------------------------------------------------------------
// Module sources.

const pathSource = (relativeTo: string) =>
  strict(
    {
      path: text('a file path').meta({ description: `The module's file, relative to ${relativeTo}.` }),
      base: text('a file URL or a directory').optional().meta({ description: 'What a relative path is relative to instead: a file URL or a directory.' }),
    },
    '{ path }',
  );
const codeSource = strict(
  {
    code: z.string({ error: 'must be the source text' }).meta({ description: 'The source text (TypeScript or JavaScript, ES module syntax).' }),
    filename: text('a file name').optional().meta({ description: 'The name diagnostics give the source.' }),
  },
  '{ code }',
);

const clusterSource = strict(
  {
    cluster: text("'latest' or a SHA-256").meta({
      description:
        "On a host of a cluster: the module's source from the cluster's code store, 'latest' (the version loaded last on any host) or the SHA-256 (hex) of one version's text.",
    }),
  },
  '{ cluster }',
);

const planSourceError = (issue: { input?: unknown }) =>
  typeof issue.input === 'string'
    ? 'must be { "path": file } or { "code": source text }; a plain string is not taken as source text any more: write { "code": ... }'
    : 'must be { "path": file } or { "code": source text }';

// ---------------------------------------------------------------------------------------------
// The `subnode run` config.

export const durableSchema = strict(
  {
    key: z
      .string({ error: 'must be a key: 1-200 letters, digits and _ . : @ -' })
      .regex(/^[A-Za-z0-9_.:@-]{1,200}$/, { error: 'must be a key: 1-200 letters, digits and _ . : @ -' })
      .optional()
      .meta({ description: "The stable key the state is kept under on its node (default: the server's name)." }),
    checkpoint: z
      .union([z.enum(['message', 'shutdown']), strict({ everyMs: positive('a number of ms > 0') }, '{ everyMs: N }')], {
        error: "must be 'message', 'shutdown' or { everyMs: N }",
      })
      .meta({
        description:
          "When the state is saved: 'message' (after every message that changed it; a call is answered once it is durable), { everyMs: N } (the latest state at most every N ms), 'shutdown' (in an orderly stop).",
      }),
    timeoutMs: positive('a number of ms > 0').optional().meta({ description: "'message': how long a checkpoint may take to become durable (default 5000)." }),
  },
  "an object { key?, checkpoint: 'message' | 'shutdown' | { everyMs }, timeoutMs? }",
);

const startSchema = strict(
  {
    module: text('a module name').optional(),
    supervisor: text('a module name')
      .optional()
      .meta({ description: 'Start a supervision tree with this callback module (its init(...args) returns the children); no module, fn or server.' }),
    fn: text('the name of the function to spawn').optional(),
    args: z.array(z.unknown(), { error: 'must be a list of arguments' }).optional(),
    name: text('a name to register').optional(),
    server: bool.optional().meta({ description: 'Start a server with the module as its callback module (its init(...args) runs); no fn.' }),
    durable: durableSchema
      .optional()
      .meta({ description: "With server: true, keep the server's state across restarts under a stable key (its name, or durable.key). Off by default." }),
  },
  'an object { module, fn, args?, name?, server?, durable? } or { supervisor, args?, name? }',
);

const nodeConfigSchema = strict(
  {
    name: z
      .string({ error: "must be a node name (a letter or _, then letters, digits, _ and -; not 'host')" })
      .regex(NODE_NAME, { error: "must be a node name (a letter or _, then letters, digits, _ and -; not 'host')" })
      .refine((n) => n !== 'host', { error: "must be a node name (a letter or _, then letters, digits, _ and -; not 'host')" }),
    kind: z.enum(['thread', 'isolate'], { error: "must be 'thread' or 'isolate'" }).optional(),
    dense: bool.optional().meta({ description: 'Isolate nodes: served by a shared dense thread (one of a pool, one a core) instead of a worker of its own.' }),
    policy: z
      .enum(['sandboxed', 'trusted', 'legacy-pinned'], { error: "must be one of 'sandboxed', 'trusted', 'legacy-pinned'" })
      .optional()
      .meta({ description: 'A preset from policies/: its capabilities, limits and code policy, under the fields given here.' }),
    capabilities: capabilitiesSchema.optional(),
    limits: limitsSchema.optional(),
    resourceLimits: resourceLimitsSchema.optional(),
    code: codeShorthandSchema.optional(),
    modulePolicies: z.record(z.string(), codeShorthandSchema, { error: 'must map module names to code policies' }).optional(),
    restart: z.enum(['permanent', 'transient', 'temporary'], { error: "must be 'permanent', 'transient' or 'temporary'" }).optional(),
    intensity: z
      .int({ error: 'must be an integer >= 0 (restarts allowed per period)' })
      .min(0, { error: 'must be an integer >= 0 (restarts allowed per period)' })
      .optional(),
    period: positive('a number of ms > 0').optional(),
    unresponsiveMs: positive('a number of ms > 0').optional().meta({
      description:
        'A node whose code runs this long without returning is ended and restarted per policy (default 10000; an isolate node: at least 4 × cpuMsPerSlice + 2000).',
    }),
    imports: z
      .array(text('a package or builtin name'), { error: "must be a list of package or builtin names, ['semver', 'node:crypto']" })
      .optional()
      .meta({ description: 'Thread nodes: packages and builtins module code may import, resolved from the config file.' }),
    modules: z
      .record(
        z.string(),
        z.union([text('a file path'), pathSource('the config file'), codeSource, clusterSource], {
          error: 'must be a file path relative to the config, { path }, { code } or { cluster }',
        }),
        { error: "must map module names to files, { counter: './counter.ts' }" },
      )
      .optional()
      .meta({ description: 'Module name → its source: a file path relative to the config, { path }, { code } or { cluster } (from the cluster).' }),
    start: z.array(startSchema, { error: 'must be a list [{ module, fn, args?, name?, server? }]' }).optional(),
  },
  'an object { name, ... }',
);

/** `"$schema": "./node_modules/subnode/schema/config.schema.json"` lets an editor check a JSON file. */
const $schema = z.string().optional().meta({ description: 'The JSON Schema of this file, for editors.' });

export const runConfigSchema = strict(
  {
    $schema,
    nodes: z
      .array(nodeConfigSchema, { error: 'must be a list of nodes [{ name, ... }]' })
      .min(1, { error: 'the list is empty; a system needs at least one node' }),
    control: strict(
      {
        socket: text('a path').optional().meta({ description: "The control socket's path, relative to the config file." }),
        pointer: bool.optional().meta({ description: 'Write .subnode.sock (the socket path) next to the config (default true).' }),
      },
      'an object { socket?, pointer? }',
    ).optional(),
    releases: z
      .union(
        [
          z.literal(false),
          strict(
            {
              dir: text('a path')
                .optional()
                .meta({ description: 'The release store directory, relative to the config file (default .subnode/CONFIG.releases).' }),
              trial: bool.optional().meta({ description: 'New releases are trials until made permanent; a start on a trial boots the last permanent one.' }),
              permanentAfterMs: z
                .number()
                .positive()
                .optional()
                .meta({ description: 'With trial: a release that runs this long with no node crash becomes permanent.' }),
            },
            'an object { dir?, trial?, permanentAfterMs? } or false',
          ),
        ],
        { error: 'must be false or { dir?, trial?, permanentAfterMs? }' },
      )
      .optional()
      .meta({
        description:
          'Where the system journals its releases (every load, plan, policy, purge, delete), so a restart brings it back as it was. false: keep none.',
      }),
  },
  'an object { nodes: [...] }',
).meta({ title: 'subnode run config', description: 'The config of `subnode run CONFIG`: the nodes of a system and its control socket.' });

// ---------------------------------------------------------------------------------------------
// Upgrade plans. `api` adds what only the API can pass: URLs, and a URL as `base`.

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

// ---------------------------------------------------------------------------------------------
// What a shape cannot say: references between fields. These run even when the shape has problems
// (zod skips refinements of a value with issues), on the raw value, and skip what is malformed.

/** Node names twice; start entries naming a module the node does not have, or mixing fn and server. */
export function configReferenceProblems(raw: unknown): string[] {
  const problems: string[] = [];
  const nodes = isObject(raw) && Array.isArray(raw.nodes) ? raw.nodes : [];
  const seen = new Map<string, number>();
  nodes.forEach((node, i) => {
    if (!isObject(node)) return;
    if (typeof node.name === 'string') {
      const before = seen.get(node.name);
      if (before !== undefined) problems.push(`nodes[${i}].name: '${node.name}' is already the name of nodes[${before}]`);
      else seen.set(node.name, i);
    }
    const modules = isObject(node.modules) ? Object.keys(node.modules) : [];
    if (!Array.isArray(node.start)) return;
    node.start.forEach((entry, j) => {
      if (!isObject(entry)) return;
      const at = `nodes[${i}].start[${j}]`;
      if (entry.supervisor !== undefined) {
        if (typeof entry.supervisor === 'string' && !modules.includes(entry.supervisor)) {
          problems.push(
            `${at}.supervisor: '${entry.supervisor}' is not one of nodes[${i}].modules (${modules.length ? modules.join(', ') : 'none'}); add it there`,
          );
        }
        for (const field of ['module', 'fn', 'server', 'durable'])
          if (entry[field] !== undefined) problems.push(`${at}.${field}: not used with supervisor (its init(...args) starts the tree); remove it`);
        return;
      }
      if (entry.module === undefined) problems.push(`${at}.module: must be a module name, got nothing`);
      if (typeof entry.module === 'string' && entry.module && !modules.includes(entry.module)) {
        problems.push(`${at}.module: '${entry.module}' is not one of nodes[${i}].modules (${modules.length ? modules.join(', ') : 'none'}); add it there`);
      }
      if (entry.server === true && entry.fn !== undefined)
        problems.push(`${at}.fn: not used with server: true (the server runs the module's init(...args)); remove it`);
      if (entry.server !== true && entry.fn === undefined) problems.push(`${at}.fn: must be the name of the function to spawn, got nothing`);
      if (entry.durable !== undefined && entry.server !== true)
        problems.push(`${at}.durable: durable state is for servers (server: true); remove it or start a server`);
      if (isObject(entry.durable) && entry.durable.key === undefined && entry.name === undefined)
        problems.push(`${at}.durable: a durable server needs a stable key: give the entry a name, or durable.key`);
    });
  });
  return problems;
}

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

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A plan as JSON (the `subnode upgrade` file). */
export const upgradePlanSchema = planSchema(false);
/** A plan as `system.upgrade` takes it: sources may also be URLs, and a `base` a URL. */
export const upgradePlanApiSchema = planSchema(true);

/** The JSON Schemas committed under schema/ (`npm run schema` writes them; a test keeps them current). */
export function jsonSchemas(): Record<string, object> {
  const options = { target: 'draft-2020-12', io: 'input', unrepresentable: 'any' } as const;
  return {
    'config.schema.json': z.toJSONSchema(runConfigSchema, options),
    'plan.schema.json': z.toJSONSchema(upgradePlanSchema, options),
  };
}

// The hand-written types (documented, exported) and the schemas agree: a value of the type has the
// schema's shape. (The schemas check more: names, ranges, cross-references.)
true satisfies UpgradePlan extends z.input<typeof upgradePlanApiSchema> ? true : false;
true satisfies RunConfig extends z.input<typeof runConfigSchema> ? true : false;
