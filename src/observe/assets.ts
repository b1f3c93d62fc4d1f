/**
 * The dashboard's page, style and scripts, served from the package (no CDN, nothing fetched at
 * run time).
 *
 * Why plain ES modules and a 60-line `h()` helper rather than a framework: the dashboard is
 * tables, a few forms and a live stream. The views are computed on the server (a page of 50 rows,
 * never 100,000), so the browser only rebuilds small tables once a second, which the DOM does
 * in well under a millisecond; a virtual DOM would buy nothing. No build step, no dependency to
 * vendor or audit, ~25 KB in all, and the browser runs exactly the text in these files. The
 * scripts are strings here (not .js files beside this one) so that they are compiled into dist
 * with the rest of the package and need no file lookup at run time. Controls that keep focus
 * (filters, selects) are made once per page; only table bodies are re-rendered.
 */
import { APP_JS } from './client-app.js';
import { CODE_JS } from './client-code.js';
import { PAGES_JS } from './client-pages.js';
import { VIEW_JS } from './client-view.js';

const CSS = `
:root { --bg: #fbfbfa; --fg: #1d1f21; --muted: #6b7075; --line: #e2e3e0; --accent: #2f6fb0; --warn: #b8860b; --bad: #b03a2e; --ok: #2e7d32; --linger: #fff3c4; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; background: var(--bg); color: var(--fg); }
header { display: flex; gap: 1.5em; align-items: baseline; padding: .6em 1.2em; background: #1d2733; color: #eef; }
header h1 { font-size: 1.05em; margin: 0; letter-spacing: .02em; }
header nav a { color: #cfe0f5; text-decoration: none; margin-right: 1em; padding-bottom: 2px; }
header nav a.active { color: #fff; border-bottom: 2px solid #8fbef0; }
header .where { color: #9ab; font-size: .85em; margin-left: auto; }
main { padding: .4em 1.2em 6em; }
h2 { font-size: 1.2em; margin: .6em 0; }
table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid var(--line); }
th, td { text-align: left; padding: .25em .6em; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #f1f2ef; font-weight: 600; white-space: nowrap; }
th.sortable { cursor: pointer; user-select: none; }
th.sorted { color: var(--accent); }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
table.kv { width: auto; min-width: 40em; }
table.kv th { width: 11em; }
tr.lingering td, span.version.lingering { background: var(--linger); }
span.version { display: inline-block; margin: 0 .4em .2em 0; padding: 0 .45em; border-radius: 3px; border: 1px solid var(--line); font-size: .9em; }
span.version.current { border-color: var(--ok); color: var(--ok); }
span.version.old { border-color: var(--warn); color: #7a5a00; }
span.version.lingering { border-color: var(--warn); font-weight: 600; }
tr.status-down td.status, tr.status-failed td.status, tr.status-restarting td.status { color: var(--bad); font-weight: 600; }
.controls { display: flex; gap: .5em; align-items: center; margin: .4em 0 .6em; flex-wrap: wrap; }
.controls .info { color: var(--muted); }
input[type=search] { width: 24em; padding: .3em .5em; border: 1px solid #c9cbc6; border-radius: 3px; }
button, select { padding: .25em .7em; border: 1px solid #b8bbb4; border-radius: 3px; background: #fff; cursor: pointer; font: inherit; }
button:disabled { opacity: .45; cursor: default; }
button.danger { border-color: var(--bad); color: var(--bad); }
button.danger.ok { background: var(--bad); color: #fff; }
a.pid, span.pid { font-family: ui-monospace, monospace; }
pre { margin: 0; white-space: pre-wrap; font-size: .9em; }
pre.state { background: #fff; border: 1px solid var(--line); padding: .6em; max-height: 30em; overflow: auto; }
textarea { width: 100%; font: 13px ui-monospace, monospace; }
ol#events { list-style: none; padding: 0; margin: 0; font: 12.5px ui-monospace, monospace; }
ol#events li { padding: .15em .3em; border-bottom: 1px solid var(--line); }
ol#events time { color: var(--muted); }
ol#events .node { color: var(--accent); }
ol#events li.ev-process_exit b, ol#events li.ev-node_down b, ol#events li.ev-node_failed b { color: var(--bad); }
ol#events li.ev-process_migrated b, ol#events li.ev-module_loaded b { color: var(--ok); }
.hint { color: var(--muted); margin: .2em 0 .6em; }
dialog.confirm { border: 1px solid var(--line); border-radius: 6px; padding: 1em 1.4em; max-width: 34em; }
dialog.confirm .buttons { display: flex; justify-content: flex-end; gap: .6em; }
footer { position: fixed; bottom: 0; left: 0; right: 0; background: #f1f2ef; border-top: 1px solid var(--line); padding: .3em 1.2em; font-size: .85em; display: flex; gap: 1em; }
footer #status { color: var(--muted); white-space: nowrap; }
footer #notice.error { color: var(--bad); }
footer #notice.ok { color: var(--ok); }
ul#ops { list-style: none; margin: 0; padding: 0; display: flex; gap: 1em; flex-wrap: wrap; }
ul#ops li.running { color: var(--accent); }
ul#ops li.failed { color: var(--bad); }
ul#ops li.done { color: var(--ok); }
`;

export function indexHtml(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>subnode observer</title>
<link rel="stylesheet" href="/assets/style.css">
<script type="module" src="/assets/app.js"></script>
</head>
<body>
<header><h1>subnode observer</h1>
<nav><a href="#/nodes">Nodes</a><a href="#/processes">Processes</a><a href="#/code">Code</a><a href="#/events">Events</a><a href="#/upgrade">Upgrade</a></nav>
<span class="where" id="where"></span></header>
<main id="main"></main>
<footer><span id="status">connecting…</span><span id="notice"></span><ul id="ops"></ul></footer>
</body>
</html>
`;
}

const js = 'text/javascript; charset=utf-8';
export const ASSETS: Record<string, { type: string; body: string }> = {
  '/assets/style.css': { type: 'text/css; charset=utf-8', body: CSS },
  '/assets/view.js': { type: js, body: VIEW_JS },
  '/assets/app.js': { type: js, body: APP_JS },
  '/assets/pages.js': { type: js, body: PAGES_JS },
  '/assets/code.js': { type: js, body: CODE_JS },
};
