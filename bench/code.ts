/**
 * Hot code benchmarks (issue 3), on the kernel on this thread:
 *
 * 1. lingering(): 10 processes left in old code among N = 10^3 … 10^6, found through the
 *    per-version index, beside the BEAM's method in the same run — a scan of every process with
 *    checkProcessCode. The index must stay flat as N grows.
 * 2. Upgrading N = 10^2, 10^3, 10^4 server processes (suspend / codeChange / resume, one plan
 *    transaction), beside the cold alternative: stopping them and starting new ones with the
 *    converted state.
 * 3. Loading a 50-function module into a thread node (transpile, ship, compile, evaluate), beside
 *    an ES module `import()` of the same code (the way subnode does not load: each version stays
 *    in Node's module map forever); the same load after 2 s idle, beside a warm one (a compiler
 *    that goes cold when idle shows here); and the host's compile step alone, beside
 *    `typescript.transpileModule` (the transpiler subnode used before sucrase).
 */
import ts from 'typescript';
import { System } from '../src/index.js';
import { applyUpgrade } from '../src/kernel/upgrade.js';
import { transpile } from '../src/compiler/transpile.js';
import { compile } from '../src/host/compiler-pool.js';
import type { Pid } from '../src/kernel/pid.js';
import { benchKernel, type BenchKernel } from './local-kernel.js';
import { gc, measure, median, now, row, tick, type Benchmark, type ResultRow } from './lib.js';

const WORKER = (vsn: number) => `
  import { receive, on } from 'subnode';
  import * as w from './w';
  export const vsn = ${vsn};
  export function start(id: number) { return loop(id); }
  export function loop(id: number): unknown {
    return receive(on('switch', () => w.loop(id)), on('noop', () => loop(id)));
  }
`;

const COUNTER = (vsn: number) => `
  export const vsn = ${vsn};
  export function init(n: number) { return ${vsn === 1 ? 'n' : '{ count: n, at: 0 }'}; }
  export function handleCall(_r: unknown, _f: unknown, s: unknown) { return { reply: s, state: s }; }
  export function handleCast(_m: unknown, s: unknown) { return { noreply: s }; }
  ${vsn === 2 ? 'export function codeChange(_old: unknown, n: number) { return { count: n, at: 1 }; }' : ''}
`;

async function settle(k: BenchKernel): Promise<void> {
  for (let i = 0; i < 3; i++) await tick();
  void k;
}

async function lingeringRows(reps: number, scale: number, log: (l: string) => void): Promise<ResultRow[]> {
  const rows: ResultRow[] = [];
  const sizes = [1e3, 1e4, 1e5, 1e6].map((n) => Math.max(100, Math.round(n * Math.min(scale, 1))));
  for (const n of sizes) {
    let k: BenchKernel | null = benchKernel('a');
    k.load('w', WORKER(1));
    const pids: Pid[] = [];
    for (let i = 0; i < n; i++) pids.push(k.kernel.spawn('w', 'start', [i]));
    await settle(k);
    k.load('w', WORKER(2));
    // All but 10 are told to switch: a qualified call moves them to the current version.
    const batch: [0, Pid, string][] = [];
    for (let i = 10; i < n; i++) batch.push([0, pids[i]!, 'switch']);
    for (let i = 0; i < batch.length; i += 50_000) k.kernel.deliver(batch.slice(i, i + 50_000) as never);
    while (k.kernel.lingering('w').length > 10) await tick();
    const index: number[] = [];
    const scan: number[] = [];
    for (let r = -1; r < reps; r++) {
      let t = now();
      let found = 0;
      const rounds = n >= 1e5 ? 1 : 20;
      for (let i = 0; i < rounds; i++) found = k.kernel.lingering('w').length;
      const ti = (now() - t) / rounds;
      t = now();
      let scanned = 0;
      for (let i = 0; i < rounds; i++) scanned = k.kernel.pids().filter((p) => k!.kernel.checkProcessCode(p, 'w')).length;
      const ts = (now() - t) / rounds;
      if (found !== 10 || scanned !== 10) throw new Error(`lingering found ${found}, scan ${scanned}; expected 10`);
      if (r >= 0) {
        index.push(ti * 1000);
        scan.push(ts * 1000);
      }
    }
    const subject = measure(`lingering() via the index, ${n} processes`, index, 'µs');
    const baseline = measure(`scan of all ${n} with checkProcessCode`, scan, 'µs');
    rows.push(row(`lingering('w'): 10 lingering among ${n.toLocaleString('en')}`, subject, baseline));
    log(`  lingering n=${n}: index ${subject.value.toFixed(1)} µs, scan ${baseline.value.toFixed(0)} µs`);
    k = null;
    gc();
  }
  return rows;
}

async function upgradeRows(reps: number, scale: number, log: (l: string) => void): Promise<ResultRow[]> {
  const rows: ResultRow[] = [];
  const v1 = transpile('c', COUNTER(1)).js;
  const v2 = transpile('c', COUNTER(2)).js;
  for (const n of [1e2, 1e3, 1e4].map((x) => Math.max(10, Math.round(x * Math.min(scale, 1))))) {
    const hot: number[] = [];
    const cold: number[] = [];
    for (let r = -1; r < reps; r++) {
      // Hot: one plan transaction on the node.
      let k = benchKernel('a');
      k.kernel.load('c', v1);
      for (let i = 0; i < n; i++) k.kernel.startBehaviour('server', 'c', [i]);
      let t = now();
      const report = await applyUpgrade(k.kernel, [
        { op: 'suspend', modules: ['c'] },
        { op: 'load', module: 'c', js: v2 },
        { op: 'codeChange', module: 'c' },
        { op: 'resume' },
      ]);
      const hotMs = now() - t;
      if (!report.ok || report.upgraded.length !== n) throw new Error(`upgrade of ${n} failed: ${JSON.stringify(report.error)}`);
      // Cold: stop every server and start a new one on v2 with the converted state.
      k = benchKernel('a');
      k.kernel.load('c', v1);
      const pids: Pid[] = [];
      for (let i = 0; i < n; i++) pids.push(k.kernel.startBehaviour('server', 'c', [i]));
      t = now();
      const states = pids.map((p) => k.kernel.getState(p) as number);
      for (const p of pids) k.kernel.exit(p, 'kill');
      k.kernel.load('c', v2, { purge: 'kill' });
      for (const s of states) k.kernel.startBehaviour('server', 'c', [s]);
      const coldMs = now() - t;
      if (r >= 0) {
        hot.push(n / (hotMs / 1000));
        cold.push(n / (coldMs / 1000));
      }
      await tick();
    }
    const subject = measure(`suspend/codeChange/resume, ${n} servers`, hot, 'proc/s');
    const baseline = measure(`stop and restart ${n} servers with converted state`, cold, 'proc/s');
    rows.push(row(`upgrade ${n.toLocaleString('en')} server processes (one plan)`, subject, baseline));
    log(`  upgrade n=${n}: hot ${(subject.value / 1e3).toFixed(0)} k/s, cold restart ${(baseline.value / 1e3).toFixed(0)} k/s`);
  }
  return rows;
}

function fiftyFunctions(tag: number): string {
  const fns = Array.from({ length: 50 }, (_, i) => `export function f${i}(x: number): number { return x * ${i} + ${tag}; }`);
  return `// version ${tag}\n${fns.join('\n')}\n`;
}

async function loadRows(reps: number, log: (l: string) => void): Promise<ResultRow[]> {
  const system = await System.start({ nodes: [{ name: 'a', code: { retention: { kind: 'forever' }, purge: 'soft' } }] });
  try {
    const node = system.node('a');
    const viaNode: number[] = [];
    const viaImport: number[] = [];
    let tag = 0;
    for (let r = -1; r < reps; r++) {
      const rounds = 20;
      let t = now();
      for (let i = 0; i < rounds; i++) await node.load('fifty', fiftyFunctions(++tag));
      const nodeMs = (now() - t) / rounds;
      const js = Array.from({ length: rounds }, () => transpile('fifty', fiftyFunctions(++tag)).js.replace(/exports\./g, 'globalThis.__x.'));
      const esm = Array.from({ length: rounds }, () => fiftyFunctions(++tag).replace(/: number/g, ''));
      void js;
      t = now();
      for (const src of esm) await import(`data:text/javascript,${encodeURIComponent(src)}`);
      const importMs = (now() - t) / rounds;
      if (r >= 0) {
        viaNode.push(nodeMs * 1000);
        viaImport.push(importMs * 1000);
      }
    }
    const subject = measure('node.load: transpile + ship + compile + evaluate', viaNode, 'µs');
    const baseline = measure('ESM import() of the same module (data: URL, in-thread)', viaImport, 'µs');
    log(`  load 50-function module: node.load ${subject.value.toFixed(0)} µs, ESM import ${baseline.value.toFixed(0)} µs`);

    // The first load after an idle spell, beside warm loads just after it; the same for ESM
    // import(), whose own penalty after the same idle is the machine's (caches, a vCPU woken).
    const idle: number[] = [];
    const warm: number[] = [];
    const importIdle: number[] = [];
    const importWarm: number[] = [];
    const esm = () => import(`data:text/javascript,${encodeURIComponent(fiftyFunctions(++tag).replace(/: number/g, ''))}`);
    for (let r = 0; r < reps; r++) {
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      let t = now();
      await node.load('fifty', fiftyFunctions(++tag));
      idle.push((now() - t) * 1000);
      t = now();
      for (let i = 0; i < 5; i++) await node.load('fifty', fiftyFunctions(++tag));
      warm.push(((now() - t) / 5) * 1000);
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      t = now();
      await esm();
      importIdle.push((now() - t) * 1000);
      t = now();
      for (let i = 0; i < 5; i++) await esm();
      importWarm.push(((now() - t) / 5) * 1000);
    }
    const cold = measure('first node.load after 2 s idle', idle, 'µs');
    const hot = measure('node.load right after other loads', warm, 'µs');
    const importRatio = median(importIdle) / median(importWarm);
    log(
      `  load after 2 s idle: ${cold.value.toFixed(0)} µs, warm ${hot.value.toFixed(0)} µs (${(cold.value / hot.value).toFixed(2)}x); ` +
        `ESM import after 2 s idle ${median(importIdle).toFixed(0)} µs, warm ${median(importWarm).toFixed(0)} µs (${importRatio.toFixed(2)}x)`,
    );
    return [
      row(
        'load a 50-function module into a thread node',
        subject,
        baseline,
        { text: '<= 1 ms warm', check: (value) => value <= 1000 },
        'host compile ~255 µs (sucrase ~140, meriyah ~62; the hazard walk is skipped for a body that never names receive), ~12 µs to the post, the node ~150 µs from receipt to its one post back (compileFunction ~80, install ~45 of which the version-of-function WeakMap ~25 once it holds many dead entries, publish ~9), and two thread wake-ups of ~45-50 µs each: ~0.53 ms median at load 3 (ESM import ~0.15 ms); with the machine loaded the two threads share a core and each wake-up waits for it: 0.82-1.06 ms in paired bench runs at load 5-8',
      ),
      row(
        'load a 50-function module after 2 s idle',
        cold,
        hot,
        { text: '<= 3x warm (no cold compiler)', check: (_v, ratio) => ratio <= 3 },
        `no compiler goes cold (the host compiles on its own thread, warmed at start; the pool thread for big sources never exits): ESM import() after the same 2 s idle was ${importRatio.toFixed(1)}x its warm time in this run, the machine's own wake-up`,
      ),
    ];
  } finally {
    await system.stop();
  }
}

/** The host's compile step alone (transpile + hazards), beside typescript.transpileModule alone. */
async function compileRows(reps: number, log: (l: string) => void): Promise<ResultRow[]> {
  const ours: number[] = [];
  const theirs: number[] = [];
  let tag = 0;
  const options: ts.TranspileOptions = {
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 },
    fileName: 'fifty.ts',
    reportDiagnostics: true,
  };
  for (let r = -1; r < reps; r++) {
    const rounds = 50;
    const sources = Array.from({ length: rounds }, () => fiftyFunctions(++tag));
    let t = now();
    for (const src of sources) await compile('fifty', src, 'fifty.ts');
    const oursMs = (now() - t) / rounds;
    t = now();
    for (const src of sources) ts.transpileModule(src, options);
    const theirsMs = (now() - t) / rounds;
    if (r >= 0) {
      ours.push(oursMs * 1000);
      theirs.push(theirsMs * 1000);
    }
  }
  const subject = measure('compile(): sucrase + meriyah parse + hazards', ours, 'µs');
  const baseline = measure('typescript.transpileModule alone', theirs, 'µs');
  log(`  compile 50-function module: ${subject.value.toFixed(0)} µs, typescript.transpileModule ${baseline.value.toFixed(0)} µs`);
  return [
    row(
      'compile a 50-function TypeScript module (host)',
      subject,
      baseline,
      { text: '<= 1 ms', check: (value) => value <= 1000 },
      'the target is absolute and the machine is shared: the ratio to typescript.transpileModule in the same run stays ~0.19-0.20x (0.61 ms against 3.1 ms on 2026-12-01 early; 1.4-1.5 ms against 6.4-7.7 ms in the later runs, where every baseline was ~2.5x slower)',
    ),
  ];
}

export const codeBench: Benchmark = {
  name: 'code',
  description: 'lingering() vs a full scan, upgrading server processes, module load time',
  async run({ reps, scale, wants, log }) {
    // Each group runs only if one of its rows is wanted (--only), so a load-only run takes seconds.
    const any = (...names: string[]) => names.some((name) => wants(name));
    return [
      ...(any("lingering('w'): 10 lingering among") ? await lingeringRows(reps, scale, log) : []),
      ...(any('upgrade 100 server processes (one plan)', 'upgrade 1,000 server processes', 'upgrade 10,000 server processes')
        ? await upgradeRows(reps, scale, log)
        : []),
      ...(any('compile a 50-function TypeScript module (host)') ? await compileRows(reps, log) : []),
      ...(any('load a 50-function module into a thread node', 'load a 50-function module after 2 s idle') ? await loadRows(reps, log) : []),
    ];
  },
};
