/** Output for people: aligned tables and one-line event logs. */
import type { SystemEvent } from '../host/events.js';
import type { ModuleInfo, ProcessInfo } from '../kernel/types.js';
import type { NodeRow } from '../wire/cli.js';

/** Columns padded to their widest cell; the last column is not padded. */
export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => String(c)))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** A value in one line: strings bare, everything else as JSON. */
export function inline(value: unknown): string {
  if (typeof value === 'string') return value;
  try {
    const text = JSON.stringify(value);
    return text === undefined ? String(value) : text;
  } catch {
    return String(value);
  }
}

export function nodesTable(rows: NodeRow[]): string {
  if (!rows.length) return '(no nodes)';
  // In a cluster, which host runs each node.
  const hosts = rows.some((n) => n.host !== undefined);
  return table(
    [...(hosts ? ['HOST'] : []), 'NODE', 'KIND', 'STATUS', 'CREATION', 'PROCESSES', 'MODULES'],
    rows.map((n) => [...(hosts ? [n.host ?? '-'] : []), n.name, n.kind, n.status, n.creation, n.processes ?? '-', n.modules ?? '-']),
  );
}

export function versionsOf(p: ProcessInfo): string {
  if (!p.versions.length) {
    const b = p.behaviour;
    if (!b) return '-';
    return `${b.module} vsn ${inline(b.vsn)} (${b.kind} callbacks${b.durable ? `, durable '${b.durable.key}'` : ''})`;
  }
  return p.versions.map((v) => `${v.module} v${v.version}${v.state === 'current' ? '' : ` (${v.state})`}`).join(', ');
}

export function psTable(rows: (ProcessInfo & { node: string; host?: string })[]): string {
  if (!rows.length) return '(no processes)';
  // In a cluster, which host runs each process (its pid names its home node, not its host).
  const hosts = rows.some((p) => p.host !== undefined);
  return table(
    [...(hosts ? ['HOST'] : []), 'PID', 'NAME', 'STATUS', 'MAILBOX', 'VERSIONS', 'INITIAL'],
    rows.map((p) => [
      ...(hosts ? [p.host ?? '-'] : []),
      p.pid,
      p.name ?? '-',
      p.status,
      p.mailbox,
      versionsOf(p),
      p.migration ? `${p.initial} (migrated from ${p.migration.cameFrom})` : p.initial,
    ]),
  );
}

export function policyText(policy: ModuleInfo['policy']): string {
  const r = policy.retention;
  const retention = r.kind === 'stack' ? `stack(${r.depth})` : r.kind;
  const purge = typeof policy.purge === 'string' ? policy.purge : `drain(${policy.purge.drain}ms, ${policy.purge.then})`;
  return `${retention}/${purge}`;
}

export function modulesTable(rows: (ModuleInfo & { node: string })[]): string {
  if (!rows.length) return '(no modules)';
  const out: (string | number)[][] = [];
  for (const m of rows) {
    const versions = [...m.versions].sort((a, b) => b.version - a.version);
    for (const v of versions) {
      out.push([m.node, m.name, `v${v.version}`, v.draining ? `${v.state} (draining)` : v.state, v.processes, policyText(m.policy)]);
    }
  }
  return table(['NODE', 'MODULE', 'VERSION', 'STATE', 'PROCESSES', 'POLICY'], out);
}

/** Characters shown in one event line at most (texts from a sandbox are capped at the boundary too). */
export const EVENT_TEXT_MAX = 8 * 1024;

// Control characters (C0, DEL, C1), line and paragraph separators, and bidirectional overrides:
// shown escaped, so a text from a node cannot end a line, forge another, or reorder what is shown.
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** A text safe to print on one line: control characters escaped, capped at `max` characters. */
export function safeText(text: string, max = EVENT_TEXT_MAX): string {
  const capped = text.length > max ? `${text.slice(0, max)}… (${text.length - max} more characters)` : text;
  return capped.replace(UNSAFE, (c) => NAMED[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** `2025-01-02T03:04:05.678Z  node   what happened`, for `subnode run` and `events`. */
export function eventLine(at: string, event: SystemEvent, nodeWidth = 8): string {
  const { node, text } = describeEvent(event);
  return `${safeText(at, 64)}  ${safeText(node, 256).padEnd(nodeWidth)}  ${safeText(text)}`;
}

export function describeEvent(e: SystemEvent): { node: string; text: string } {
  const node = 'node' in e && typeof e.node === 'string' ? e.node : 'host';
  const pid = 'pid' in e && e.pid ? `${e.pid} ` : '';
  switch (e.type) {
    case 'node_started':
      return { node, text: `node started (${e.creation ? `creation ${e.creation}` : 'first incarnation'})` };
    case 'node_down':
      return { node, text: `node DOWN (creation ${e.creation}): ${e.reason}` };
    case 'node_restarted':
      return { node, text: `node restarted (creation ${e.creation})` };
    case 'node_failed':
      return { node, text: `node FAILED, not restarted: ${e.reason}` };
    case 'node_stopped':
      return { node, text: 'node stopped' };
    case 'message_dropped':
      return { node, text: `${e.count} message${e.count === 1 ? '' : 's'} dropped (${e.reason.replace('_', ' ')})` };
    case 'global_conflict':
      return { node: 'host', text: `global name '${e.name}' claimed twice: kept ${e.kept}, refused ${e.refused}` };
    case 'upgrade_node':
      return { node, text: `upgrade: ${e.phase === 'start' ? 'starting' : e.phase.replace('_', ' ')}` };
    case 'process_exit':
      return { node, text: `${e.pid} (${e.initial}) exited: ${inline(e.reason)}` };
    case 'module_loaded':
      return { node, text: `loaded ${e.module} v${e.version}` };
    case 'module_purged':
      return { node, text: `purged ${e.module} v${e.version}` };
    case 'module_deleted':
      return { node, text: `deleted ${e.module} v${e.version} (no current version now)` };
    case 'process_purged':
      return { node, text: `${e.pid} killed by the purge of ${e.module} v${e.version}` };
    case 'drain_started':
      return { node, text: `draining ${e.module} ${e.versions.map((v) => `v${v}`).join(', ')} (up to ${e.deadlineMs} ms)` };
    case 'code_changed':
      return { node, text: `${e.pid} ${e.module}: state converted ${inline(e.from)} -> ${inline(e.to)}` };
    case 'upgrade_step':
      return { node, text: `upgrade step ${e.step}: ${e.op}${e.module ? ` ${e.module}` : ''}` };
    case 'upgrade_converted':
      return {
        node,
        text: `upgrade: ${e.count} processes of ${e.modules.join(', ')} converted (${e.mode}${e.mode === 'rolling' ? `, ${e.chunks} chunks` : ''})`,
      };
    case 'upgrade_rollback':
      return { node, text: `upgrade ROLLED BACK at step ${e.step} (${e.op}): ${e.reason}` };
    case 'capability_denied':
      return { node, text: `${pid}denied: ${e.what}` };
    case 'mailbox_overflow':
      return { node, text: `${pid}mailbox overflow: ${e.action === 'killed' ? 'process killed' : `${e.dropped} dropped`}` };
    case 'cpu_limit':
      return { node, text: `${pid}over the CPU limit of ${e.limitMs} ms per slice` };
    case 'log':
      return { node, text: `${pid}${e.level === 'log' ? '' : `[${e.level}] `}${e.text}` };
    case 'global_register':
      return { node, text: `${e.pid} registered globally as '${e.name}'` };
    case 'process_migrated':
      return { node, text: `${e.pid} migrated here from ${e.from} (move ${e.moves})` };
    case 'global_unregister':
      return { node, text: `global name '${e.name}' (${e.pid}) released` };
    case 'node_unresponsive':
      return { node, text: `node UNRESPONSIVE: its code ran ${e.ms} ms without returning; ending it (creation ${e.creation})` };
    case 'release_recorded':
      return { node: 'host', text: `release ${e.release} recorded (${e.steps} step${e.steps === 1 ? '' : 's'}${e.trial ? ', trial' : ''})` };
    case 'release_permanent':
      return { node: 'host', text: `release ${e.release} is permanent` };
    case 'release_reverted':
      return { node: 'host', text: `started on trial release ${e.from}: booted the last permanent release, ${e.to}` };
    case 'release_lost':
      return { node: 'host', text: `release journal: record ${e.seq} lost (${e.reason}${e.detail ? `: ${e.detail}` : ''})` };
    case 'durable_restored':
      return { node, text: `${e.pid} resumed durable state '${e.key}'${sameText(e.from, e.to) ? '' : ` (converted ${inline(e.from)} -> ${inline(e.to)})`}` };
    case 'checkpoint_failed':
      return { node, text: `${pid}checkpoint of durable state '${e.key}' FAILED: ${e.reason}` };
    case 'durable_lost':
      return { node, text: `durable state store: ${e.detail}` };
    default:
      return { node, text: inline(e) };
  }
}

function sameText(a: unknown, b: unknown): boolean {
  return inline(a) === inline(b);
}
