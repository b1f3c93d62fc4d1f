/**
 * The `subnode run` config: its shape, and what the shape cannot say (node names twice, start
 * entries naming a module the node does not have). File contents are checked in src/cli/config.ts.
 */
import { z } from 'zod';
import { NODE_NAME } from '../../kernel/pid.js';
import type { RunConfig } from '../../cli/config.js';
import { $schema, bool, isObject, positive, strict, text } from './problems.js';
import { capabilitiesSchema, codeShorthandSchema, limitsSchema, resourceLimitsSchema } from './policy.js';
import { clusterSource, codeSource, pathSource } from './sources.js';

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

// What the shape cannot say: references between fields. This runs even when the shape has problems
// (zod skips refinements of a value with issues), on the raw value, and skips what is malformed.

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

// The hand-written type (documented, exported) and the schema agree: a value of the type has the
// schema's shape. (The schema checks more: names, ranges, cross-references.)
true satisfies RunConfig extends z.input<typeof runConfigSchema> ? true : false;
