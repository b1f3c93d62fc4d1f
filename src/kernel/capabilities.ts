/**
 * Safe Erlang capabilities of a node, and its resource limits. The kernel enforces them where a
 * process acts (so the process gets a clear error), and for isolate nodes the trusted side of the
 * sandbox enforces them again at the boundary (so a subverted kernel still cannot get through).
 */
import { BadArgument } from '../errors.js';

export interface Capabilities {
  /** Nodes this node's processes may send to, link, monitor or signal. Its own node and the host always. */
  sendTo: '*' | string[];
  /** Module names that may be loaded into the node. */
  modules: '*' | string[];
  /** Module aliasing, as Safe Erlang proposed: a name module code imports → the module that implements it. */
  aliases: Record<string, string>;
  /** Host services module code sees (isolate nodes; a thread node sees all of Node). */
  services: {
    console: boolean; clock: boolean; random: boolean; functions: '*' | string[];
    /** WebAssembly in an isolate node (default false). When granted, its memory is NOT counted against `memoryMb`. */
    wasm?: boolean;
  };
  /** Whether its processes may spawn processes on other nodes (all, none, or these nodes). */
  spawnRemote: boolean | string[];
}

export interface MailboxLimit {
  max: number;
  /** `drop`: the message that does not fit is dropped (and reported); `kill`: the receiver dies with `{ mailbox_overflow }`. */
  overflow: 'drop' | 'kill';
}

export interface Limits {
  /** Heap limit of the node in MiB (isolate `memoryLimit`; thread `resourceLimits.maxOldGenerationSizeMb`). */
  memoryMb?: number;
  /**
   * CPU time one scheduler slice may take, in ms. In an isolate node a longer slice is stopped and
   * the process that was running is killed with `{ cpu_limit }`; the node lives on.
   */
  cpuMsPerSlice?: number;
  mailbox?: MailboxLimit;
  /** Largest message a process may send, estimated in bytes. */
  maxMessageBytes?: number;
}

export const ALL: Capabilities = {
  sendTo: '*',
  modules: '*',
  aliases: {},
  services: { console: true, clock: true, random: true, functions: '*' },
  spawnRemote: true,
};

export function allows(list: '*' | string[], name: string): boolean {
  return list === '*' || list.includes(name);
}

const nameList = (value: unknown, field: string): '*' | string[] => {
  if (value === '*') return '*';
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return [...value];
  throw new BadArgument(`capabilities.${field} must be '*' or a list of names, got ${JSON.stringify(value)}`);
};

/** Fills in defaults (everything granted) and checks every field. */
export function checkCapabilities(value: Partial<Capabilities> | undefined): Capabilities {
  if (value === undefined) return ALL;
  if (!value || typeof value !== 'object') throw new BadArgument('capabilities must be an object');
  const services = value.services ?? ALL.services;
  if (typeof services !== 'object' || services === null) throw new BadArgument('capabilities.services must be an object');
  const s = services as Partial<Capabilities['services']>;
  for (const flag of ['console', 'clock', 'random', 'wasm'] as const) {
    if (s[flag] !== undefined && typeof s[flag] !== 'boolean') throw new BadArgument(`capabilities.services.${flag} must be a boolean`);
  }
  const aliases = value.aliases ?? {};
  if (typeof aliases !== 'object' || aliases === null || Object.values(aliases).some((v) => typeof v !== 'string')) {
    throw new BadArgument('capabilities.aliases must map names to module names');
  }
  const spawnRemote = value.spawnRemote ?? true;
  if (typeof spawnRemote !== 'boolean') nameList(spawnRemote, 'spawnRemote');
  return {
    sendTo: nameList(value.sendTo ?? '*', 'sendTo'),
    modules: nameList(value.modules ?? '*', 'modules'),
    aliases: { ...aliases },
    services: {
      console: s.console ?? true,
      clock: s.clock ?? true,
      random: s.random ?? true,
      functions: nameList(s.functions ?? '*', 'services.functions'),
      ...(s.wasm ? { wasm: true } : {}),
    },
    spawnRemote,
  };
}

export function checkLimits(value: Limits | undefined): Limits {
  if (value === undefined) return {};
  if (!value || typeof value !== 'object') throw new BadArgument('limits must be an object');
  const positive = (n: unknown, field: string): void => {
    if (n !== undefined && !(typeof n === 'number' && n > 0 && Number.isFinite(n))) throw new BadArgument(`limits.${field} must be a number > 0, got ${JSON.stringify(n)}`);
  };
  positive(value.memoryMb, 'memoryMb');
  positive(value.cpuMsPerSlice, 'cpuMsPerSlice');
  positive(value.maxMessageBytes, 'maxMessageBytes');
  if (value.mailbox !== undefined) {
    positive(value.mailbox?.max, 'mailbox.max');
    if (value.mailbox.overflow !== 'drop' && value.mailbox.overflow !== 'kill') throw new BadArgument(`limits.mailbox.overflow must be 'drop' or 'kill'`);
  }
  return { ...value };
}
