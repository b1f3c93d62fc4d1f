/**
 * A node's code policy, capabilities and limits, as in src/kernel/policy.ts and capabilities.ts:
 * the parts of a node config a policy preset (policies/) also sets.
 */
import { z } from 'zod';
import { bool, nameList, names, positive, strict } from './problems.js';

export const PURGE_TEXT = "'kill', 'soft' or { drain: ms, then: 'kill' | 'refuse' }";
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

export const capabilitiesSchema = strict(
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

export const limitsSchema = strict(
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

export const resourceLimitsSchema = strict(
  {
    maxOldGenerationSizeMb: positive('a number > 0').optional(),
    maxYoungGenerationSizeMb: positive('a number > 0').optional(),
    codeRangeSizeMb: positive('a number > 0').optional(),
    stackSizeMb: positive('a number > 0').optional(),
  },
  'an object of positive numbers (maxOldGenerationSizeMb, ...)',
);
