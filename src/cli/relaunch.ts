/**
 * `subnode run` needs Node's --no-node-snapshot (isolate nodes do). When it is missing, the
 * command relaunches Node with it, and stays a faithful stand-in for the child, for a supervisor
 * that only knows the first pid: SIGINT, SIGTERM and SIGHUP are forwarded, the launcher exits with
 * the child's code (128 + N if a signal N killed it), and the child stops when the launcher dies
 * (it watches the IPC channel between them: see server.ts).
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';

/** Set in the environment of a relaunched child, which has an IPC channel to its launcher. */
export const LAUNCHER_ENV = 'SUBNODE_LAUNCHER_PID';

const FORWARDED = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

export function hasSnapshotFlag(): boolean {
  return process.execArgv.includes('--no-node-snapshot') || (process.env.NODE_OPTIONS ?? '').split(/\s+/).includes('--no-node-snapshot');
}

export function relaunch(script: string, args: string[]): Promise<number> {
  const child = spawn(process.execPath, ['--no-node-snapshot', ...process.execArgv, script, ...args], {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, [LAUNCHER_ENV]: String(process.pid) },
  });
  const forwards = FORWARDED.map(
    (signal) =>
      [
        signal,
        () => {
          if (child.exitCode === null && child.signalCode === null) child.kill(signal);
        },
      ] as const,
  );
  for (const [signal, forward] of forwards) process.on(signal, forward);
  return new Promise((done) => {
    const finish = (code: number) => {
      for (const [signal, forward] of forwards) process.off(signal, forward);
      done(code);
    };
    child.on('exit', (code, signal) => finish(code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0)));
    child.on('error', (error) => {
      process.stderr.write(`subnode: cannot start ${process.execPath}: ${error.message}\n`);
      finish(1);
    });
  });
}
