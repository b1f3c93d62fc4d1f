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
import ts from 'typescript';
import type { NodeSpec, StartSpec } from '../host/node-handle.js';
import { transpile } from '../compiler/transpile.js';
import { checkCapabilities, checkLimits, type Capabilities, type Limits } from '../kernel/capabilities.js';
import { NODE_NAME } from '../kernel/pid.js';
import { checkPolicy, checkPurge, type CodePolicy, type PurgeMode } from '../kernel/policy.js';
import { erlang, erlangKill, forever, stack } from '../../policies/code.js';
import { legacyPinned, sandboxed, trusted, type NodePolicy } from '../../policies/capabilities.js';
import { ConfigError } from './errors.js';

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
}

export interface NodeConfig {
  name: string;
  kind?: 'thread' | 'isolate';
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
  /** Module name → source file, relative to the config file. */
  modules?: Record<string, string | { path: string }>;
  start?: StartConfig[];
}

export interface RunConfig {
  nodes: NodeConfig[];
  control?: {
    /** The control socket's path, relative to the config file. */
    socket?: string;
    /** Write `.subnode.sock` (the socket's path) next to the config, for clients to find it (default true). */
    pointer?: boolean;
  };
}

export interface ServerStart { module: string; args: unknown[]; name?: string }

export interface LoadedConfig {
  file: string;
  dir: string;
  nodes: NodeSpec[];
  /** Per node: servers the CLI starts once the node is up, and again after it restarts. */
  servers: Map<string, ServerStart[]>;
  socket?: string;
  pointer: boolean;
}

const PRESETS: Record<string, NodePolicy> = { sandboxed, trusted, 'legacy-pinned': legacyPinned };
const CODE_PRESETS: Record<string, CodePolicy> = { erlang, 'erlang-kill': erlangKill, forever };
const NODE_FIELDS = ['name', 'kind', 'policy', 'capabilities', 'limits', 'resourceLimits', 'code', 'modulePolicies', 'restart', 'intensity', 'period', 'modules', 'start'];
const START_FIELDS = ['module', 'fn', 'args', 'name', 'server'];
const SUPERVISOR_FIELDS = ['supervisor', 'args', 'name'];
const TOP_FIELDS = ['nodes', 'control'];
const CONTROL_FIELDS = ['socket', 'pointer'];

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
    const out = ts.transpileModule(text, {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, sourceMap: false },
      fileName: file,
      reportDiagnostics: true,
    });
    const errors = (out.diagnostics ?? []).filter((d) => d.category === ts.DiagnosticCategory.Error);
    if (errors.length) {
      throw new ConfigError(file, errors.map((d) => {
        const where = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start) : undefined;
        return `${where ? `line ${where.line + 1}:${where.character + 1}: ` : ''}${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
      }));
    }
    // Next to the config, so that its relative imports and node_modules resolve as written.
    temp = join(dirname(file), `.${basename(file, ext)}.subnode-${process.pid}-${Date.now()}.mjs`);
    try {
      writeFileSync(temp, out.outputText);
    } catch (error) {
      throw new ConfigError(file, [`cannot write the compiled config next to it (${(error as NodeJS.ErrnoException).code}): make ${dirname(file)} writable or use a .json config`]);
    }
    url = pathToFileURL(temp).href;
  }
  try {
    const module = (await import(url)) as { default?: unknown };
    let value = module.default;
    if (typeof value === 'function') value = await (value as () => unknown)();
    if (value === undefined) throw new ConfigError(file, ['the module has no default export: `export default { nodes: [...] }`']);
    return value;
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(file, [`evaluating the config module failed: ${(error as Error).message ?? error}`]);
  } finally {
    if (temp) try { unlinkSync(temp); } catch { /* gone already */ }
  }
}

/** Checks a config value; paths in it are relative to `file`. */
export function checkConfig(raw: unknown, file: string): LoadedConfig {
  const dir = dirname(file);
  const problems: string[] = [];
  const result: LoadedConfig = { file, dir, nodes: [], servers: new Map(), pointer: true };
  if (!isObject(raw)) throw new ConfigError(file, [`the config must be an object { nodes: [...] }, got ${describe(raw)}`]);
  unknownFields(raw, TOP_FIELDS, '', problems);
  if (!Array.isArray(raw.nodes)) {
    problems.push(`nodes: must be a list of nodes [{ name, ... }], got ${describe(raw.nodes)}`);
  } else {
    if (!raw.nodes.length) problems.push('nodes: the list is empty; a system needs at least one node');
    const seen = new Map<string, number>();
    raw.nodes.forEach((node, i) => {
      const spec = checkNode(node, `nodes[${i}]`, dir, problems, result.servers);
      if (!spec) return;
      const before = seen.get(spec.name);
      if (before !== undefined) problems.push(`nodes[${i}].name: '${spec.name}' is already the name of nodes[${before}]`);
      seen.set(spec.name, i);
      result.nodes.push(spec);
    });
  }
  if (raw.control !== undefined) {
    if (!isObject(raw.control)) problems.push(`control: must be an object { socket?, pointer? }, got ${describe(raw.control)}`);
    else {
      unknownFields(raw.control, CONTROL_FIELDS, 'control.', problems);
      const { socket, pointer } = raw.control;
      if (socket !== undefined) {
        if (typeof socket !== 'string' || !socket) problems.push(`control.socket: must be a path, got ${describe(socket)}`);
        else result.socket = resolve(dir, socket);
      }
      if (pointer !== undefined) {
        if (typeof pointer !== 'boolean') problems.push(`control.pointer: must be true or false, got ${describe(pointer)}`);
        else result.pointer = pointer;
      }
    }
  }
  if (problems.length) throw new ConfigError(file, problems);
  return result;
}

function checkNode(raw: unknown, at: string, dir: string, problems: string[], servers: Map<string, ServerStart[]>): NodeSpec | undefined {
  if (!isObject(raw)) {
    problems.push(`${at}: must be an object { name, ... }, got ${describe(raw)}`);
    return undefined;
  }
  unknownFields(raw, NODE_FIELDS, `${at}.`, problems);
  const name = raw.name;
  if (typeof name !== 'string' || !NODE_NAME.test(name) || name === 'host') {
    problems.push(`${at}.name: must be a node name (a letter or _, then letters, digits, _ and -; not 'host'), got ${describe(name)}`);
  }
  const spec: NodeSpec = { name: String(name) };
  if (raw.kind !== undefined) {
    if (raw.kind !== 'thread' && raw.kind !== 'isolate') problems.push(`${at}.kind: must be 'thread' or 'isolate', got ${describe(raw.kind)}`);
    else spec.kind = raw.kind;
  }
  let preset: NodePolicy | undefined;
  if (raw.policy !== undefined) {
    preset = typeof raw.policy === 'string' ? PRESETS[raw.policy] : undefined;
    if (!preset) problems.push(`${at}.policy: must be one of ${Object.keys(PRESETS).map((p) => `'${p}'`).join(', ')}, got ${describe(raw.policy)}`);
  }
  if (raw.capabilities !== undefined && !isObject(raw.capabilities)) problems.push(`${at}.capabilities: must be an object, got ${describe(raw.capabilities)}`);
  else if (preset || raw.capabilities !== undefined) {
    const capabilities = { ...preset?.capabilities, ...(raw.capabilities as object | undefined) } as Partial<Capabilities>;
    try {
      checkCapabilities(capabilities);
      spec.capabilities = capabilities;
    } catch (error) {
      problems.push(`${at}.${(error as Error).message}`);
    }
  }
  if (raw.limits !== undefined && !isObject(raw.limits)) problems.push(`${at}.limits: must be an object, got ${describe(raw.limits)}`);
  else if (preset || raw.limits !== undefined) {
    const limits = { ...preset?.limits, ...(raw.limits as object | undefined) } as Limits;
    try {
      checkLimits(limits);
      spec.limits = limits;
    } catch (error) {
      problems.push(`${at}.${(error as Error).message}`);
    }
  }
  if (raw.resourceLimits !== undefined) {
    if (!isObject(raw.resourceLimits) || Object.values(raw.resourceLimits).some((v) => typeof v !== 'number' || !(v > 0))) {
      problems.push(`${at}.resourceLimits: must be an object of positive numbers (maxOldGenerationSizeMb, ...), got ${describe(raw.resourceLimits)}`);
    } else spec.resourceLimits = raw.resourceLimits as NodeSpec['resourceLimits'];
  }
  const code = raw.code !== undefined ? codePolicy(raw.code, `${at}.code`, problems) : preset?.code;
  if (code) spec.code = code;
  if (raw.modulePolicies !== undefined) {
    if (!isObject(raw.modulePolicies)) problems.push(`${at}.modulePolicies: must map module names to code policies, got ${describe(raw.modulePolicies)}`);
    else {
      const policies: Record<string, CodePolicy> = {};
      for (const [module, value] of Object.entries(raw.modulePolicies)) {
        const policy = codePolicy(value, `${at}.modulePolicies.${module}`, problems);
        if (policy) policies[module] = policy;
      }
      spec.modulePolicies = policies;
    }
  }
  if (raw.restart !== undefined) {
    if (raw.restart !== 'permanent' && raw.restart !== 'transient' && raw.restart !== 'temporary') problems.push(`${at}.restart: must be 'permanent', 'transient' or 'temporary', got ${describe(raw.restart)}`);
    else spec.restart = raw.restart;
  }
  if (raw.intensity !== undefined) {
    if (!Number.isInteger(raw.intensity) || (raw.intensity as number) < 0) problems.push(`${at}.intensity: must be an integer >= 0 (restarts allowed per period), got ${describe(raw.intensity)}`);
    else spec.intensity = raw.intensity as number;
  }
  if (raw.period !== undefined) {
    if (typeof raw.period !== 'number' || !(raw.period > 0)) problems.push(`${at}.period: must be a number of ms > 0, got ${describe(raw.period)}`);
    else spec.period = raw.period;
  }
  const moduleNames: string[] = [];
  if (raw.modules !== undefined) {
    if (!isObject(raw.modules)) problems.push(`${at}.modules: must map module names to files, { counter: './counter.ts' }, got ${describe(raw.modules)}`);
    else {
      spec.modules = {};
      for (const [module, value] of Object.entries(raw.modules)) {
        moduleNames.push(module);
        const path = typeof value === 'string' ? value : isObject(value) && typeof value.path === 'string' ? value.path : undefined;
        if (!path) {
          problems.push(`${at}.modules.${module}: must be a file path relative to the config, got ${describe(value)}`);
          continue;
        }
        const full = resolve(dir, path);
        let text: string;
        try {
          accessSync(full, constants.R_OK);
          text = readFileSync(full, 'utf8');
        } catch (error) {
          problems.push(`${at}.modules.${module}: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
          continue;
        }
        try {
          transpile(module, text, full);
        } catch (error) {
          problems.push(`${at}.modules.${module}: ${path} does not compile: ${(error as Error).message}`);
          continue;
        }
        spec.modules[module] = { path: full };
      }
    }
  }
  if (raw.start !== undefined) {
    if (!Array.isArray(raw.start)) problems.push(`${at}.start: must be a list [{ module, fn, args?, name?, server? }], got ${describe(raw.start)}`);
    else {
      const spawns: StartSpec[] = [];
      const started: ServerStart[] = [];
      raw.start.forEach((entry, j) => {
        const where = `${at}.start[${j}]`;
        if (!isObject(entry)) return problems.push(`${where}: must be an object { module, fn, args?, name?, server? }, got ${describe(entry)}`);
        if ('supervisor' in entry) {
          // A supervision tree: { supervisor: module, args?, name? }; its init starts the children.
          unknownFields(entry, SUPERVISOR_FIELDS, `${where}.`, problems);
          const { supervisor, args, name: reg } = entry;
          if (typeof supervisor !== 'string' || !moduleNames.includes(supervisor)) {
            problems.push(`${where}.supervisor: must name one of ${at}.modules (${moduleNames.length ? moduleNames.join(', ') : 'none'}), got ${describe(supervisor)}`);
          }
          if (args !== undefined && !Array.isArray(args)) problems.push(`${where}.args: must be a list of arguments, got ${describe(args)}`);
          if (reg !== undefined && (typeof reg !== 'string' || !reg)) problems.push(`${where}.name: must be a name to register, got ${describe(reg)}`);
          spawns.push({ supervisor: String(supervisor), args: Array.isArray(args) ? args : [], ...(typeof reg === 'string' ? { name: reg } : {}) });
          return;
        }
        unknownFields(entry, START_FIELDS, `${where}.`, problems);
        const { module, fn, args, name: reg, server } = entry;
        if (typeof module !== 'string' || !module) problems.push(`${where}.module: must be a module name, got ${describe(module)}`);
        else if (!moduleNames.includes(module)) {
          problems.push(`${where}.module: '${module}' is not one of ${at}.modules (${moduleNames.length ? moduleNames.join(', ') : 'none'}); add it there`);
        }
        if (server !== undefined && typeof server !== 'boolean') problems.push(`${where}.server: must be true or false, got ${describe(server)}`);
        if (server === true) {
          if (fn !== undefined) problems.push(`${where}.fn: not used with server: true (the server runs the module's init(...args)); remove it`);
        } else if (typeof fn !== 'string' || !fn) problems.push(`${where}.fn: must be the name of the function to spawn, got ${describe(fn)}`);
        if (args !== undefined && !Array.isArray(args)) problems.push(`${where}.args: must be a list of arguments, got ${describe(args)}`);
        if (reg !== undefined && (typeof reg !== 'string' || !reg)) problems.push(`${where}.name: must be a name to register, got ${describe(reg)}`);
        const argList = Array.isArray(args) ? args : [];
        if (server === true) started.push({ module: String(module), args: argList, ...(typeof reg === 'string' ? { name: reg } : {}) });
        else spawns.push({ module: String(module), fn: String(fn), args: argList, ...(typeof reg === 'string' ? { name: reg } : {}) });
      });
      if (spawns.length) spec.start = spawns;
      if (started.length) servers.set(spec.name, started);
    }
  }
  return spec;
}

function codePolicy(value: unknown, at: string, problems: string[]): CodePolicy | undefined {
  if (typeof value === 'string') {
    const preset = CODE_PRESETS[value];
    if (!preset) problems.push(`${at}: must be ${Object.keys(CODE_PRESETS).map((p) => `'${p}'`).join(', ')}, { stack: N } or { retention, purge }, got ${describe(value)}`);
    return preset;
  }
  if (isObject(value) && 'stack' in value) {
    const depth = value.stack;
    if (!Number.isInteger(depth) || (depth as number) < 1) {
      problems.push(`${at}.stack: must be an integer >= 1 (old versions kept), got ${describe(depth)}`);
      return undefined;
    }
    try {
      return stack(depth as number, value.purge === undefined ? 'soft' : checkPurge(value.purge, at));
    } catch (error) {
      problems.push((error as Error).message);
      return undefined;
    }
  }
  try {
    return checkPolicy(value, at);
  } catch (error) {
    problems.push(`${(error as Error).message} (or use 'erlang', 'erlang-kill', 'forever', { stack: N })`);
    return undefined;
  }
}

function unknownFields(value: Record<string, unknown>, known: string[], at: string, problems: string[]): void {
  for (const key of Object.keys(value)) {
    if (known.includes(key)) continue;
    const near = known.find((k) => distance(k.toLowerCase(), key.toLowerCase()) <= Math.max(1, Math.floor(k.length / 4)));
    problems.push(`${at}${key}: unknown field${near ? ` (did you mean '${near}'?)` : `; known fields: ${known.join(', ')}`}`);
  }
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const next = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = row[j]!;
      row[j] = next;
    }
  }
  return row[b.length]!;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  try {
    const text = JSON.stringify(value);
    return text.length > 60 ? `${text.slice(0, 57)}...` : text;
  } catch {
    return typeof value;
  }
}
