/**
 * The browser half's shell, served as /assets/app.js: the router (#/page?args), the live stream
 * (Server-Sent Events: system events, refresh ticks, progress of operations) and the operations
 * panel. Each page (client-pages.ts, client-code.ts) renders into #main and may answer `refresh()`
 * on each tick and `onEvent(record)` on each event. No backticks or `${` inside.
 */
export const APP_JS = String.raw`
import { h, mount, since, inline } from './view.js';
import { PAGES } from './pages.js';

const main = document.getElementById('main');
const ops = document.getElementById('ops');
const status = document.getElementById('status');
const events = [];
let current = null;
let refreshing = false;
let lastTick = 0;

function route() {
  const hash = location.hash.slice(2) || 'nodes';
  const [name, query] = hash.split('?');
  const params = Object.fromEntries(new URLSearchParams(query || ''));
  const page = PAGES[name] || PAGES.nodes;
  for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', a.getAttribute('href') === '#/' + (PAGES[name] ? name : 'nodes'));
  mount(main);
  current = page(main, params, { events });
  refresh();
}

async function refresh() {
  if (!current || !current.refresh || refreshing) return;
  refreshing = true;
  const started = performance.now();
  try {
    await current.refresh();
    status.dataset.rendered = String(Date.now());
    status.textContent = 'live · updated ' + new Date().toLocaleTimeString('en-GB', { hour12: false }) + ' in ' + Math.round(performance.now() - started) + ' ms';
  } catch (error) {
    status.textContent = 'error: ' + error.message;
  } finally {
    refreshing = false;
  }
}

const operations = new Map();
function showOperation(id, text, phase) {
  let row = operations.get(id);
  if (!row) {
    row = h('li', { data: { op: id } });
    operations.set(id, row);
    ops.prepend(row);
    while (ops.children.length > 8) ops.lastChild.remove();
  }
  row.className = phase || '';
  mount(row, text);
}

function connect() {
  const stream = new EventSource('/api/stream');
  stream.addEventListener('hello', (e) => {
    const hello = JSON.parse(e.data);
    events.splice(0, events.length, ...hello.recent);
    document.getElementById('where').textContent = hello.describe;
    if (current && current.onEvent) current.onEvent(null);
  });
  stream.addEventListener('system', (e) => {
    const record = JSON.parse(e.data);
    events.push(record);
    if (events.length > 1000) events.splice(0, events.length - 1000);
    if (current && current.onEvent) current.onEvent(record);
    const ev = record.event;
    if (ev.type === 'process_migrated') showOperation('m' + ev.pid + ev.moves, 'migrated ' + ev.pid + ' from ' + ev.from + ' to ' + ev.to + ' (' + since(record.at) + ')', 'done');
    if (ev.type === 'upgrade_node') showOperation('u' + ev.node, 'upgrade on ' + ev.node + ': ' + ev.phase.replace('_', ' '), ev.phase === 'start' ? 'running' : ev.phase === 'upgraded' ? 'done' : 'failed');
  });
  stream.addEventListener('tick', (e) => {
    lastTick = JSON.parse(e.data).at;
    refresh();
  });
  stream.addEventListener('operation', (e) => {
    const op = JSON.parse(e.data);
    const args = Object.entries(op.args || {}).filter(([k]) => k !== 'action' && k !== 'plan').map(([k, v]) => k + '=' + inline(v)).join(' ');
    const label = op.action + (args ? ' ' + args : '');
    showOperation('op' + op.id, label + ': ' + (op.phase === 'start' ? 'running…' : op.phase === 'done' ? 'done' : 'failed: ' + op.message), op.phase === 'start' ? 'running' : op.phase);
    if (op.phase !== 'start') refresh();
  });
  stream.addEventListener('progress', (e) => {
    const p = JSON.parse(e.data);
    const width = 20;
    const filled = p.total ? Math.round((p.done / p.total) * width) : 0;
    showOperation('op' + p.id, p.action + ' [' + '#'.repeat(filled) + '-'.repeat(width - filled) + '] ' + p.done + '/' + p.total + ' ' + p.node + ': ' + p.phase.replace('_', ' '), 'running');
  });
  stream.onerror = () => { status.textContent = 'disconnected; retrying…'; };
}

setInterval(() => { if (lastTick && Date.now() - lastTick > 5000) status.textContent = 'no updates for ' + Math.round((Date.now() - lastTick) / 1000) + ' s'; }, 1000);
window.addEventListener('hashchange', route);
connect();
route();
`;
