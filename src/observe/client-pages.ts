/**
 * The browser half's pages, served as /assets/pages.js: nodes, processes (sorted, filtered and
 * paged by the server), one process, events. The code and upgrade pages are in client-code.ts.
 * A page is `(container, params, shared) => ({ refresh?, onEvent? })`. No backticks or `${` inside.
 */
export const PAGES_JS = String.raw`
import { h, mount, api, act, num, bytes, inline, pidLink, since, confirmAction, notice } from './view.js';
import { codePage, upgradePage } from './code.js';

function limitsText(limits) {
  const parts = [];
  if (limits.memoryMb) parts.push(limits.memoryMb + ' MiB');
  if (limits.cpuMsPerSlice) parts.push(limits.cpuMsPerSlice + ' ms/slice');
  if (limits.mailbox) parts.push('mailbox ' + limits.mailbox.max + ' (' + limits.mailbox.overflow + ')');
  if (limits.maxMessageBytes) parts.push('msg ' + bytes(limits.maxMessageBytes));
  return parts.join(', ') || 'none';
}

function nodesPage(root) {
  const body = h('tbody');
  mount(root, h('h2', null, 'Nodes'),
    h('table', { id: 'nodes' },
      h('thead', null, h('tr', null, ['node', 'kind', 'status', 'restarts', 'processes', 'queued msgs', 'reductions/s', 'memory', 'crashes/s', 'limits', ''].map((t) => h('th', null, t)))),
      body));
  return {
    async refresh() {
      const nodes = await api('/api/nodes');
      mount(body, nodes.map((n) => h('tr', { data: { node: n.name }, class: 'status-' + n.status },
        h('td', null, h('a', { href: '#/processes?node=' + n.name }, n.name)), h('td', null, n.kind), h('td', { class: 'status' }, n.status),
        h('td', { class: 'n' }, n.restarts), h('td', { class: 'n processes' }, num(n.processes)), h('td', { class: 'n' }, num(n.mailbox)),
        h('td', { class: 'n' }, n.reductionsPerSec === null ? '–' : num(n.reductionsPerSec)), h('td', { class: 'n' }, n.memory === null ? '–' : bytes(n.memory)),
        h('td', { class: 'n' }, num(n.exitsPerSec)), h('td', null, limitsText(n.limits)),
        h('td', null, h('button', { class: 'danger restart', onclick: async () => {
          if (!(await confirmAction('Restart node ' + n.name + '?', 'Its thread ends and a new incarnation starts with its release; its processes end (links and monitors fire with noconnection).', 'Restart'))) return;
          try { const r = await act({ action: 'restart', node: n.name }); notice('restarted ' + r.node + ' (creation ' + r.creation + ')'); } catch (e) { notice(e.message, 'error'); }
        } }, 'Restart')))));
    },
  };
}

const COLUMNS = [['pid', 'pid'], ['node', 'node'], ['name', 'name'], ['status', 'status'], ['mailbox', 'mailbox'], ['reductions', 'reductions'], ['memory', 'memory'], ['initial', 'initial / current'], ['module', 'code']];

function processesPage(root, params) {
  const state = { node: params.node || '', filter: params.filter || '', sort: params.sort || 'pid', desc: params.desc === '1', offset: 0, limit: 50 };
  const body = h('tbody');
  const head = h('tr');
  const info = h('span', { class: 'info' });
  const nodeSelect = h('select', { onchange: () => { state.node = nodeSelect.value; state.offset = 0; page.refresh(); } }, h('option', { value: '' }, 'all nodes'));
  let typing;
  const filter = h('input', { type: 'search', placeholder: 'filter: pid, name, status, module…', value: state.filter, oninput: () => {
    clearTimeout(typing);
    typing = setTimeout(() => { state.filter = filter.value; state.offset = 0; page.refresh(); }, 200);
  } });
  const prev = h('button', { class: 'prev', onclick: () => { state.offset = Math.max(0, state.offset - state.limit); page.refresh(); } }, '‹ prev');
  const next = h('button', { class: 'next', onclick: () => { state.offset += state.limit; page.refresh(); } }, 'next ›');
  mount(root, h('h2', null, 'Processes'), h('div', { class: 'controls' }, nodeSelect, filter, prev, next, info),
    h('table', { id: 'processes' }, h('thead', null, head), body));
  const renderHead = () => mount(head, COLUMNS.map(([key, label]) => h('th', { class: 'sortable' + (state.sort === key ? ' sorted' : ''), data: { sort: key }, onclick: () => {
    if (state.sort === key) state.desc = !state.desc; else { state.sort = key; state.desc = ['mailbox', 'reductions', 'memory'].includes(key); }
    state.offset = 0;
    page.refresh();
  } }, label + (state.sort === key ? (state.desc ? ' ▼' : ' ▲') : ''))));
  let nodesKnown = false;
  const page = {
    async refresh() {
      if (!nodesKnown) {
        nodesKnown = true;
        const nodes = await api('/api/nodes');
        for (const n of nodes) nodeSelect.append(h('option', { value: n.name, selected: n.name === state.node }, n.name));
      }
      const p = await api('/api/processes', { node: state.node, filter: state.filter, sort: state.sort, desc: state.desc ? 1 : 0, offset: state.offset, limit: state.limit });
      if (p.offset >= p.matched && p.matched > 0) { state.offset = Math.max(0, p.matched - state.limit); return page.refresh(); }
      renderHead();
      prev.disabled = state.offset === 0;
      next.disabled = state.offset + state.limit >= p.matched;
      info.textContent = p.matched ? (p.offset + 1) + '–' + (p.offset + p.rows.length) + ' of ' + num(p.matched) + (p.matched !== p.total ? ' matching (' + num(p.total) + ' in all)' : '') : 'none of ' + num(p.total);
      info.dataset.matched = p.matched;
      mount(body, p.rows.map((r) => h('tr', { data: { pid: r.pid }, class: r.versions.some((v) => v.state === 'old') ? 'lingering' : '' },
        h('td', null, pidLink(r.pid)), h('td', null, r.node), h('td', null, r.name || ''), h('td', null, r.status),
        h('td', { class: 'n' }, num(r.mailbox)), h('td', { class: 'n' }, r.reductions === undefined ? '–' : num(r.reductions)), h('td', { class: 'n' }, r.memory === undefined ? '–' : bytes(r.memory)),
        h('td', null, r.currentFunction ? r.currentFunction : r.initial),
        h('td', null, r.versions.map((v) => v.module + ' v' + v.version + (v.state === 'old' ? ' (old)' : '')).join(', ')))));
    },
  };
  return page;
}

function processPage(root, params) {
  const pid = params.pid;
  const body = h('div');
  const target = h('select', { class: 'target' });
  const migrate = h('button', { class: 'migrate', onclick: async () => {
    if (!target.value) return;
    if (!(await confirmAction('Migrate ' + pid + ' to ' + target.value + '?', 'The process is suspended at a safe point, its state converted by the target\'s version and resumed there under the same pid.', 'Migrate'))) return;
    try { const r = await act({ action: 'migrate', pid, node: target.value }); notice('migrated ' + r.pid + ' from ' + r.from + ' to ' + r.to); } catch (e) { notice(e.message, 'error'); }
    page.refresh();
  } }, 'Migrate');
  mount(root, h('h2', null, 'Process ', h('span', { class: 'pid' }, pid)), h('div', { class: 'controls' }, 'move to ', target, migrate), body);
  let nodesKnown = false;
  const list = (pids) => (pids && pids.length ? pids.map((p) => [typeof p === 'string' && p.startsWith('<') ? pidLink(p) : inline(p), ' ']) : '–');
  const page = {
    async refresh() {
      const d = await api('/api/process', { pid });
      if (!nodesKnown) {
        nodesKnown = true;
        for (const n of await api('/api/nodes')) if (n.status === 'running') target.append(h('option', { value: n.name }, n.name));
      }
      if (!d) return mount(body, h('p', { class: 'gone' }, pid + ' is not running (it ended, or its node is down).'));
      for (const o of target.options) o.disabled = o.value === d.node;
      if (target.value === d.node) { const other = [...target.options].find((o) => !o.disabled); if (other) target.value = other.value; }
      const i = d.info;
      const row = (k, v) => h('tr', null, h('th', null, k), h('td', { data: { field: k } }, v));
      mount(body, h('table', { class: 'kv' },
        row('node', d.node), row('status', i.status), row('name', i.name || '–'), row('mailbox', num(i.mailbox)),
        row('initial call', i.initial), row('current function', i.currentFunction || '–'),
        row('reductions', i.reductions === undefined ? '–' : num(i.reductions)), row('memory', i.memory === undefined ? '–' : bytes(i.memory)),
        row('code', i.versions.map((v) => v.module + ' v' + v.version + ' (' + v.state + ')').join(', ') || '–'),
        row('links', list(i.links)), row('monitors', list(i.monitors)), row('monitored by', list(i.monitoredBy)), row('trap exit', String(i.trapExit)),
        row('behaviour', i.behaviour ? i.behaviour.kind + ' ' + i.behaviour.module + ' (vsn ' + inline(i.behaviour.vsn) + ')' : '–'),
        row('location', 'home ' + d.location.home + ', ' + d.location.moves + ' move(s)' + (d.location.path.length ? ' via ' + d.location.path.join(' → ') : ''))),
        i.behaviour ? [h('h3', null, 'State (getState)'), h('pre', { class: 'state' }, d.stateError ? 'cannot read: ' + d.stateError : JSON.stringify(d.state, null, 2))] : null);
    },
  };
  return page;
}

function eventsPage(root, params, shared) {
  const list = h('ol', { id: 'events', reversed: true });
  let paused = false;
  const filter = h('input', { type: 'search', placeholder: 'filter: type, node, pid, text…', value: params.filter || '', oninput: () => draw() });
  const pause = h('button', { onclick: () => { paused = !paused; pause.textContent = paused ? 'resume' : 'pause'; draw(); } }, 'pause');
  mount(root, h('h2', null, 'Events'), h('div', { class: 'controls' }, filter, pause), list);
  const draw = () => {
    if (paused) return;
    const words = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
    const shown = [];
    for (let i = shared.events.length - 1; i >= 0 && shown.length < 300; i--) {
      const r = shared.events[i];
      const text = JSON.stringify(r.event).toLowerCase();
      if (words.every((w) => text.includes(w))) shown.push(r);
    }
    mount(list, shown.map((r) => {
      const { type, node, ...rest } = r.event;
      return h('li', { class: 'ev-' + type, data: { type } }, h('time', null, since(r.at)), ' ', h('b', null, type), ' ', node ? h('span', { class: 'node' }, node) : '', ' ', inline(rest));
    }));
  };
  draw();
  return { onEvent: draw };
}

export const PAGES = { nodes: nodesPage, processes: processesPage, process: processPage, code: codePage, events: eventsPage, upgrade: upgradePage };
`;
