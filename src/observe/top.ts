/**
 * `subnode top`: a terminal view of a running system that refreshes in place, like observer_cli —
 * nodes, the top processes by mailbox, reductions or memory, recent events. Keys: q quits (exit
 * 0), Ctrl-C quits (exit 130, as a SIGINT would), m / r / M sort by mailbox / reductions / memory.
 * The screen is the terminal's alternate buffer, restored on the way out however it ends.
 */
import { describeEvent } from '../cli/format.js';
import type { EventRecord } from '../wire/cli.js';
import type { ObserveApi } from './api.js';
import type { NodeStats, ProcessPage, SortKey } from './model.js';

export type TopSort = Extract<SortKey, 'mailbox' | 'reductions' | 'memory'>;

export interface TopOptions {
  intervalMs: number;
  sort: TopSort;
  input: NodeJS.ReadStream;
  output: NodeJS.WriteStream;
}

const KEYS: Record<string, TopSort> = { m: 'mailbox', r: 'reductions', M: 'memory' };

export interface Frame {
  nodes: NodeStats[];
  top: ProcessPage;
  events: EventRecord[];
}

const fmt = (n: number | null | undefined): string =>
  n === null || n === undefined ? '-' : Number.isInteger(n) || Math.abs(n) >= 100 ? String(Math.round(n)) : n.toFixed(1);
const mem = (n: number | null | undefined): string =>
  n === null || n === undefined ? '-' : n < 1024 ? `${n} B` : n < 1024 ** 2 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1024 ** 2).toFixed(1)} MiB`;

function columns(rows: string[][], width: number): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .slice(0, width),
  );
}

/** The screen's lines for one frame (pure: tested without a terminal). */
export function renderTop(frame: Frame, where: string, sort: TopSort, width: number, height: number): string[] {
  const time = new Date().toLocaleTimeString('en-GB', { hour12: false });
  const lines = [`subnode top — ${where} — ${time}   sort: ${sort}   keys: m mailbox, r reductions, M memory, q quit`.slice(0, width), ''];
  lines.push(
    ...columns(
      [
        ['NODE', 'KIND', 'STATUS', 'RESTARTS', 'PROCS', 'QUEUED', 'REDS/S', 'MEMORY', 'CRASH/S'],
        ...frame.nodes.map((n) => [
          n.name,
          n.kind,
          n.status,
          String(n.restarts),
          fmt(n.processes),
          fmt(n.mailbox),
          fmt(n.reductionsPerSec),
          mem(n.memory),
          fmt(n.exitsPerSec),
        ]),
      ],
      width,
    ),
  );
  lines.push('');
  const eventRows = Math.min(frame.events.length, Math.max(3, Math.floor((height - lines.length) / 4)));
  const room = Math.max(1, height - lines.length - eventRows - 4);
  const procs = frame.top.rows.slice(0, room) as (ProcessPage['rows'][number] & { reductions?: number; memory?: number; currentFunction?: string })[];
  lines.push(`processes: ${frame.top.total}, top ${procs.length} by ${sort}`);
  lines.push(
    ...columns(
      [
        ['PID', 'NODE', 'NAME', 'STATUS', 'MAILBOX', 'REDS', 'MEMORY', 'FUNCTION'],
        ...procs.map((p) => [p.pid, p.node, p.name ?? '-', p.status, String(p.mailbox), fmt(p.reductions), mem(p.memory), p.currentFunction ?? p.initial]),
      ],
      width,
    ),
  );
  lines.push('', 'recent events');
  for (const r of frame.events.slice(-eventRows).reverse()) {
    const { node, text } = describeEvent(r.event);
    lines.push(`${r.at.slice(11, 23)}  ${node.padEnd(8)}  ${text}`.slice(0, width));
  }
  return lines.slice(0, height);
}

/** Runs the view until q (0) or Ctrl-C (130), or until the system goes away (1). */
export async function runTop(api: ObserveApi, options: TopOptions, closed: Promise<unknown>): Promise<number> {
  const { input, output } = options;
  let sort = options.sort;
  const events: EventRecord[] = [];
  const unfollow = await api.follow((r) => {
    events.push(r);
    if (events.length > 100) events.shift();
  });
  const write = (text: string) => {
    try {
      output.write(text);
    } catch {
      /* closed */
    }
  };
  const restore = () => write('\x1b[?25h\x1b[?1049l');
  process.once('exit', restore);
  write('\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J');
  const raw = Boolean(input.isTTY);
  if (raw) input.setRawMode(true);
  input.resume();

  let drawing = false;
  const draw = async () => {
    if (drawing) return;
    drawing = true;
    try {
      const [nodes, top] = await Promise.all([api.nodes(), api.processes({ sort, desc: true, limit: 200 })]);
      const lines = renderTop({ nodes, top, events }, api.describe, sort, output.columns || 120, output.rows || 40);
      write(`\x1b[H${lines.map((l) => `${l}\x1b[K`).join('\r\n')}\x1b[J`);
    } catch (error) {
      write(`\x1b[H\x1b[2J${(error as Error).message}`);
    } finally {
      drawing = false;
    }
  };

  const code = await new Promise<number>((done) => {
    const timer = setInterval(() => void draw(), options.intervalMs);
    const onKey = (data: Buffer | string) => {
      for (const ch of String(data)) {
        if (ch === 'q' || ch === 'Q') return finish(0);
        if (ch === '\x03') return finish(130);
        if (KEYS[ch]) {
          sort = KEYS[ch];
          void draw();
        }
      }
    };
    const finish = (c: number) => {
      clearInterval(timer);
      input.off('data', onKey);
      done(c);
    };
    input.on('data', onKey);
    void closed.then(() => finish(1));
    void draw();
  });
  if (raw) input.setRawMode(false);
  input.pause();
  unfollow();
  restore();
  process.off('exit', restore);
  return code;
}
