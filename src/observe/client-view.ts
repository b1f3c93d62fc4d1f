/**
 * The browser half's rendering helper, served as /assets/view.js: `h(tag, props, ...children)`
 * makes DOM elements, `mount` replaces a container's children, plus formatting, the JSON API
 * and a confirmation dialog. Plain ES2020 module text, no build step (see assets.ts for why); it
 * is a string here so that it ships inside the compiled package. No backticks or `${` inside.
 */
export const VIEW_JS = String.raw`
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2).toLowerCase(), v);
    else if (k === 'class') el.className = v;
    else if (k === 'data') for (const [dk, dv] of Object.entries(v)) el.dataset[dk] = String(dv);
    else if (k === 'value' || k === 'checked' || k === 'disabled' || k === 'selected') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

export function mount(target, ...children) {
  target.replaceChildren();
  append(target, children);
}

export const token = new URLSearchParams(location.search).get('token') || '';

export async function api(path, params) {
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) if (v !== undefined && v !== null && v !== '') query.set(k, String(v));
  const qs = query.toString();
  const res = await fetch(path + (qs ? '?' + qs : ''), { headers: { 'x-subnode-token': token } });
  const body = await res.json();
  if (!res.ok) throw new Error(body && body.error ? body.error.message : res.statusText);
  return body;
}

export async function act(body) {
  const res = await fetch('/api/action', { method: 'POST', headers: { 'content-type': 'application/json', 'x-subnode-token': token }, body: JSON.stringify(body) });
  const answer = await res.json();
  if (!res.ok) throw new Error(answer && answer.error ? answer.error.message : res.statusText);
  return answer.result;
}

export function num(n) {
  if (n === null || n === undefined) return '';
  if (typeof n !== 'number') return String(n);
  return Math.abs(n) >= 100 || Number.isInteger(n) ? Math.round(n).toLocaleString('en') : n.toFixed(1);
}

export function bytes(n) {
  if (n === null || n === undefined) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : String(n)) + ' ' + units[i];
}

export function inline(value) {
  try { return typeof value === 'string' ? value : JSON.stringify(value); } catch { return String(value); }
}

export function pidLink(pid) {
  return h('a', { href: '#/process?pid=' + encodeURIComponent(pid), class: 'pid' }, pid);
}

export function since(iso) {
  const d = new Date(iso);
  return d.toLocaleTimeString('en-GB', { hour12: false }) + '.' + String(d.getMilliseconds()).padStart(3, '0');
}

/** Asks before an action; resolves true only on the confirm button. */
export function confirmAction(title, text, confirmLabel) {
  return new Promise((resolve) => {
    const dialog = h('dialog', { class: 'confirm' },
      h('h3', null, title),
      h('p', null, text),
      h('div', { class: 'buttons' },
        h('button', { class: 'cancel', onclick: () => { dialog.close(); resolve(false); } }, 'Cancel'),
        h('button', { class: 'danger ok', onclick: () => { dialog.close(); resolve(true); } }, confirmLabel || 'Confirm')));
    dialog.addEventListener('close', () => { dialog.remove(); resolve(false); });
    document.body.append(dialog);
    dialog.showModal();
  });
}

/** Shows the outcome of an action in the page's notice line. */
export function notice(text, kind) {
  const el = document.getElementById('notice');
  if (!el) return;
  mount(el, text);
  el.className = kind || 'ok';
}
`;
