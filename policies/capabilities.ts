/**
 * Ready-made node policies: capabilities and limits, to spread into a node spec:
 * `{ name: 'plugins', kind: 'isolate', ...sandboxed }`.
 */
import type { Capabilities, Limits } from '../src/kernel/capabilities.js';
import type { CodePolicy } from '../src/kernel/policy.js';

export interface NodePolicy {
  capabilities: Partial<Capabilities>;
  limits: Limits;
  code?: CodePolicy;
}

/**
 * Untrusted code: may talk to no other node (only to the host, and so answer host calls), load
 * any module it is given but see no clock, no randomness, no host functions, spawn nowhere else,
 * register no global name;
 * 64 MiB, 200 ms per slice, 10,000 queued messages per process, 64 KiB per message.
 */
export const sandboxed: NodePolicy = {
  capabilities: {
    sendTo: [],
    modules: '*',
    services: { console: true, clock: false, random: false, functions: [] },
    spawnRemote: false,
    globalNames: [],
  },
  limits: { memoryMb: 64, cpuMsPerSlice: 200, mailbox: { max: 10_000, overflow: 'drop' }, maxMessageBytes: 64 * 1024 },
};

/** Code you wrote: everything granted, no limits beyond the defaults. */
export const trusted: NodePolicy = {
  capabilities: { sendTo: '*', modules: '*', services: { console: true, clock: true, random: true, functions: '*' }, spawnRemote: true, globalNames: '*' },
  limits: {},
};

/**
 * A legacy component pinned to the code it has: old versions are never purged while anything runs
 * them (retention `forever`, purge `soft`), it may send anywhere but spawn nowhere else.
 */
export const legacyPinned: NodePolicy = {
  capabilities: { sendTo: '*', modules: '*', spawnRemote: false },
  limits: {},
  code: { retention: { kind: 'forever' }, purge: 'soft' },
};

/** `sandboxed`, allowed to talk to the named nodes. */
export function sandboxedTalkingTo(...nodes: string[]): NodePolicy {
  return { ...sandboxed, capabilities: { ...sandboxed.capabilities, sendTo: nodes } };
}
