/**
 * What the kernel tells about itself: a process's info and the modules with their versions, as
 * plain copyable data for the host, the observer and `subnode top`.
 */
import { vsnOf } from './behaviours.js';
import type { CodeServer } from './code-server.js';
import type { CodePolicy } from './policy.js';
import type { Process } from './proc.js';
import { supervisorInfo, type SupState } from './supervisor.js';
import type { SysOps } from './sys.js';
import type { ModuleInfo, ProcessInfo } from './types.js';

export function processInfo(p: Process): ProcessInfo {
  return {
    pid: p.pid,
    name: p.name ?? undefined,
    status: p.status,
    mailbox: p.mailbox.length,
    initial: p.initial,
    versions: p.version ? [{ module: p.version.name, version: p.version.version, state: p.version.state }] : [],
    links: p.links ? [...p.links] : [],
    monitors: p.monitors ? [...p.monitors.values()].map(String) : [],
    monitoredBy: p.watchers ? [...p.watchers.values()] : [],
    trapExit: p.trapExit,
    behaviour: p.behaviour ? { kind: p.behaviour.kind, module: p.behaviour.module, stack: [...p.behaviour.stack], vsn: p.behaviour.stateVsn } : undefined,
    supervisor: p.behaviour?.kind === 'supervisor' ? supervisorInfo(p.behaviour.state as SupState) : undefined,
    migration: p.moves ? { moves: p.moves, cameFrom: p.cameFrom! } : undefined,
  };
}

/** Every module with its versions and how many processes run each; natives (packages, builtins) listed, never versioned. */
export function moduleInfos(code: CodeServer, sys: SysOps, policyFor: (module: string) => CodePolicy): ModuleInfo[] {
  const out: ModuleInfo[] = [];
  for (const record of code.all()) {
    if (!record.versions.length) continue;
    out.push({
      name: record.name,
      // A behaviour process runs its callback module's current version through the kernel's loop: counted there.
      versions: record.versions.map((v) => ({
        version: v.version,
        vsn: vsnOf(v),
        state: v.state,
        processes: v.processes.size + (v.state === 'current' ? sys.usersOf(record.name, v).length : 0),
        loadedAt: v.loadedAt,
        draining: v.draining,
      })),
      policy: policyFor(record.name),
    });
  }
  for (const name of code.nativeNames()) out.push({ name, versions: [], policy: policyFor(name), native: true });
  return out;
}
