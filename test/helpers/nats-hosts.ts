/**
 * Hosts of a cluster as separate OS processes (scripts/cluster-host.mjs on the built dist/),
 * driven over IPC: `start` a System with `cluster` options, `eval` code in it, watch its events.
 * Waits are for conditions, each with a deadline.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('../../scripts/cluster-host.mjs', import.meta.url));

export interface HostEvent {
  type: string;
  [key: string]: unknown;
}

export class HostError extends Error {
  constructor(
    readonly code: string | undefined,
    readonly errorName: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

export class HostProcess {
  readonly events: HostEvent[] = [];
  readonly clusterEvents: HostEvent[] = [];
  private readonly calls = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  private nextId = 0;
  private readonly waiters = new Set<() => void>();
  exited: Promise<number | null>;

  private constructor(
    readonly name: string,
    readonly proc: ChildProcess,
  ) {
    proc.on(
      'message',
      (message: { id?: number; ok?: unknown; error?: { name?: string; code?: string; message: string }; event?: HostEvent; cluster?: HostEvent }) => {
        if (message.event) this.events.push(message.event);
        if (message.cluster) this.clusterEvents.push(message.cluster);
        if (message.id !== undefined) {
          const call = this.calls.get(message.id);
          this.calls.delete(message.id);
          if (message.error) call?.reject(new HostError(message.error.code, message.error.name, `${this.name}: ${message.error.message}`));
          else call?.resolve(message.ok);
        }
        for (const wake of [...this.waiters]) wake();
      },
    );
    this.exited = new Promise((resolve) =>
      proc.once('exit', (code) => {
        for (const call of this.calls.values()) call.reject(new Error(`host ${this.name} exited (${code})`));
        this.calls.clear();
        resolve(code);
      }),
    );
  }

  /** Forks a host process and waits for it to be ready (no System yet: `start` makes one). */
  static async spawn(name: string): Promise<HostProcess> {
    const proc = fork(SCRIPT, [], { execArgv: ['--no-node-snapshot'], serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const host = new HostProcess(name, proc);
    await new Promise<void>((resolve, reject) => {
      proc.once('message', () => resolve());
      proc.once('exit', (code) => reject(new Error(`host ${name} exited before it was ready (${code})`)));
    });
    return host;
  }

  /** Forks a host and starts its System in the cluster. */
  static async start(name: string, cluster: Record<string, unknown>, nodes: unknown[] = []): Promise<HostProcess> {
    const host = await HostProcess.spawn(name);
    try {
      await host.command('start', { options: { cluster: { name, ...cluster }, nodes } });
    } catch (error) {
      host.proc.kill('SIGKILL');
      throw error;
    }
    return host;
  }

  command<T = unknown>(cmd: string, payload: Record<string, unknown> = {}): Promise<T> {
    const id = ++this.nextId;
    return new Promise<T>((resolve, reject) => {
      this.calls.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.proc.send({ id, cmd, ...payload });
    });
  }

  /** Runs `code` in the host: an async function body of (system, ctx, args, System). */
  eval<T = unknown>(code: string, ...args: unknown[]): Promise<T> {
    return this.command<T>('eval', { code, args });
  }

  /** Waits until `check` returns something truthy (re-checked on every message from the host and every 50 ms). */
  async until<T>(what: string, check: () => T | Promise<T>, timeoutMs = 15_000): Promise<NonNullable<T>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await check();
      if (value) return value as NonNullable<T>;
      if (Date.now() > deadline) throw new Error(`${this.name}: timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          this.waiters.delete(wake);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(wake, 50);
        this.waiters.add(wake);
      });
    }
  }

  /** Waits for a system event (`event`) or cluster event (`cluster`) matching `match`. */
  waitEvent(kind: 'event' | 'cluster', match: (e: HostEvent) => boolean, timeoutMs = 15_000): Promise<HostEvent> {
    const list = kind === 'event' ? this.events : this.clusterEvents;
    return this.until(`a ${kind} event`, () => list.find(match), timeoutMs);
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    await Promise.race([this.command('stop').catch(() => {}), new Promise((resolve) => setTimeout(resolve, 10_000))]);
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
    await this.exited;
  }

  kill(): Promise<number | null> {
    this.proc.kill('SIGKILL');
    return this.exited;
  }
}
