/**
 * Turns and slices: a slice ends to let the host's I/O in, which a process on the BEAM never
 * sees. A turn the end of a slice cuts resumes first in the next slice, with the reductions it had
 * left; cut a second time, the process goes to the back of the run queue. The kernel runs on a
 * platform whose clock moves one ms per reading and whose slices run when the test says, so where
 * a slice ends is exact.
 *
 * A step is never cut: a turn's last step may overrun the turn's reductions, and the overrun is
 * taken off the process's next turn (its reduction debt).
 */
import { describe, expect, it } from 'vitest';
import { threadPlatform } from '../src/node/thread-platform.js';
import { Kernel } from '../src/kernel/kernel.js';
import type { Envelope } from '../src/kernel/signals.js';
import { transpile } from '../src/compiler/transpile.js';
import { HOST } from './helpers/kernel-tools.js';

const MODULE = `
  import { exit, next, send } from 'subnode';

  /** Takes \`left\` steps (each one a reduction), then says so. */
  export function counter(name: string, left: number): unknown {
    return left === 0 ? send('${HOST}', name + ' done') : next(counter, name, left - 1);
  }

  /** Takes \`left\` steps of \`size\` sends each (the first says its name, the others 0): each step costs size + 1 reductions. */
  export function burst(name: string, size: number, left: number): unknown {
    send('${HOST}', name);
    for (let i = 1; i < size; i++) send('${HOST}', 0);
    return left > 1 ? next(burst, name, size, left - 1) : 'done';
  }

  /** Ends \`pid\`, then says so. */
  export function killer(pid: string): unknown {
    exit(pid, 'kill');
    return send('${HOST}', 'killed');
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

/** The steps of `burst` processes as turns: each name with the number of its steps in a row, in order. */
function turns(said: unknown[]): string[] {
  const names = said.filter((m): m is string => typeof m === 'string');
  const out: string[] = [];
  let count = 0;
  names.forEach((name, i) => {
    count++;
    if (names[i + 1] !== name) {
      out.push(`${name}×${count}`);
      count = 0;
    }
  });
  return out;
}

describe('reduction debt', () => {
  it("a turn's overrun is taken off the next turn: steps of 1501 reductions run 2, 1, 1 per turn, 2000 a turn on average", () => {
    const k = steppedKernel();
    // Turn 1: 2000 - 1501 = 499, a second step ends at -1002. Turn 2: 998 - 1501 = -503. Turn 3:
    // 1497 - 1501 = -4. Turn 4: 1996, two steps again. Without the debt, every turn ran two steps.
    k.kernel.spawn('turns', 'burst', ['a', 1500, 8]);
    k.kernel.spawn('turns', 'burst', ['b', 1500, 8]);
    k.runSlices();
    const pattern = ['a×2', 'b×2', 'a×1', 'b×1', 'a×1', 'b×1'];
    expect(turns(k.said)).toEqual([...pattern, ...pattern]);
  });

  it('a step that costs more than a whole turn still runs, one per turn', () => {
    const k = steppedKernel();
    k.kernel.spawn('turns', 'burst', ['a', 5000, 3]);
    k.kernel.spawn('turns', 'burst', ['b', 5000, 3]);
    k.runSlices();
    expect(turns(k.said)).toEqual(['a×1', 'b×1', 'a×1', 'b×1', 'a×1', 'b×1']);
  });

  it('a process that ends owing a debt leaves none behind (the run queue keeps nothing of it)', () => {
    const k = steppedKernel();
    // a's first turn overruns (two steps of 1501) and queues it behind b, which ends it.
    const a = k.kernel.spawn('turns', 'burst', ['a', 1500, 5]);
    k.kernel.spawn('turns', 'killer', [a]);
    k.runSlices();
    expect(turns(k.said)).toEqual(['a×2', 'killed×1']);
    // The count of debts the run queue holds (private: a leak is not otherwise observable).
    const runQueue = (k.kernel as unknown as { scheduler: { runQueue: { owing: number } } }).scheduler.runQueue;
    expect(runQueue.owing).toBe(0);
  });
});
