/**
 * The code server of one node: its private module namespace. Each module has numbered versions;
 * exactly one is current, the rest are old. Every version keeps the set of processes executing its
 * code, maintained by the kernel as processes move between versions, so finding the processes
 * lingering in old code costs O(lingering), not a scan of the process table.
 */
import { BadArgument, LoadError, UnknownFunction, UnknownModule } from '../errors.js';
import { ProcessList } from './process-list.js';

/** A compiled module body in CommonJS shape; the host compiles source text into one. */
export type ModuleFactory = (require: (specifier: string) => unknown, exports: Record<string, unknown>, module: { exports: Record<string, unknown> }) => void;

export type VersionState = 'current' | 'old';

export class ModuleVersion {
  state: VersionState = 'current';
  /** Being drained by a purge: no process may enter it any more. */
  draining = false;
  exports: Record<string, unknown> = {};
  /** Processes whose code is in this version right now. */
  readonly processes = new ProcessList();
  constructor(
    readonly module: ModuleRecord,
    readonly version: number,
    readonly loadedAt: number,
    /**
     * The vsn when the code exports none: the vsn identical code had when first loaded on this node
     * (the host remembers it by the source's hash), else this version's number. OTP's default vsn is
     * the module's MD5, so reloading the same code (a rollback, a downgrade) gives the same vsn.
     */
    private readonly defaultVsn: unknown = version,
  ) {}
  get name(): string {
    return this.module.name;
  }
  /** Its `vsn` (Erlang's -vsn): its exported `vsn` if any, else its default one. */
  get vsn(): unknown {
    const declared = this.exports.vsn;
    return declared === undefined || typeof declared === 'function' ? this.defaultVsn : declared;
  }
  toString(): string {
    return `${this.module.name}@${this.version}`;
  }
}

export class ModuleRecord {
  readonly versions: ModuleVersion[] = [];
  /**
   * What qualified calls see: a live object whose properties are always the current version's
   * exports. Module code holds it from `require`, so `Mod.fn()` enters the current version at
   * every call, exactly like `mod:fn()` in Erlang.
   */
  readonly namespace: Record<string, unknown> = Object.create(null);
  nextVersion = 1;
  constructor(readonly name: string) {}

  get current(): ModuleVersion | undefined {
    const last = this.versions[this.versions.length - 1];
    return last?.state === 'current' ? last : undefined;
  }
  get old(): ModuleVersion[] {
    return this.versions.filter((v) => v.state === 'old');
  }
}

export const MODULE_NAME = /^[A-Za-z_$][A-Za-z0-9_$-]{0,127}$/;
const RESERVED = new Set(['subnode', 'subnode/process']);

export interface CodeServerHooks {
  compile(js: string, filename: string): ModuleFactory;
  /** The `subnode` API object module code imports, bound to the version being loaded. */
  apiFor(version: ModuleVersion): object;
  now(): number;
}

export interface LoadOutcome {
  version: ModuleVersion;
  previous: ModuleVersion | undefined;
}

export class CodeServer {
  private readonly modules = new Map<string, ModuleRecord>();
  /** Exported functions of every version, so a function value tells which version it enters. */
  private readonly versionOfFunction = new WeakMap<object, ModuleVersion>();

  constructor(
    private readonly hooks: CodeServerHooks,
    private readonly nodeName: string,
    /** Module aliasing: a name module code imports → the module that implements it. */
    private readonly aliases: Record<string, string> = {},
    /** Packages and builtins the node may import (thread nodes): specifier → what it exports. Not upgradable. */
    private readonly natives: Record<string, unknown> = {},
  ) {}

  /** The specifiers of the packages and builtins this node's module code may import. */
  nativeNames(): string[] {
    return Object.keys(this.natives);
  }

  /**
   * Compiles and evaluates a new version without installing it. On any failure nothing changes:
   * the error is a LoadError and the module keeps its current version. `at` is the version number
   * (a restart restores versions under theirs), `vsn` its default vsn (see ModuleVersion).
   */
  prepare(name: string, js: string, at?: number, vsn?: unknown): ModuleVersion {
    if (typeof name !== 'string' || !MODULE_NAME.test(name) || RESERVED.has(name)) {
      throw new BadArgument(`bad module name ${JSON.stringify(name)}: use letters, digits, _ $ -`);
    }
    if (Object.prototype.hasOwnProperty.call(this.natives, name)) {
      throw new BadArgument(`'${name}' is a package this node imports from the host: it is not a module of the node, and cannot be loaded or upgraded`, {
        module: name,
      });
    }
    if (typeof js !== 'string') throw new BadArgument('module source must be a string');
    const record = this.record(name);
    // A restart restores versions under the numbers they had: never one already used here.
    if (at !== undefined && !(Number.isInteger(at) && at >= record.nextVersion)) {
      throw new BadArgument(`module '${name}': version ${at} cannot be loaded here (the next version number is ${record.nextVersion})`, { module: name });
    }
    const number = at ?? record.nextVersion;
    let factory: ModuleFactory;
    try {
      factory = this.hooks.compile(js, `subnode://${this.nodeName}/${name}@${number}.js`);
    } catch (error) {
      throw new LoadError(`module '${name}' does not compile: ${describe(error)}`, { module: name, phase: 'compile' });
    }
    const version = new ModuleVersion(record, number, this.hooks.now(), vsn ?? number);
    const api = this.hooks.apiFor(version);
    const module = { exports: version.exports };
    try {
      factory((specifier) => this.resolve(specifier, api), module.exports, module);
    } catch (error) {
      throw new LoadError(`module '${name}' failed while loading: ${describe(error)}`, { module: name, phase: 'evaluate' });
    }
    if (module.exports === null || typeof module.exports !== 'object') {
      throw new LoadError(`module '${name}' must export an object`, { module: name, phase: 'evaluate' });
    }
    version.exports = module.exports;
    return version;
  }

  /** Makes a prepared version current; the previous current becomes old. Cannot fail. */
  install(version: ModuleVersion): ModuleVersion | undefined {
    const record = version.module;
    record.nextVersion = Math.max(record.nextVersion, version.version + 1);
    const previous = record.current;
    if (previous) previous.state = 'old';
    record.versions.push(version);
    // Only functions this version defines: a re-export (a getter) belongs to the module it comes from.
    const exported = Object.getOwnPropertyDescriptors(version.exports);
    for (const key of Object.keys(exported)) {
      const value = exported[key]!.value;
      if (typeof value === 'function') this.versionOfFunction.set(value, version);
    }
    this.publish(record, exported);
    return previous;
  }

  /** Compiles and installs in one go (no retention checks: the kernel does those). */
  load(name: string, js: string): LoadOutcome {
    const version = this.prepare(name, js);
    return { version, previous: this.install(version) };
  }

  /** Undoes an install: `previous` is current again and `version` becomes old. */
  revert(version: ModuleVersion, previous: ModuleVersion | undefined): void {
    const record = version.module;
    version.state = 'old';
    if (previous) {
      previous.state = 'current';
      if (!record.versions.includes(previous)) record.versions.push(previous);
      // Keep the list ordered by version number: current last.
      record.versions.sort((x, y) => (x.state === 'current' ? 1 : 0) - (y.state === 'current' ? 1 : 0) || x.version - y.version);
    }
    this.publish(record);
  }

  /** The current version becomes old; qualified calls and spawns by name then fail. */
  deleteCurrent(name: string): ModuleVersion {
    const current = this.current(name);
    current.state = 'old';
    this.publish(current.module);
    return current;
  }

  module(name: string): ModuleRecord | undefined {
    return this.modules.get(name);
  }
  all(): IterableIterator<ModuleRecord> {
    return this.modules.values();
  }

  current(name: string): ModuleVersion {
    const version = this.modules.get(name)?.current;
    if (!version) throw new UnknownModule(`no module named '${name}' is loaded on node '${this.nodeName}'`, { module: name });
    return version;
  }

  /** The current version's exported function `fn` of `module`, for spawns by name. */
  entry(module: string, fn: string): { version: ModuleVersion; fn: (...args: unknown[]) => unknown } {
    const version = this.current(module);
    const value = Object.prototype.hasOwnProperty.call(version.exports, fn) ? version.exports[fn] : undefined;
    if (typeof value !== 'function') throw new UnknownFunction(`module '${module}' exports no function '${fn}'`, { module, function: fn });
    return { version, fn: value as (...args: unknown[]) => unknown };
  }

  versionOf(fn: object): ModuleVersion | undefined {
    return this.versionOfFunction.get(fn);
  }

  /** The module whose live namespace object this is (module code passes `import * as m`). */
  nameOfNamespace(namespace: object): string | undefined {
    for (const record of this.modules.values()) if (record.namespace === namespace) return record.name;
    return undefined;
  }

  /** Puts back a version removed earlier (an upgrade's rollback), as old. */
  restore(version: ModuleVersion): void {
    const versions = version.module.versions;
    if (versions.includes(version)) return;
    version.state = 'old';
    versions.push(version);
    versions.sort((x, y) => (x.state === 'current' ? 1 : 0) - (y.state === 'current' ? 1 : 0) || x.version - y.version);
  }

  /** Drops a version that no longer counts: not current and nothing executing it. */
  remove(version: ModuleVersion): void {
    const versions = version.module.versions;
    const index = versions.indexOf(version);
    if (index >= 0) versions.splice(index, 1);
  }

  /**
   * Rewrites the live namespace to the current version's exports (or empties it); `exported`: the
   * current version's own property descriptors, when the caller has them already.
   */
  publish(record: ModuleRecord, exported?: PropertyDescriptorMap): void {
    const ns = record.namespace;
    for (const key of Object.keys(ns)) delete ns[key];
    if (Object.getPrototypeOf(ns) === null) Object.setPrototypeOf(ns, missingExports(record, this.nodeName));
    const current = record.current;
    if (!current) return;
    // Descriptors, not values: a re-export is a getter and must stay live.
    const descriptors = exported ?? Object.getOwnPropertyDescriptors(current.exports);
    for (const key of Object.keys(descriptors)) {
      const d = descriptors[key]!;
      if (!d.enumerable) continue;
      Object.defineProperty(
        ns,
        key,
        d.get ? { get: d.get, enumerable: true, configurable: true } : { value: d.value, enumerable: true, writable: false, configurable: true },
      );
    }
  }

  private resolve(specifier: string, api: object): unknown {
    if (typeof specifier !== 'string') throw new TypeError('require() takes a module name');
    if (RESERVED.has(specifier)) return api;
    if (Object.prototype.hasOwnProperty.call(this.natives, specifier)) return this.natives[specifier];
    const name = moduleNameOf(specifier);
    if (!name) throw new Error(`'${specifier}' is not available inside a node: import node modules by name, or 'subnode'`);
    // A module not loaded yet gets its (empty) namespace now; it fills in when the module loads.
    return this.record(this.aliases[name] ?? name).namespace;
  }

  private record(name: string): ModuleRecord {
    let record = this.modules.get(name);
    if (!record) {
      this.modules.set(name, (record = new ModuleRecord(name)));
      this.publish(record);
    }
    return record;
  }
}

/** Keys that runtimes and tools probe on any object; a namespace answers them with undefined. */
const PROBED = new Set(['then', '__esModule', 'toJSON', 'constructor', 'toString', 'valueOf', 'inspect', 'nodeType', '$$typeof', 'asymmetricMatch', 'default']);

/**
 * The prototype of a namespace: reading an export the current version lacks (or any export of a
 * module with no current version) throws a clear error, instead of `x.f is not a function`.
 */
function missingExports(record: ModuleRecord, node: string): object {
  return new Proxy(Object.create(null), {
    get(_target, key) {
      if (typeof key !== 'string' || PROBED.has(key)) return undefined;
      if (!record.current) throw new UnknownModule(`module '${record.name}' has no current version on node '${node}'`, { module: record.name });
      throw new UnknownFunction(`module '${record.name}' (version ${record.current.version}) exports no '${key}'`, { module: record.name, function: key });
    },
  });
}

/** `./counter`, `counter`, `./counter.ts` and `../lib/counter.js` all name module `counter`. */
export function moduleNameOf(specifier: string): string | undefined {
  if (specifier.startsWith('node:')) return undefined;
  const base = specifier.replace(/^(\.\.?\/)+/, '').replace(/\.(ts|js|mjs|cjs|mts|cts)$/, '');
  const last = base.slice(base.lastIndexOf('/') + 1);
  if (!specifier.startsWith('.') && base.includes('/')) return undefined;
  return MODULE_NAME.test(last) ? last : undefined;
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
