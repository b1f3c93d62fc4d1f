/**
 * Turns and slices: a slice ends to let the host's I/O in, which a process on the BEAM never
 * sees. A turn the end of a slice cuts resumes first in the next slice, with the reductions it had
 * left; cut a second time, the process goes to the back of the run queue. The kernel runs on a
 * platform whose clock moves one ms per reading and whose slices run when the test says, so where
 * a slice ends is exact.
 */
import { describe, expect, it } from 'vitest';
import { threadPlatform } from '../src/node/thread-platform.js';
import { Kernel } from '../src/kernel/kernel.js';
import type { Envelope } from '../src/kernel/signals.js';
import { transpile } from '../src/compiler/transpile.js';
import { HOST } from './helpers/kernel-tools.js';

const MODULE = `
  import { next, send } from 'subnode';

  /** Takes \`left\` steps (each one a reduction), then says so. */
  export function counter(name: string, left: number): unknown {
    return left === 0 ? send('${HOST}', name + ' done') : next(counter, name, left - 1);
  }

  export function once(name: string): unknown {
    return send('${HOST}', name + ' ran');
  }
`;

/** A kernel with `sliceMs` 4 whose clock advances 1 ms at each reading; `runSlices` runs the slices it asked for. */
function steppedKernel() {
  let clock = 0;
  const slices: (() => void)[] = [];
  const said: unknown[] = [];
  const platform = {
    ...threadPlatform({
      outbound: (to: string, batch: Envelope[]) => {
        for (const e of batch) if (to === 'host' && e[0] === 0 && e[1] === HOST) said.push(e[2]);
      },
      emit: () => {},
    }),
    now: () => ++clock,
    schedule: (task: () => void) => void slices.push(task),
  };
  const kernel = new Kernel(platform, { node: 'a', sliceMs: 4 });
  kernel.load('turns', transpile('turns', MODULE).js);
  return {
    kernel,
    said,
    /** Runs slices until none is asked for; how many ran. */
    runSlices(): number {
      let ran = 0;
      for (let task = slices.shift(); task; task = slices.shift()) {
        task();
        if (++ran > 1000) throw new Error('the scheduler asked for over 1000 slices');
      }
      return ran;
    },
  };
}

describe('turns across slices', () => {
  it('a turn cut by the end of a slice goes on first in the next slice, before the processes queued behind it', () => {
    const k = steppedKernel();
    // 100 steps: the clock is read every 16 steps, so the first slice (4 ms) ends inside them.
    k.kernel.spawn('turns', 'counter', ['a', 100]);
    k.kernel.spawn('turns', 'once', ['b']);
    expect(k.runSlices()).toBeGreaterThan(1);
    expect(k.said).toEqual(['a done', 'b ran']);
  });

  it('a turn resumes once: cut again, the process goes to the back of the run queue', () => {
    const k = steppedKernel();
    // 1000 steps (within one turn's 2000 reductions) take more than two slices.
    k.kernel.spawn('turns', 'counter', ['a', 1000]);
    k.kernel.spawn('turns', 'once', ['b']);
    expect(k.runSlices()).toBeGreaterThan(2);
    expect(k.said).toEqual(['b ran', 'a done']);
  });

  it('a process whose budget runs out goes to the back as before, slices or not', () => {
    const k = steppedKernel();
    k.kernel.spawn('turns', 'counter', ['a', 5000]);
    k.kernel.spawn('turns', 'counter', ['b', 10]);
    k.runSlices();
    expect(k.said).toEqual(['b done', 'a done']);
  });
});
