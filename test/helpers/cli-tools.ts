/**
 * Running the built `subnode` binary in child processes, as users run it: one-shot commands
 * (`cli`) and long-running ones (`Running`, e.g. `subnode run`) whose output can be waited for.
 * Every wait is for a condition, with a deadline.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { until } from './wait.js';

export { until };

export const MAIN = resolve('dist/src/cli/main.js');

export interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function cli(args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<Result> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [MAIN, ...args], { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`subnode ${args.join(' ')} timed out\n${stdout}\n${stderr}`));
    }, options.timeoutMs ?? 30_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
  });
}

export class Running {
  stdout = '';
  stderr = '';
  code: number | null | undefined;
  readonly exited: Promise<number | null>;

  constructor(readonly child: ChildProcess) {
    child.stdout!.on('data', (d) => (this.stdout += d));
    child.stderr!.on('data', (d) => (this.stderr += d));
    this.exited = new Promise((done) =>
      child.on('close', (code, signal) => {
        this.code = code;
        done(code ?? (signal ? -1 : null));
      }),
    );
  }

  static start(args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv }): Running {
    return new Running(spawn(process.execPath, [MAIN, ...args], { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] }));
  }

  async waitFor(pattern: RegExp, stream: 'stdout' | 'stderr' = 'stdout', timeoutMs = 30_000): Promise<RegExpMatchArray> {
    let match: RegExpMatchArray | null = null;
    await until(
      `${pattern} on ${stream}\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`,
      () => {
        match = this[stream].match(pattern);
        if (!match && this.code !== undefined) throw new Error(`exited ${this.code} before ${pattern}\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`);
        return match !== null;
      },
      timeoutMs,
    );
    return match!;
  }
}
