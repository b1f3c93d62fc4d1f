/**
 * The benchmark suite's entry point (`npm run bench`).
 *
 *   node --no-node-snapshot --expose-gc dist/bench/run.js [name ...] [--only=TEXT ...] [--reps=N] [--scale=X] [--out=FILE] [--compare]
 *
 * `--compare` checks the run's ratios against the committed bench/results.json (and does not
 * overwrite it): a ratio more than 25% worse is flagged and the exit code is 1. Run it before a
 * commit that touches a hot path.
 *
 * Runs every benchmark (or the ones named), prints a table and, for a full run, writes
 * bench/results.json and regenerates the README's table from it (bench/readme-table.ts).
 * `--only=TEXT` keeps the rows whose name contains TEXT (any case; give it several times for
 * several rows); a benchmark skips the work of rows nobody asked for where it can (`calls` does).
 * Name the benchmark too, or every one runs: `npm run bench -- calls --only=server.call`. Each
 * figure is the median of N repetitions (default 5, after one warm-up round) beside a baseline
 * measured in the same run, interleaved with it.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { crossNode } from './cross-node.js';
import { intraNode } from './intra-node.js';
import { compareRows, formatComparison } from './compare.js';
import { formatTable, hasGc, machine, now, rowFilter, type Benchmark, type ResultRow } from './lib.js';
import { nodeStart } from './node-start.js';
import { spawnMemory } from './spawn-memory.js';
import { codeBench } from './code.js';
import { isolateBench } from './isolate.js';
import { migrationBench } from './migration.js';
import { clusterBench } from './cluster.js';
import { clusterMigrationBench } from './cluster-migration.js';
import { controlLoadBench } from './control-load.js';
import { observeBench } from './observe.js';
import { releasesBench } from './releases.js';
import { writeReadmeTable } from './readme-table.js';
import { durableBench } from './durable.js';
import { callsBench } from './calls.js';
import { rollingBench } from './rolling.js';
import { denseBench } from './dense.js';

const BENCHMARKS: Benchmark[] = [
  callsBench,
  intraNode,
  crossNode,
  spawnMemory,
  nodeStart,
  codeBench,
  isolateBench,
  denseBench,
  migrationBench,
  controlLoadBench,
  clusterBench,
  clusterMigrationBench,
  observeBench,
  releasesBench,
  durableBench,
  rollingBench,
];

interface Args {
  names: string[];
  only: string[];
  reps: number;
  scale: number;
  out?: string;
  help: boolean;
  compare: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { names: [], only: [], reps: 5, scale: 1, help: false, compare: false };
  for (const arg of argv) {
    const [key, value] = arg.split('=', 2) as [string, string | undefined];
    if (key === '--reps') args.reps = Math.max(1, Math.round(Number(value)));
    else if (key === '--scale') args.scale = Number(value);
    else if (key === '--out') args.out = value;
    else if (key === '--only') {
      if (!value) throw new Error('--only takes a text: --only=server.call');
      args.only.push(value);
    } else if (key === '--help' || key === '-h') args.help = true;
    else if (key === '--compare') args.compare = true;
    else if (key.startsWith('-')) throw new Error(`unknown option ${arg}`);
    else args.names.push(arg);
  }
  if (!Number.isFinite(args.reps) || !(args.scale > 0)) throw new Error('--reps and --scale take positive numbers');
  return args;
}

/** Every entry point must run Node with --no-node-snapshot (PLATFORM.md); gc() needs --expose-gc. */
function reexecIfNeeded(): boolean {
  const flags = `${process.execArgv.join(' ')} ${process.env.NODE_OPTIONS ?? ''}`;
  const missing = ['--no-node-snapshot', '--expose-gc'].filter((f) => !flags.includes(f));
  if (!missing.length) return false;
  const result = spawnSync(process.execPath, [...missing, ...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exitCode = result.status ?? 1;
  return true;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.help) {
    console.log(`usage: run.js [${BENCHMARKS.map((b) => b.name).join('|')} ...] [--only=TEXT ...] [--reps=N] [--scale=X] [--out=FILE] [--compare]`);
    for (const b of BENCHMARKS) console.log(`  ${b.name.padEnd(6)} ${b.description}`);
    return;
  }
  const unknown = args.names.filter((n) => !BENCHMARKS.some((b) => b.name === n));
  if (unknown.length) throw new Error(`unknown benchmark ${unknown.join(', ')}: choose from ${BENCHMARKS.map((b) => b.name).join(', ')}`);
  const selected = args.names.length ? BENCHMARKS.filter((b) => args.names.includes(b.name)) : BENCHMARKS;
  const full = selected.length === BENCHMARKS.length && args.scale === 1 && !args.only.length;
  const wants = rowFilter(args.only);

  const info = machine();
  console.log(
    `subnode bench: node ${info.node}, ${info.cpus} x ${info.cpuModel}, ${info.totalMemGiB} GiB, ` +
      `median of ${args.reps} reps${args.scale !== 1 ? `, scale ${args.scale}` : ''}${hasGc() ? '' : ' (no gc!)'}`,
  );
  const results: ResultRow[] = [];
  const failed: string[] = [];
  const t0 = now();
  for (const bench of selected) {
    const started = now();
    console.log(`- ${bench.name}: ${bench.description}`);
    try {
      const rows = await bench.run({ reps: args.reps, scale: args.scale, wants, log: (line) => console.log(line) });
      results.push(...rows.filter((r) => wants(r.name)));
    } catch (error) {
      failed.push(bench.name);
      console.error(`  ${bench.name} FAILED: ${(error as Error).stack ?? error}`);
    }
    console.log(`  (${((now() - started) / 1000).toFixed(1)} s)`);
  }
  console.log(`\n${formatTable(results)}\n`);
  console.log(`ratio = value / baseline, medians of ${args.reps}; total ${((now() - t0) / 1000).toFixed(1)} s`);

  const committed = fileURLToPath(new URL('../../bench/results.json', import.meta.url));
  if (args.compare) {
    const previous = (JSON.parse(readFileSync(committed, 'utf8')) as { results: ResultRow[] }).results;
    const comparison = compareRows(previous, results);
    console.log(`\ncompared with bench/results.json:\n${formatComparison(comparison)}`);
    const worse = comparison.compared.filter((c) => c.flagged);
    if (worse.length) {
      console.error(`${worse.length} ratio(s) got worse by more than 25%: ${worse.map((c) => c.name).join('; ')}`);
      process.exitCode = 1;
    }
  }
  // A partial, failed or comparing run does not replace bench/results.json (unless --out says where to write).
  const out = args.out ?? (full && !failed.length && !args.compare ? committed : undefined);
  if (out) {
    writeFileSync(out, `${JSON.stringify({ machine: info, results }, null, 2)}\n`);
    console.log(`wrote ${out}`);
    if (out === committed) console.log(`rewrote the table in ${writeReadmeTable({ machine: info, results })}`);
  } else {
    console.log(`(${failed.length ? 'failed' : 'partial'} run: bench/results.json not written; pass --out=FILE to keep these figures)`);
  }
  if (failed.length) {
    console.error(`failed: ${failed.join(', ')}`);
    process.exitCode = 1;
  }
}

if (!reexecIfNeeded()) {
  main()
    .catch((error) => {
      console.error(error instanceof Error ? error.stack : error);
      process.exitCode = 1;
    })
    .finally(() => {
      // Every benchmark stops its systems and workers. If something still holds the event loop,
      // say what, and exit anyway rather than hang (the timer itself does not keep the process up).
      setTimeout(() => {
        const handles = (process as unknown as { _getActiveHandles(): object[] })._getActiveHandles();
        console.error(`bench: still alive after 5 s; active handles: ${handles.map((h) => h.constructor.name).join(', ')}`);
        process.exit(process.exitCode ?? 1);
      }, 5_000).unref();
    });
}
