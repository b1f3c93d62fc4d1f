/**
 * What the kernel needs of the node it runs in (`KernelPlatform`: the clock, timers, compiling,
 * the wires to other nodes, events) and how it is made (`KernelOptions`). The kernel uses no Node
 * API itself: a thread node, an isolate's sandbox and the tests each supply these.
 */
import type { ModuleFactory } from './code-server.js';
import type { Capabilities, Limits } from './capabilities.js';
import type { Envelope } from './signals.js';
import type { KernelEvent } from './types.js';

export interface KernelPlatform {
  /** A monotonic clock in ms, for timeouts and slices. */
  now(): number;
  /** Wall-clock time in ms since the epoch, for what people read (when a version loaded). */
  wallClock(): number;
  /** One timer at a time: the kernel arms it for its earliest receive timeout. */
  setTimer(ms: number, fire: () => void): unknown;
  clearTimer(handle: unknown): void;
  /** Run `task` soon, after pending I/O (a macrotask), so inbound messages interleave with work. */
  schedule(task: () => void): void;
  /** Source text (CommonJS shape) to a module factory; throws on a syntax error. */
  compile(js: string, filename: string): ModuleFactory;
  /** Signals for another node (or the host, node `host`), batched per slice. True: that node is now full (`credit`, holds.ts). */
  outbound(node: string, envelopes: Envelope[]): boolean | void;
  emit(event: KernelEvent): void;
}

export interface KernelOptions {
  node: string;
  /** Incarnation of the node: 0 first, +1 per restart. Part of every pid. */
  creation?: number;
  /** How long one scheduler slice may run before yielding to I/O. */
  sliceMs?: number;
  capabilities?: Capabilities;
  limits?: Limits;
  /** Packages and builtins module code may import (thread nodes), already imported: specifier → namespace. */
  natives?: Record<string, unknown>;
}
