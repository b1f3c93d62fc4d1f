/**
 * A nats-server with JetStream for a benchmark run: the binary from `NATS_SERVER` or the Debian
 * package, on a free loopback port, with a temporary store directory removed at `stop()`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect as tcp, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function natsServer(): Promise<{ url: string; stop(): Promise<void> }> {
  const bin = [process.env.NATS_SERVER, '/usr/sbin/nats-server', '/usr/bin/nats-server'].find((p): p is string => !!p && existsSync(p));
  if (!bin) throw new Error('nats-server not found: apt-get install nats-server, or set NATS_SERVER');
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  const dir = mkdtempSync(join(tmpdir(), 'subnode-bench-nats-'));
  const proc: ChildProcess = spawn(bin, ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', dir], { stdio: 'ignore' });
  // Never outlived by it, whatever ends the run (a failed benchmark, an exit before stop()).
  const kill = (): void => void proc.kill('SIGKILL');
  process.once('exit', kill);
  for (let i = 0; ; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const c = tcp(port, '127.0.0.1', () => {
        c.end();
        resolve(true);
      });
      c.on('error', () => resolve(false));
    });
    if (up) break;
    if (i > 200) throw new Error('nats-server did not start');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    url: `nats://127.0.0.1:${port}`,
    stop: async () => {
      process.off('exit', kill);
      const exited = new Promise((resolve) => proc.once('exit', resolve));
      proc.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
