/**
 * Code operations of one node, with Erlang's meaning: load under the retention policy, purge,
 * soft purge, drain, delete, check_process_code, and lingering() from the per-version index.
 * Retention (how many old versions a module keeps) and purge mode (what happens to processes
 * still in a version that must go) are separate axes: see policy.ts. Also keeps the per-version
 * process index exact as processes move between versions (`moveTo`).
 */
import { BadArgument, LoadError, NotAllowed, NotPurged, Refused, UnknownModule } from '../errors.js';
import { allows, type Capabilities } from './capabilities.js';
import type { CodeServer, ModuleRecord, ModuleVersion } from './code-server.js';
import type { Pid } from './pid.js';
import { DEFAULT_POLICY, checkPolicy, checkPurge, collectsIdle, oldSlots, type CodePolicy, type PurgeMode } from './policy.js';
import type { KernelPlatform } from './kernel.js';
import type { Process } from './proc.js';
import type { ProcessTable } from './process-table.js';
import type { Scheduler } from './scheduler.js';
import type { Signalling } from './signalling.js';
import type { LoadReport, PurgeReport } from './types.js';
import { isJson } from './values.js';

export interface LoadOptions {
  purge?: PurgeMode;
  /** The number the version gets (a restart restores versions under theirs). */
  version?: number;
  /** Its default vsn: the vsn identical code had before (see ModuleVersion). */
  vsn?: unknown;
  onLoadTimeoutMs?: number;
}

/** What a load reports of the version it made current; its vsn only when it is plain data (a journal keeps it). */
function reportOf(version: ModuleVersion, previous: ModuleVersion | undefined): Pick<LoadReport, 'module' | 'version' | 'vsn' | 'previous'> {
  const vsn = version.vsn;
  return { module: version.name, version: version.version, ...(isJson(vsn) ? { vsn } : {}), previous: previous?.version };
}

export class CodeOps {
  private policy: CodePolicy = DEFAULT_POLICY;
  private readonly modulePolicies = new Map<string, CodePolicy>();
  /** Modules with a drain in progress: another load or purge of them waits its turn by refusing. */
  private readonly draining = new Map<ModuleRecord, () => void>();

  private signals!: Signalling;

  constructor(
    private readonly node: string,
    private readonly code: CodeServer,
    private readonly capabilities: Capabilities,
    private readonly platform: KernelPlatform,
    private readonly table: ProcessTable,
    private readonly scheduler: Scheduler,
  ) {}

  connect(signals: Signalling): void {
    this.signals = signals;
  }

  /** Sets the node's code policy, or one module's. */
  setPolicy(policy: CodePolicy, module?: string): void {
    const checked = checkPolicy(policy);
    if (module === undefined) this.policy = checked;
    else this.modulePolicies.set(module, checked);
  }

  policyFor(module: string): CodePolicy {
    return this.modulePolicies.get(module) ?? this.policy;
  }

  /**
   * Loads a new version. When the retention has no room for one more old version, the oldest
   * ones are purged first by `purge` (default: the policy's); a refused purge means NotPurged and
   * nothing changes. Under a drain, the result comes once the drain ends. `version` and `vsn` are
   * the number and default vsn the host gives (see CodeServer.prepare).
   */
  load(name: string, js: string, options: LoadOptions = {}): LoadReport | Promise<LoadReport> {
    if (typeof name === 'string' && !allows(this.capabilities.modules, name)) {
      throw new NotAllowed(`node '${this.node}' may not load module '${name}'`, { module: name });
    }
    const version = this.code.prepare(name, js, options.version, options.vsn);
    const record = version.module;
    this.assertNotDraining(record);
    const mode = options.purge === undefined ? this.policyFor(name).purge : checkPurge(options.purge, 'load');
    const commit = (room: PurgeReport): LoadReport => {
      if (!room.ok) {
        throw new NotPurged(`module '${name}' has old code that processes still run (${room.lingering.join(', ')}): purge it first`, {
          module: name,
          lingering: room.lingering,
        });
      }
      this.runOnLoad(version, options.onLoadTimeoutMs);
      const previous = this.code.install(version);
      this.platform.emit({ type: 'module_loaded', node: this.node, module: name, version: version.version });
      if (previous && previous.processes.size === 0 && collectsIdle(this.policyFor(name).retention)) this.collect(previous);
      this.scheduler.afterExternalWork();
      return { ...reportOf(version, previous), purged: room.purged, killed: room.killed };
    };
    const room = this.makeRoom(record, this.willBecomeOld(record), mode);
    return room instanceof Promise ? room.then(commit) : commit(room);
  }

  /**
   * `code:atomic_load`: every module's new version is prepared (compiled and evaluated) first, then
   * all become current at once, or none does. Refused as a whole (NotPurged) when a module would
   * need a purge its mode does not allow (processes still in a version that must go, under `soft`
   * or a drain: an atomic load never waits); a module exporting `onLoad` is refused
   * (`on_load_not_allowed`, as OTP). Under `kill`, what must go is purged as `load` would.
   */
  loadAtomic(modules: Record<string, string>, options: { purge?: PurgeMode; vsns?: Record<string, unknown> } = {}): LoadReport[] {
    const names = modules && typeof modules === 'object' ? Object.keys(modules) : [];
    if (!names.length) throw new BadArgument('loadAtomic takes { module: source, ... } with at least one module');
    for (const name of names) {
      if (!allows(this.capabilities.modules, name)) throw new NotAllowed(`node '${this.node}' may not load module '${name}'`, { module: name });
    }
    const versions = names.map((name) => this.code.prepare(name, modules[name]!, undefined, options.vsns?.[name]));
    const plans = versions.map((version) => {
      const record = version.module;
      if (typeof version.exports.onLoad === 'function') {
        throw new LoadError(`module '${record.name}' exports onLoad(): not allowed in an atomic load (code:atomic_load's on_load_not_allowed)`, {
          module: record.name,
          reason: 'on_load_not_allowed',
        });
      }
      this.assertNotDraining(record);
      const mode = options.purge === undefined ? this.policyFor(record.name).purge : checkPurge(options.purge, 'load');
      const old = record.old;
      const excess = old.length + this.willBecomeOld(record) - oldSlots(this.policyFor(record.name).retention);
      const dropping = excess > 0 ? old.slice(0, excess) : [];
      const lingering = dropping.flatMap((v) => [...v.processes].map((p) => p.pid));
      return { version, record, dropping, refused: lingering.length > 0 && mode !== 'kill', lingering };
    });
    const refused = plans.filter((p) => p.refused);
    if (refused.length) {
      throw new NotPurged(
        `atomic load refused: old code still running in ${refused.map((p) => `${p.record.name} (${p.lingering.join(', ')})`).join(', ')}; nothing was loaded`,
        { modules: refused.map((p) => p.record.name), lingering: refused.flatMap((p) => p.lingering) },
      );
    }
    // Everything checked: from here nothing can fail, so all become current together.
    const reports = plans.map(({ version, record, dropping }) => {
      const room = this.purgeVersions(record, dropping, 'kill') as PurgeReport;
      const previous = this.code.install(version);
      this.platform.emit({ type: 'module_loaded', node: this.node, module: record.name, version: version.version });
      if (previous && previous.processes.size === 0 && collectsIdle(this.policyFor(record.name).retention)) this.collect(previous);
      return { ...reportOf(version, previous), purged: room.purged, killed: room.killed } satisfies LoadReport;
    });
    this.scheduler.afterExternalWork();
    return reports;
  }

  /**
   * Erlang's -on_load: a module's `onLoad()` runs before its version becomes current; if it throws
   * or runs past `timeoutMs` (default 5000), the load fails and the previous version stays current.
   */
  private runOnLoad(version: ModuleVersion, timeoutMs = 5_000): void {
    const onLoad = version.exports.onLoad;
    if (typeof onLoad !== 'function') return;
    const started = this.platform.now();
    try {
      onLoad();
    } catch (error) {
      throw new LoadError(
        `onLoad of module '${version.name}' failed: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}; the previous version stays current`,
        { module: version.name, phase: 'on_load' },
      );
    }
    const took = this.platform.now() - started;
    if (took > timeoutMs) {
      throw new LoadError(`onLoad of module '${version.name}' took ${took.toFixed(1)} ms, over its ${timeoutMs} ms limit; the previous version stays current`, {
        module: version.name,
        phase: 'on_load',
      });
    }
  }

  /** Purges every old version of `module`: by default kills what still runs them (`code:purge`). */
  purge(module: string, mode: PurgeMode = 'kill'): PurgeReport | Promise<PurgeReport> {
    const record = this.knownModule(module);
    this.assertNotDraining(record);
    const report = this.purgeVersions(record, record.old, checkPurge(mode, 'purge'));
    return report instanceof Promise ? report.then((r) => this.afterPurge(r)) : this.afterPurge(report);
  }

  /** `code:soft_purge`: removes old code only if no process runs it; otherwise says who does. */
  softPurge(module: string): PurgeReport {
    return this.purge(module, 'soft') as PurgeReport;
  }

  /** Whether the process is executing an old version of `module` (`erlang:check_process_code`). */
  checkProcessCode(pid: Pid, module: string): boolean {
    // A process that is not there runs no old code (as erlang:check_process_code answers false).
    const proc = this.table.get(pid);
    return proc !== undefined && proc.version !== null && proc.version.name === module && proc.version.state === 'old';
  }

  /**
   * The processes executing old code of `module` (or a given version of it). Reads the per-version
   * index: costs O(lingering processes), whatever the size of the process table.
   */
  lingering(module: string, version?: number): Pid[] {
    const record = this.knownModule(module);
    const out: Pid[] = [];
    for (const v of record.versions) {
      if (version === undefined ? v.state !== 'old' : v.version !== version) continue;
      for (const proc of v.processes) out.push(proc.pid);
    }
    return out;
  }

  /** `code:delete`: the current version becomes old; spawns and qualified calls then fail. */
  deleteModule(module: string): PurgeReport {
    const record = this.knownModule(module);
    if (!record.current) throw new BadArgument(`module '${module}' has no current version to delete`);
    this.assertNotDraining(record);
    const room = this.makeRoom(record, this.willBecomeOld(record), 'soft') as PurgeReport;
    if (!room.ok)
      throw new NotPurged(`module '${module}' has old code that processes still run (${room.lingering.join(', ')}): purge it first`, {
        module,
        lingering: room.lingering,
      });
    const deleted = this.code.deleteCurrent(module);
    this.platform.emit({ type: 'module_deleted', node: this.node, module, version: deleted.version });
    if (deleted.processes.size === 0 && collectsIdle(this.policyFor(module).retention)) this.collect(deleted);
    return room;
  }

  /** How many versions a load or delete adds to the old ones: none if the current one is idle and would be collected at once. */
  private willBecomeOld(record: ModuleRecord): number {
    const current = record.current;
    if (!current) return 0;
    return current.processes.size === 0 && collectsIdle(this.policyFor(record.name).retention) ? 0 : 1;
  }

  private knownModule(module: string): ModuleRecord {
    const record = this.code.module(module);
    if (!record || !record.versions.length) throw new UnknownModule(`no module named '${module}' on node '${this.node}'`, { module });
    return record;
  }

  private assertNotDraining(record: ModuleRecord): void {
    if (this.draining.has(record)) throw new Refused(`module '${record.name}' is being drained; try again when the drain ends`, { module: record.name });
  }

  /** Purges the oldest old versions so that `adding` more fit the retention. */
  private makeRoom(record: ModuleRecord, adding: number, mode: PurgeMode): PurgeReport | Promise<PurgeReport> {
    const old = record.old;
    const excess = old.length + adding - oldSlots(this.policyFor(record.name).retention);
    return this.purgeVersions(record, excess > 0 ? old.slice(0, excess) : [], mode);
  }

  private purgeVersions(record: ModuleRecord, versions: ModuleVersion[], mode: PurgeMode): PurgeReport | Promise<PurgeReport> {
    const lingering = versions.flatMap((v) => [...v.processes]);
    const report: PurgeReport = { module: record.name, ok: true, purged: [], killed: [], lingering: [] };
    if (lingering.length === 0 || mode === 'kill') {
      for (const proc of lingering) {
        report.killed.push(proc.pid);
        this.platform.emit({ type: 'process_purged', node: this.node, pid: proc.pid, module: record.name, version: proc.version!.version });
        this.signals.terminate(proc, 'killed');
      }
      this.signals.drain();
      for (const v of versions) this.removeVersion(v, report);
      return report;
    }
    if (mode === 'soft') return { ...report, ok: false, lingering: lingering.map((p) => p.pid) };
    return this.drainVersions(record, versions, mode);
  }

  /** Waits for processes to leave `versions` (none may enter), up to the deadline. */
  private drainVersions(record: ModuleRecord, versions: ModuleVersion[], mode: { drain: number; then: 'kill' | 'refuse' }): Promise<PurgeReport> {
    for (const v of versions) v.draining = true;
    this.platform.emit({ type: 'drain_started', node: this.node, module: record.name, versions: versions.map((v) => v.version), deadlineMs: mode.drain });
    return new Promise<PurgeReport>((resolve) => {
      const finish = (timedOut: boolean): void => {
        if (!this.draining.has(record)) return;
        this.draining.delete(record);
        entry.cancel();
        for (const v of versions) v.draining = false;
        const still = versions.some((v) => v.processes.size > 0);
        resolve(this.purgeVersions(record, versions, timedOut && still && mode.then === 'kill' ? 'kill' : 'soft') as PurgeReport);
        this.scheduler.afterExternalWork();
      };
      const entry = this.scheduler.after(mode.drain, () => finish(true));
      this.draining.set(record, () => {
        if (versions.every((v) => v.processes.size === 0)) finish(false);
      });
    });
  }

  private removeVersion(version: ModuleVersion, report: PurgeReport): void {
    if (version.state === 'current') return;
    this.code.remove(version);
    report.purged.push(version.version);
    this.platform.emit({ type: 'module_purged', node: this.node, module: version.name, version: version.version });
  }

  /** An old version nothing runs any more, under a retention that lets such versions go. */
  private collect(version: ModuleVersion): void {
    this.code.remove(version);
    this.platform.emit({ type: 'module_purged', node: this.node, module: version.name, version: version.version });
  }

  private afterPurge(report: PurgeReport): PurgeReport {
    this.scheduler.afterExternalWork();
    return report;
  }

  /** Keeps the per-version process index exact as a process moves between versions. */
  moveTo(proc: Process, version: ModuleVersion | null): void {
    const from = proc.version;
    if (from === version) return;
    if (from) {
      from.processes.delete(proc);
      if (from.state === 'old' && from.processes.size === 0) this.versionEmptied(from);
    }
    proc.version = version;
    if (version) version.processes.add(proc);
  }

  /** An old version nothing executes any more: a drain may be done, a retention may collect it. */
  private versionEmptied(version: ModuleVersion): void {
    const drainCheck = this.draining.get(version.module);
    if (drainCheck) return drainCheck();
    if (collectsIdle(this.policyFor(version.name).retention)) this.collect(version);
  }
}
