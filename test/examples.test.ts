import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

// The examples run as users run them: the built file, in a fresh Node process.
async function example(name: string): Promise<string> {
  const { stdout } = await run(process.execPath, ['--no-node-snapshot', `dist/examples/${name}.js`], { timeout: 20_000 });
  return stdout;
}

describe('examples', () => {
  it('two-nodes: one module, two versions alive in two nodes', async () => {
    const out = await example('two-nodes');
    expect(out).toContain('edge   → Hi Grace, nice to see you for the first time! (greeter v2, greeting #3)');
    expect(out).toContain('legacy → Hello, Grace. (greeter v1, greeting #2)');
    expect(out).toMatch(/legacy: greeter v1 current \(1 running\); process <legacy\.1> runs v1\n.*\n\nTwo versions/);
    expect(out).toContain('edge  : greeter v1 old (0 running), v2 current (1 running); process <edge.1> runs v2');
  });
});
