/**
 * The kernel a dense thread loads ahead (src/node/kernel-image.ts): taken by the next node only
 * when that node's memory limit is the one it was made with, used once, and booted like any other.
 */
import { afterEach, describe, expect, it } from 'vitest';
import ivm from 'isolated-vm';
import { bootKernel, dropAhead, loadAhead, type BootedKernel } from '../src/node/kernel-image.js';
import { ALL } from '../src/kernel/capabilities.js';
import { decodeValue } from '../src/node/decode.js';

const MiB = 2 ** 20;
const booted: BootedKernel[] = [];

function boot(memoryMb: number, node: string): BootedKernel {
  const noop = () => new ivm.Callback(() => {});
  const bridge = { outbound: noop(), emit: noop(), schedule: noop(), setTimer: noop(), clearTimer: noop(), controlDone: noop() };
  const kernel = bootKernel(memoryMb, bridge, { node, creation: 0, capabilities: ALL, limits: { memoryMb } }, 4_000);
  booted.push(kernel);
  return kernel;
}

const heapLimit = (kernel: BootedKernel): number => kernel.isolate.getHeapStatisticsSync().heap_size_limit;

/** What a booted kernel answers to a control request, decoded. */
const control = (kernel: BootedKernel, op: string, args: unknown[]): unknown =>
  decodeValue(kernel.api.control.applySync(undefined, [op, args], { arguments: { copy: true }, result: { copy: true }, timeout: 4_000 })).value;

/** The pid of a process spawned on a booted kernel: it names the node the kernel was booted for. */
function spawned(kernel: BootedKernel): string {
  expect(control(kernel, 'load', ['m', "exports.f = function () { return 'done'; };", {}])).toMatchObject({ ok: expect.anything() });
  return JSON.stringify(control(kernel, 'spawn', ['m', 'f', [], {}]));
}

afterEach(() => {
  for (const kernel of booted.splice(0)) kernel.isolate.dispose();
  dropAhead();
});

describe('the kernel loaded ahead', () => {
  it('is taken only by a node with the memory limit it was made with; any other node gets its own', () => {
    loadAhead(64);
    const other = boot(32, 'small');
    const same = boot(64, 'big');
    expect(heapLimit(other)).toBeLessThan(48 * MiB);
    expect(heapLimit(same)).toBeGreaterThanOrEqual(64 * MiB);
    expect(spawned(same)).toContain('<big.');
    expect(spawned(other)).toContain('<small.');
  });

  it('is used once: the next node gets a fresh isolate', () => {
    loadAhead(64);
    const first = boot(64, 'first');
    const second = boot(64, 'second');
    expect(second.isolate).not.toBe(first.isolate);
    expect(spawned(first)).toContain('<first.');
    expect(spawned(second)).toContain('<second.');
  });
});
