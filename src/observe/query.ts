/** Filtering and sorting the process table (server side: the browser only ever gets a page). */
import type { ProcessRow } from '../wire/cli.js';

export const SORT_KEYS = ['pid', 'node', 'name', 'status', 'mailbox', 'reductions', 'memory', 'initial', 'module'] as const;
export type SortKey = (typeof SORT_KEYS)[number];

export interface ProcessQuery {
  node?: string;
  /** Words that must all appear in the pid, name, status, initial call, current function or a module name. */
  filter?: string;
  sort?: SortKey;
  desc?: boolean;
  offset?: number;
  limit?: number;
}

type Row = ProcessRow & { reductions?: number; memory?: number; currentFunction?: string };

export function filterRows(rows: ProcessRow[], filter: string | undefined): ProcessRow[] {
  const words = (filter ?? '').toLowerCase().split(/\s+/).filter(Boolean);
  if (!words.length) return rows;
  return rows.filter((p) => {
    const r = p as Row;
    const text =
      `${r.pid} ${r.name ?? ''} ${r.status} ${r.initial} ${r.currentFunction ?? ''} ${r.versions.map((v) => `${v.module} v${v.version} ${v.state}`).join(' ')} ${r.behaviour?.kind ?? ''}`.toLowerCase();
    return words.every((w) => text.includes(w));
  });
}

/** Pid order is numeric (`<a.2>` before `<a.10>`), per node. */
function pidKey(pid: string): [string, number, number] {
  const m = /^<([^.>]+)\.(\d+)(?:\.(\d+))?>$/.exec(pid);
  return m ? [m[1]!, Number(m[3] ?? 0), Number(m[2])] : [pid, 0, 0];
}

export function sortRows(rows: ProcessRow[], sort: SortKey, desc: boolean): ProcessRow[] {
  const dir = desc ? -1 : 1;
  // Decorate once: parsing pids inside the comparator would cost n log n regex runs.
  type Item = { r: Row; k: [string, number, number] };
  const byPid = (a: Item, b: Item): number => (a.k[0] < b.k[0] ? -1 : a.k[0] > b.k[0] ? 1 : a.k[1] - b.k[1] || a.k[2] - b.k[2]);
  const num = (get: (r: Row) => number | undefined) => (a: Item, b: Item) => ((get(a.r) ?? -1) - (get(b.r) ?? -1)) * dir || byPid(a, b);
  const str = (get: (r: Row) => string) => (a: Item, b: Item) => (get(a.r) < get(b.r) ? -dir : get(a.r) > get(b.r) ? dir : byPid(a, b));
  const compare: Record<SortKey, (a: Item, b: Item) => number> = {
    pid: (a, b) => byPid(a, b) * dir,
    node: str((r) => r.node),
    name: str((r) => r.name ?? '\uffff'),
    status: str((r) => r.status),
    mailbox: num((r) => r.mailbox),
    reductions: num((r) => r.reductions),
    memory: num((r) => r.memory),
    initial: str((r) => r.initial),
    module: str((r) => r.versions[0]?.module ?? ''),
  };
  const items: Item[] = rows.map((r) => ({ r, k: pidKey(r.pid) }));
  // Nodes list their processes in pid order: that order needs no sort, its reverse a reverse.
  if (sort === 'pid' && items.every((item, i) => i === 0 || byPid(items[i - 1]!, item) <= 0)) return desc ? rows.slice().reverse() : rows;
  items.sort(compare[sort]);
  return items.map((i) => i.r);
}
