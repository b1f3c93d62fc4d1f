/**
 * `subnode run CONFIG`: the config file (JSON, or a TypeScript / JavaScript module whose default
 * export is the config or a function returning it), checked field by field so that every problem
 * is reported with the field it is in and what to do about it.
 *
 * ```ts
 * export default {
 *   nodes: [
 *     { name: 'edge', modules: { counter: './counter.ts' }, start: [{ module: 'counter', server: true, args: [0], name: 'hits' }] },
 *     { name: 'plugins', kind: 'isolate', policy: 'sandboxed', code: { stack: 3 } },
 *   ],
 *   control: { socket: './run/subnode.sock' },
 * };
 * ```
 */
import { accessSync, constants, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { transform } from 'sucrase';
import type { NodeSpec, StartSpec } from '../host/node-handle.js';
import { transpile } from '../compiler/transpile.js';
import { checkCapabilities, checkLimits, type Capabilities, type Limits } from '../kernel/capabilities.js';
import { checkPolicy, checkPurge, type CodePolicy, type PurgeMode } from '../kernel/policy.js';
import { erlang, erlangKill, forever, stack } from '../../policies/code.js';
import { legacyPinned, sandboxed, trusted, type NodePolicy } from '../../policies/capabilities.js';
import { ConfigError } from './errors.js';
import type { DurableOptions } from '../kernel/durable-spec.js';
import { configReferenceProblems, runConfigSchema } from '../host/schema/config.js';
import { describe, validate } from '../host/schema/problems.js';
import { resolvePath, type ClusterSource, type CodeSource, type PathSource } from '../host/source.js';

export type CodeShorthand = 'erlang' | 'erlang-kill' | 'forever' | { stack: number; purge?: PurgeMode } | CodePolicy;

export interface StartConfig {
  /** Or `{ supervisor: module, args?, name? }`: a supervision tree. */
  module?: string;
  supervisor?: string;
  /** The function to spawn; not used with `server: true` (the module's `init(...args)` runs). */
  fn?: string;
  args?: unknown[];
  /** Registered name on the node. */
  name?: string;
  /** Start a server (gen_server-like) process with the module as its callback module. */
  server?: boolean;
  /** With `server: true`: keep its state across restarts under its name (or `durable.key`). Off by default. */
  durable?: DurableOptions;
}

export interface NodeConfig {
  name: string;
  kind?: 'thread' | 'isolate';
  /** Isolate nodes: served by a shared dense thread instead of a worker of its own. */
  dense?: boolean;
  /** A preset from policies/: its capabilities, limits and code policy, under the fields given here. */
  policy?: 'sandboxed' | 'trusted' | 'legacy-pinned';
  capabilities?: Partial<Capabilities>;
  limits?: Limits;
  resourceLimits?: NodeSpec['resourceLimits'];
  code?: CodeShorthand;
  modulePolicies?: Record<string, CodeShorthand>;
  restart?: 'permanent' | 'transient' | 'temporary';
  intensity?: number;
  period?: number;
  /** A node whose code runs this long without returning is ended and restarted (default 10000 ms). */
  unresponsiveMs?: number;
  /** Thread nodes: packages and builtins its module code may import, resolved from the config file's folder. */
  imports?: string[];
  /**
   * Module name → its source: a file path relative to the config file (a string, or `{ path }`;
   * `{ path, base }` is relative to `base` instead), or `{ code }`, the source text.
   */
  modules?: Record<string, ModuleConfig>;
  start?: StartConfig[];
}

/** A module in a config: a string is a file path (relative to the config), never source text. */
export type ModuleConfig = string | { path: string; base?: string } | CodeSource | ClusterSource;

export interface RunConfig {
  /** The JSON Schema of a config file, for editors: `./node_modules/subnode/schema/config.schema.json`. */
  $schema?: string;
  nodes: NodeConfig[];
  control?: {
    /** The control socket's path, relative to the config file. */
    socket?: string;
    /** Write `.subnode.sock` (the socket's path) next to the config, for clients to find it (default true). */
    pointer?: boolean;
  };
  /** The release store (default: `.subnode/CONFIG.releases` beside the config); `false` keeps none. */
  releases?: false | { dir?: string; trial?: boolean; permanentAfterMs?: number };
}

export interface ServerStart {
  module: string;
  args: unknown[];
  name?: string;
  durable?: DurableOptions;
}

export interface LoadedConfig {
  file: string;
  dir: string;
  nodes: NodeSpec[];
  /** Per node: servers the CLI starts once the node is up, and again after it restarts. */
  servers: Map<string, ServerStart[]>;
  socket?: string;
  pointer: boolean;
  /** The release store the system keeps, if any. */
  releases?: { store: string; trial?: boolean; permanentAfterMs?: number };
}

const PRESETS: Record<string, NodePolicy> = { sandboxed, trusted, 'legacy-pinned': legacyPinned };
const CODE_PRESETS: Record<string, CodePolicy> = { erlang, 'erlang-kill': erlangKill, forever };

/** Reads, evaluates and checks a config file. Throws ConfigError (exit 2) listing every problem. */
export async function loadConfig(path: string): Promise<LoadedConfig> {
  const file = resolve(path);
  const raw = await readConfig(file);
  return checkConfig(raw, file);
}

async function readConfig(file: string): Promise<unknown> {
  const ext = extname(file);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(file, [`cannot read the config file (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`]);
  }
  if (ext === '.json') {
    try {
      return JSON.parse(text);
    } catch (error) {
      throw new ConfigError(file, [`not valid JSON: ${(error as Error).message}`]);
    }
  }
  if (!['.ts', '.mts', '.cts', '.js', '.mjs', '.cjs'].includes(ext)) {
    throw new ConfigError(file, [`unknown config file type '${ext || '(none)'}': use .json, .ts or .js`]);
  }
  let url = pathToFileURL(file).href;
  let temp: string | undefined;
  if (ext === '.ts' || ext === '.mts' || ext === '.cts') {
    // Types stripped by the same transpiler module code goes through (sucrase): ES module syntax kept.
    let outputText: string;
    try {
      outputText = transform(text, { transforms: ['typescript'], disableESTransforms: true, filePath: file }).code;
    } catch (error) {
      const loc = (error as { loc?: { line: number; column: number } }).loc;
      throw new ConfigError(file, [`${loc ? `line ${loc.line}:${loc.column + 1}: ` : ''}${(error as Error).message.replace(/ \(\d+:\d+\)$/, '')}`]);
    }
    // Next to the config, so that its relative imports and node_modules resolve as written.
    temp = join(dirname(file), `.${basename(file, ext)}.subnode-${process.pid}-${Date.now()}.mjs`);
    try {
      writeFileSync(temp, outputText);
    } catch (error) {
      throw new ConfigError(file, [
        `cannot write the compiled config next to it (${(error as NodeJS.ErrnoException).code}): make ${dirname(file)} writable or use a .json config`,
      ]);
    }
    url = pathToFileURL(temp).href;
  }
  try {
    const value = await evaluateWithDeadline(file, url);
    if (value === undefined) throw new ConfigError(file, ['the module has no default export: `export default { nodes: [...] }`']);
    return value;
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(file, [`evaluating the config module failed: ${(error as Error).message ?? error}`]);
  } finally {
    if (temp)
      try {
        unlinkSync(temp);
      } catch {
        /* gone already */
      }
  }
}

/** How long a JS/TS config may take to evaluate (`$SUBNODE_CONFIG_DEADLINE_MS`, default 10 s). */
function configDeadlineMs(): number {
  const raw = Number(process.env.SUBNODE_CONFIG_DEADLINE_MS);
  return Number.isFinite(raw) && raw > 0 ? raw : 10_000;
}

// Runs in the worker: imports the config module, calls a default function, posts the value back.
const EVALUATOR = `
const { parentPort, workerData } = require('node:worker_threads');
import(workerData.url).then(async (module) => {
  let value = module.default;
  if (typeof value === 'function') value = await value();
  try { parentPort.postMessage({ ok: true, value }); }
  catch (error) { parentPort.postMessage({ ok: false, message: 'its value cannot be copied (' + (error && error.message) + '): a config is plain data' }); }
}).catch((error) => parentPort.postMessage({ ok: false, message: String((error && error.message) ?? error) }));
`;

/**
 * Evaluates a config module in a worker thread, so that one whose top level (or default function)
 * never returns cannot hang \`subnode run\`: past the deadline the worker is terminated and this
 * fails with a ConfigError naming the file and the deadline.
 */
function evaluateWithDeadline(file: string, url: string): Promise<unknown> {
  const deadline = configDeadlineMs();
  const worker = new Worker(EVALUATOR, { eval: true, workerData: { url } });
  let timer: NodeJS.Timeout | undefined;
  return new Promise<unknown>((resolvePromise, reject) => {
    timer = setTimeout(() => {
      reject(
        new ConfigError(file, [
          `evaluating the config module did not finish within its ${deadline} ms deadline (does its top level loop or wait forever?); set $SUBNODE_CONFIG_DEADLINE_MS for more time`,
        ]),
      );
    }, deadline);
    worker.once('message', (reply: { ok: boolean; value?: unknown; message?: string }) => {
      if (reply.ok) resolvePromise(reply.value);
      else reject(new ConfigError(file, [`evaluating the config module failed: ${reply.message}`]));
    });
    worker.once('error', (error) => reject(new ConfigError(file, [`evaluating the config module failed: ${error.message}`])));
    worker.once('exit', (code) => reject(new ConfigError(file, [`evaluating the config module failed: its thread ended (exit code ${code})`])));
  }).finally(() => {
    clearTimeout(timer);
    void worker.terminate();
  });
}

/**
 * Checks a config value; paths in it are relative to `file`. The shape is the schema's
 * (src/host/schema/: types, ranges, unknown fields with a did-you-mean, references between
 * fields); what a shape cannot say is checked here: that module files can be read and compile,
 * and that presets merged with the node's own fields still make valid capabilities and limits.
 */
export function checkConfig(raw: unknown, file: string): LoadedConfig {
  const dir = dirname(file);
  const result: LoadedConfig = { file, dir, nodes: [], servers: new Map(), pointer: true };
  if (!isObject(raw)) throw new ConfigError(file, [`the config must be an object { nodes: [...] }, got ${describe(raw)}`]);
  const problems = validate(runConfigSchema, raw, configReferenceProblems);
  // Below, only what the schema cannot see, for fields it found well-formed (no problem twice).
  const bad = (at: string) => problems.some((p) => p.startsWith(`${at}:`) || p.startsWith(`${at}.`) || p.startsWith(`${at}[`));
  const nodes = Array.isArray(raw.nodes) ? raw.nodes : [];
  nodes.forEach((node, i) => {
    if (isObject(node)) result.nodes.push(checkNode(node as unknown as NodeConfig, `nodes[${i}]`, dir, problems, bad, result.servers));
  });
  const control = isObject(raw.control) ? (raw.control as NonNullable<RunConfig['control']>) : {};
  if (typeof control.socket === 'string') result.socket = resolve(dir, control.socket);
  if (typeof control.pointer === 'boolean') result.pointer = control.pointer;
  const releases = (raw as { releases?: RunConfig['releases'] }).releases;
  if (releases !== false) {
    const r = isObject(releases) ? (releases as Exclude<RunConfig['releases'], false | undefined>) : {};
    // One store per system: beside the config, named after it (two configs in one folder are two systems).
    result.releases = { store: resolve(dir, r.dir ?? join('.subnode', `${basename(file)}.releases`)), trial: r.trial, permanentAfterMs: r.permanentAfterMs };
  }
  if (problems.length) throw new ConfigError(file, problems);
  return result;
}

/** A node entry as a NodeSpec: presets merged, module files read and compiled. */
function checkNode(raw: NodeConfig, at: string, dir: string, problems: string[], bad: (at: string) => boolean, servers: Map<string, ServerStart[]>): NodeSpec {
  const spec: NodeSpec = { name: String(raw.name) };
  if (raw.kind !== undefined) spec.kind = raw.kind;
  if (raw.dense !== undefined) spec.dense = raw.dense;
  const preset = typeof raw.policy === 'string' && !bad(`${at}.policy`) ? PRESETS[raw.policy] : undefined;
  if ((preset || raw.capabilities !== undefined) && !bad(`${at}.capabilities`)) {
    const capabilities = { ...preset?.capabilities, ...raw.capabilities } as Partial<Capabilities>;
    try {
      checkCapabilities(capabilities);
      spec.capabilities = capabilities;
    } catch (error) {
      problems.push(`${at}.${(error as Error).message}`);
    }
  }
  if ((preset || raw.limits !== undefined) && !bad(`${at}.limits`)) {
    const limits = { ...preset?.limits, ...raw.limits } as Limits;
    try {
      checkLimits(limits);
      spec.limits = limits;
    } catch (error) {
      problems.push(`${at}.${(error as Error).message}`);
    }
  }
  if (raw.resourceLimits !== undefined) spec.resourceLimits = raw.resourceLimits;
  const code = raw.code !== undefined ? (bad(`${at}.code`) ? undefined : codePolicy(raw.code, `${at}.code`, problems)) : preset?.code;
  if (code) spec.code = code;
  if (isObject(raw.modulePolicies) && !bad(`${at}.modulePolicies`)) {
    const policies: Record<string, CodePolicy> = {};
    for (const [module, value] of Object.entries(raw.modulePolicies)) {
      const policy = codePolicy(value, `${at}.modulePolicies.${module}`, problems);
      if (policy) policies[module] = policy;
    }
    spec.modulePolicies = policies;
  }
  if (raw.restart !== undefined) spec.restart = raw.restart;
  if (raw.intensity !== undefined) spec.intensity = raw.intensity;
  if (raw.period !== undefined) spec.period = raw.period;
  if (raw.unresponsiveMs !== undefined) spec.unresponsiveMs = raw.unresponsiveMs;
  if (raw.imports !== undefined) {
    spec.imports = raw.imports;
    spec.importsFrom = dir;
  }
  if (isObject(raw.modules)) {
    spec.modules = {};
    for (const [module, value] of Object.entries(raw.modules)) {
      if (bad(`${at}.modules.${module}`)) continue;
      const source = moduleSource(module, value, `${at}.modules.${module}`, dir, problems);
      if (source) spec.modules[module] = source;
    }
  }
  if (Array.isArray(raw.start)) {
    const spawns: StartSpec[] = [];
    const started: ServerStart[] = [];
    for (const entry of raw.start) {
      if (!isObject(entry)) continue;
      const { module, fn, args, name } = entry;
      const named = typeof name === 'string' ? { name } : {};
      if (typeof entry.supervisor === 'string') spawns.push({ supervisor: entry.supervisor, args: Array.isArray(args) ? args : [], ...named });
      else if (entry.server === true)
        started.push({
          module: String(module),
          args: Array.isArray(args) ? args : [],
          ...named,
          ...(isObject(entry.durable) ? { durable: entry.durable as unknown as DurableOptions } : {}),
        });
      else spawns.push({ module: String(module), fn: String(fn), args: Array.isArray(args) ? args : [], ...named });
    }
    if (spawns.length) spec.start = spawns;
    if (started.length) servers.set(spec.name, started);
  }
  return spec;
}

/** A module entry, read and compiled now so that a config that starts is one whose modules load. */
function moduleSource(module: string, value: ModuleConfig, at: string, dir: string, problems: string[]): PathSource | CodeSource | ClusterSource | undefined {
  // Fetched from the cluster's code store when the node starts (a `--cluster` run).
  if (typeof value === 'object' && 'cluster' in value) return value;
  if (typeof value === 'object' && 'code' in value) {
    try {
      transpile(module, value.code, value.filename ?? `${module}.ts`);
    } catch (error) {
      problems.push(`${at}: the code does not compile: ${(error as Error).message}`);
      return undefined;
    }
    return value;
  }
  const path = typeof value === 'string' ? value : value.path;
  let full: string;
  try {
    full = typeof value === 'object' && value.base !== undefined ? resolvePath(path, value.base) : resolve(dir, path);
  } catch (error) {
    problems.push(`${at}.base: ${(error as Error).message}`);
    return undefined;
  }
  let text: string;
  try {
    accessSync(full, constants.R_OK);
    text = readFileSync(full, 'utf8');
  } catch (error) {
    problems.push(`${at}: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
    return undefined;
  }
  try {
    transpile(module, text, full);
  } catch (error) {
    problems.push(`${at}: ${path} does not compile: ${(error as Error).message}`);
    return undefined;
  }
  return { path: full };
}

function codePolicy(value: unknown, at: string, problems: string[]): CodePolicy | undefined {
  if (typeof value === 'string') return CODE_PRESETS[value];
  try {
    if (isObject(value) && 'stack' in value) return stack(value.stack as number, value.purge === undefined ? 'soft' : checkPurge(value.purge, at));
    return checkPolicy(value, at);
  } catch (error) {
    problems.push((error as Error).message);
    return undefined;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
