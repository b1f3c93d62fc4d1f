/**
 * The browser half's code pages, served as /assets/code.js: each module's versions per node
 * (current / old, process counts, lingering processes highlighted) with purge and soft purge, and
 * the upgrade page (a plan, its dry run, then apply). No backticks or `${` inside.
 */
export const CODE_JS = String.raw`
import { h, mount, api, act, num, pidLink, confirmAction, notice } from './view.js';

export function codePage(root) {
  const body = h('tbody');
  mount(root, h('h2', null, 'Code'),
    h('p', { class: 'hint' }, 'Each module\'s versions on each node. Old versions that processes still run are lingering: purge kills those processes, soft purge refuses while they run.'),
    h('table', { id: 'code' }, h('thead', null, h('tr', null, ['module', 'node', 'versions', 'lingering processes', 'policy', ''].map((t) => h('th', null, t)))), body));
  const purge = async (m, mode) => {
    const soft = mode === 'soft';
    const what = m.lingering.length ? m.lingering.length + ' process(es) still run old code of ' + m.name : 'no process runs old code of ' + m.name;
    if (!(await confirmAction((soft ? 'Soft purge ' : 'Purge ') + m.name + ' on ' + m.node + '?', what + (soft ? '; a soft purge is refused while any does.' : '; a purge kills them.'), soft ? 'Soft purge' : 'Purge'))) return;
    try {
      const r = await act({ action: soft ? 'soft-purge' : 'purge', node: m.node, module: m.name });
      notice(r.ok ? 'purged ' + m.name + ' [' + r.purged.map((v) => 'v' + v).join(', ') + '] on ' + m.node + (r.killed.length ? ', killed ' + r.killed.join(' ') : '') : 'refused: still lingering ' + r.lingering.join(' '), r.ok ? 'ok' : 'error');
    } catch (e) { notice(e.message, 'error'); }
    page.refresh();
  };
  const page = {
    async refresh() {
      const rows = await api('/api/code');
      mount(body, rows.map((m) => {
        const lingers = m.versions.some((v) => v.state === 'old' && v.processes > 0);
        const hasOld = m.versions.some((v) => v.state === 'old');
        return h('tr', { data: { module: m.name, node: m.node }, class: lingers ? 'lingering' : '' },
          h('td', null, h('b', null, m.name)), h('td', null, m.node),
          h('td', null, m.versions.slice().reverse().map((v) => h('span', { class: 'version ' + v.state + (v.state === 'old' && v.processes > 0 ? ' lingering' : '') + (v.draining ? ' draining' : ''), data: { version: v.version, state: v.state } },
            'v' + v.version + ' ' + v.state + ' · ' + num(v.processes) + ' proc'))),
          h('td', { class: 'pids' }, m.lingering.length ? m.lingering.map((p) => [pidLink(p), ' ']) : '–'),
          h('td', null, m.policy ? m.policy.retention.kind + (m.policy.retention.depth ? ' ' + m.policy.retention.depth : '') + ' / ' + (typeof m.policy.purge === 'object' ? 'drain ' + m.policy.purge.drain + ' ms' : String(m.policy.purge)) : ''),
          h('td', null, hasOld ? [h('button', { class: 'soft-purge', onclick: () => purge(m, 'soft') }, 'Soft purge'), ' ', h('button', { class: 'danger purge', onclick: () => purge(m, 'kill') }, 'Purge')] : ''));
      }));
    },
  };
  return page;
}

const EXAMPLE = '{\n  "modules": [{ "module": "counter", "source": { "path": "/absolute/path/v2/counter.ts" } }],\n  "nodes": "*"\n}';

export function upgradePage(root) {
  const plan = h('textarea', { id: 'plan', rows: 10, spellcheck: false, value: sessionStorage.getItem('subnode.plan') || EXAMPLE });
  const report = h('div', { id: 'report' });
  let dryRunOf = null;
  const apply = h('button', { class: 'danger apply', disabled: true, onclick: async () => {
    if (plan.value !== dryRunOf) return;
    if (!(await confirmAction('Apply this upgrade plan?', 'Each node is upgraded as a transaction, the canary first; a failed node rolls back.', 'Apply'))) return;
    try { show(await act({ action: 'upgrade', plan: JSON.parse(plan.value), dryRun: false }), false); } catch (e) { notice(e.message, 'error'); }
  } }, 'Apply');
  const dry = h('button', { class: 'dry-run', onclick: async () => {
    let parsed;
    try { parsed = JSON.parse(plan.value); } catch (e) { return notice('the plan is not JSON: ' + e.message, 'error'); }
    sessionStorage.setItem('subnode.plan', plan.value);
    try {
      show(await act({ action: 'upgrade', plan: parsed, dryRun: true }), true);
      dryRunOf = plan.value;
      apply.disabled = false;
    } catch (e) { notice(e.message, 'error'); }
  } }, 'Dry run');
  plan.addEventListener('input', () => { apply.disabled = plan.value !== dryRunOf; });
  const show = (r, dryRun) => {
    notice((dryRun ? 'dry run: ' : 'upgrade: ') + (r.ok ? 'ok' : 'not ok'), r.ok ? 'ok' : 'error');
    mount(report, h('h3', null, dryRun ? 'Dry run' : 'Result'), h('table', { class: 'report' },
      h('thead', null, h('tr', null, h('th', null, 'node'), h('th', null, 'status'), h('th', null, 'steps / details'))),
      h('tbody', null, (r.nodes || []).map((n) => h('tr', { data: { node: n.node }, class: 'status-' + n.status }, h('td', null, n.node), h('td', null, n.status),
        h('td', null, n.steps ? h('ol', null, n.steps.map((s) => h('li', null, s))) : h('pre', null, n.error ? n.error.message : n.reason || JSON.stringify(n, null, 1))))))));
  };
  mount(root, h('h2', null, 'Upgrade'),
    h('p', { class: 'hint' }, 'An upgrade plan as JSON (sources as { "path": ... } on the machine the system runs on, or the source text). Apply is enabled after a dry run of the same text.'),
    plan, h('div', { class: 'controls' }, dry, apply), report);
  return {};
}
`;
