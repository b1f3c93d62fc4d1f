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
    console: boolean;
    clock: boolean;
    random: boolean;
    functions: '*' | string[];
    /** WebAssembly in an isolate node (default false). When granted, its memory is NOT counted against `memoryMb`. */
    wasm?: boolean;
  };
  /** Whether its processes may spawn processes on other nodes (all, none, or these nodes). */
  spawnRemote: boolean | string[];
  /**
   * System-wide names its processes may register (`registerGlobal`): all, none, or these. A global
   * name draws every other node's messages for it, so a sandbox gets none unless granted.
   */
  globalNames: '*' | string[];
  /**
   * Keys under which its servers may keep durable state (`durable: { key, checkpoint }`): all,
   * none, or these. A checkpoint writes to the host's store, so a sandbox gets none unless granted.
   */
  durable: '*' | string[];
}

/** What kind of node a spec is for: the defaults differ (an isolate node is untrusted). */
export type NodeKindName = 'thread' | 'isolate';

/** Per-node bounds on calls to the host's services (`callHost`, `spawnOn`), enforced on the host. */
export interface HostCallLimit {
  /** Calls of this node the host runs at once; more are refused. */
  inFlight: number;
  /** Calls started per second (a token bucket holding a fifth of a second's worth); more are refused. */
  perSecond: number;
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
  /** Global names this node's processes may hold at once (checked in the kernel and on the host). */
  globalNames?: number;
  /** Host service calls (`callHost`, `spawnOn`) of this node, checked on the host; what is left out keeps its default. */
  hostCalls?: Partial<HostCallLimit>;
  /** Largest durable server state a checkpoint may save, estimated in bytes (default 1 MiB). */
  durableBytes?: number;
  /** Durable states (keys) the node may have stored at once (default 100 on an isolate node, 10,000 on a thread node). */
  durableStates?: number;
}

/** `limits.durableBytes` when not given. */
export const DEFAULT_DURABLE_BYTES = 2 ** 20;

/**
 * Defaults per kind of node. An isolate node is a sandbox: it registers no global name unless
 * granted, holds at most 100, and may run 16 host calls at once, 200 a second. A thread node is
 * trusted code (not a security boundary): any name, up to 1,000, and 256 calls at once, 5,000 a
 * second — bounds against a runaway loop, not an attacker.
 */
export const KIND_DEFAULTS: Record<
  NodeKindName,
  { globalNames: '*' | string[]; durable: '*' | string[]; limits: { globalNames: number; hostCalls: HostCallLimit; durableStates: number } }
> = {
  isolate: { globalNames: [], durable: [], limits: { globalNames: 100, hostCalls: { inFlight: 16, perSecond: 200 }, durableStates: 100 } },
  thread: { globalNames: '*', durable: '*', limits: { globalNames: 1_000, hostCalls: { inFlight: 256, perSecond: 5_000 }, durableStates: 10_000 } },
};

/** A kernel started without limits (tests, embedders): the thread defaults. */
export const DEFAULT_GLOBAL_NAMES = KIND_DEFAULTS.thread.limits.globalNames;

export const ALL: Capabilities = {
  sendTo: '*',
  modules: '*',
  aliases: {},
  services: { console: true, clock: true, random: true, functions: '*' },
  spawnRemote: true,
  globalNames: '*',
  durable: '*',
};

export function allows(list: '*' | string[], name: string): boolean {
  return list === '*' || list.includes(name);
}

const nameList = (value: unknown, field: string): '*' | string[] => {
  if (value === '*') return '*';
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return [...value];
  throw new BadArgument(`capabilities.${field} must be '*' or a list of names, got ${JSON.stringify(value)}`);
};

/** Fills in defaults (everything granted, but global names per kind) and checks every field. */
export function checkCapabilities(value: Partial<Capabilities> | undefined, kind: NodeKindName = 'thread'): Capabilities {
  const { globalNames, durable } = KIND_DEFAULTS[kind];
  if (value === undefined) return { ...ALL, globalNames, durable };
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
    globalNames: nameList(value.globalNames ?? globalNames, 'globalNames'),
    durable: nameList(value.durable ?? durable, 'durable'),
  };
}

/** Checks every field and fills in the per-kind defaults of the bounds the host enforces. */
export function checkLimits(value: Limits | undefined, kind: NodeKindName = 'thread'): Limits {
  const defaults = KIND_DEFAULTS[kind].limits;
  if (value === undefined) return { ...defaults };
  if (!value || typeof value !== 'object') throw new BadArgument('limits must be an object');
  const positive = (n: unknown, field: string): void => {
    if (n !== undefined && !(typeof n === 'number' && n > 0 && Number.isFinite(n)))
      throw new BadArgument(`limits.${field} must be a number > 0, got ${JSON.stringify(n)}`);
  };
  positive(value.memoryMb, 'memoryMb');
  positive(value.cpuMsPerSlice, 'cpuMsPerSlice');
  positive(value.maxMessageBytes, 'maxMessageBytes');
  positive(value.globalNames, 'globalNames');
  positive(value.durableBytes, 'durableBytes');
  positive(value.durableStates, 'durableStates');
  if (value.hostCalls !== undefined) {
    if (!value.hostCalls || typeof value.hostCalls !== 'object') throw new BadArgument('limits.hostCalls must be { inFlight, perSecond }');
    positive(value.hostCalls.inFlight, 'hostCalls.inFlight');
    positive(value.hostCalls.perSecond, 'hostCalls.perSecond');
  }
  if (value.mailbox !== undefined) {
    positive(value.mailbox?.max, 'mailbox.max');
    if (value.mailbox.overflow !== 'drop' && value.mailbox.overflow !== 'kill') throw new BadArgument(`limits.mailbox.overflow must be 'drop' or 'kill'`);
  }
  return {
    ...value,
    globalNames: value.globalNames ?? defaults.globalNames,
    durableStates: value.durableStates ?? defaults.durableStates,
    hostCalls: { ...defaults.hostCalls, ...value.hostCalls },
  };
}
