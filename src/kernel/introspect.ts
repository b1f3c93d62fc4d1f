/**
 * What the host sees of a node: its modules with their versions (vsn, state, processes in each)
 * and its processes (`ProcessInfo`), built from the kernel's records.
 */
import type { Behaviour } from './behaviours.js';
import type { CodeServer } from './code-server.js';
import type { CodePolicy } from './policy.js';
import type { Process } from './proc.js';
import { supervisorInfo, type SupState } from './supervisor-state.js';
import type { SysOps } from './sys.js';
import type { ModuleInfo, ProcessInfo } from './types.js';

export function moduleInfos(code: CodeServer, sys: SysOps, policyFor: (module: string) => CodePolicy): ModuleInfo[] {
  const out: ModuleInfo[] = [];
  for (const record of code.all()) {
    if (!record.versions.length) continue;
    out.push({
      name: record.name,
      // A behaviour process runs its callback module's current version through the kernel's loop: counted there.
      versions: record.versions.map((v) => ({
        version: v.version,
        vsn: v.vsn,
        state: v.state,
        processes: v.processes.size + (v.state === 'current' ? sys.usersOf(record.name, v).length : 0),
        loadedAt: v.loadedAt,
        draining: v.draining,
      })),
      policy: policyFor(record.name),
    });
  }
  // Packages and builtins from the host: listed, never versioned.
  for (const name of code.nativeNames()) out.push({ name, versions: [], policy: policyFor(name), native: true });
  return out;
}

export function processInfoOf(p: Process): ProcessInfo {
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
    behaviour: p.behaviour ? behaviourInfo(p.behaviour) : undefined,
    supervisor: p.behaviour?.kind === 'supervisor' ? supervisorInfo(p.behaviour.state as SupState) : undefined,
    migration: p.moves ? { moves: p.moves, cameFrom: p.cameFrom! } : undefined,
  };
}

function behaviourInfo(b: Behaviour): NonNullable<ProcessInfo['behaviour']> {
  const durable = b.durable ? { durable: { key: b.durable.key, checkpoint: b.durable.checkpoint } } : {};
  return { kind: b.kind, module: b.module, stack: [...b.stack], vsn: b.stateVsn, ...durable };
}
