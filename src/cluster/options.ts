/**
 * A host's cluster settings, the names it uses on NATS, and the connection (credentials passed
 * through as NATS takes them: user/password, token, an nkey seed, or a JWT `.creds` file).
 */
import { readFileSync } from 'node:fs';
import { connect, credsAuthenticator, nkeyAuthenticator, type NatsConnection, type NodeConnectionOptions } from '@nats-io/transport-node';
import { BadArgument, ClusterNotAuthorized, ClusterUnavailable, SubnodeError } from '../errors.js';
import { names } from '../net/subjects.js';
import { NODE_NAME } from '../kernel/pid.js';

export type ClusterCredentials =
  | { user: string; pass: string }
  | { token: string }
  /** An nkey seed (`SU…`), as text or the path of a file holding it. */
  | { nkeySeed: string }
  /** The path of a `.creds` file (a user JWT and its nkey seed, as `nsc` writes it). */
  | { credsFile: string };

export interface ClusterOptions {
  /** NATS server URLs (`nats://host:4222`), one or several of the same NATS cluster. */
  servers: string | string[];
  /** This host's name: unique in the cluster, letters, digits, _ and - (it names subjects and pids). */
  name: string;
  /** The cluster's namespace on NATS (subjects and buckets), so one NATS can hold several (default 'subnode'). */
  cluster?: string;
  credentials?: ClusterCredentials;
  /** How often this host says it is alive (default 500 ms). */
  heartbeatMs?: number;
  /** A host not heard from for this long is gone: its nodes are down with `noconnection` (default 3000 ms). */
  deadAfterMs?: number;
  /** Deadline of a control operation on a node of another host (default 15 s). */
  requestTimeoutMs?: number;
  /** Envelopes held for other hosts while NATS is unreachable; past this, new ones are dropped and reported (default 100,000). */
  maxPendingEnvelopes?: number;
  /** Batches waiting in this host's inbound subscription before a `slow_consumer` event (default 2,000). */
  slowPendingBatches?: number;
}

export interface Settings {
  host: string;
  cluster: string;
  heartbeatMs: number;
  deadAfterMs: number;
  requestTimeoutMs: number;
  maxPendingEnvelopes: number;
  slowPendingBatches: number;
}

/** The option names, for the unknown-field check. */
const OPTION_KEYS: readonly (keyof ClusterOptions)[] = [
  'servers',
  'name',
  'cluster',
  'credentials',
  'heartbeatMs',
  'deadAfterMs',
  'requestTimeoutMs',
  'maxPendingEnvelopes',
  'slowPendingBatches',
];

/** Each kind of credentials with its fields (all strings). */
const CREDENTIAL_KINDS: readonly (readonly string[])[] = [['user', 'pass'], ['token'], ['nkeySeed'], ['credsFile']];

export function checkOptions(options: ClusterOptions): Settings {
  if (!options || typeof options !== 'object') throw new BadArgument('cluster: expected { servers, name, credentials? }');
  const unknown = Object.keys(options).filter((k) => !(OPTION_KEYS as string[]).includes(k));
  if (unknown.length) throw new BadArgument(`cluster: unknown option${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} (known: ${OPTION_KEYS.join(', ')})`);
  checkCredentials(options.credentials);
  const { name } = options;
  if (typeof name !== 'string' || !NODE_NAME.test(name)) throw new BadArgument(`cluster: bad host name ${JSON.stringify(name)}: letters, digits, _ and -`);
  const cluster = options.cluster ?? 'subnode';
  if (!NODE_NAME.test(cluster)) throw new BadArgument(`cluster: bad cluster name ${JSON.stringify(cluster)}`);
  const servers = Array.isArray(options.servers) ? options.servers : [options.servers];
  if (!servers.length || servers.some((s) => typeof s !== 'string' || !s)) throw new BadArgument('cluster: servers must be one or more NATS URLs');
  const heartbeatMs = options.heartbeatMs ?? 500;
  const deadAfterMs = options.deadAfterMs ?? 3_000;
  if (!(heartbeatMs >= 10) || !(deadAfterMs >= 2 * heartbeatMs)) throw new BadArgument('cluster: heartbeatMs >= 10 and deadAfterMs >= 2 x heartbeatMs');
  return {
    host: name,
    cluster,
    heartbeatMs,
    deadAfterMs,
    requestTimeoutMs: options.requestTimeoutMs ?? 15_000,
    maxPendingEnvelopes: options.maxPendingEnvelopes ?? 100_000,
    slowPendingBatches: options.slowPendingBatches ?? 2_000,
  };
}

function checkCredentials(c: unknown): void {
  if (c === undefined) return;
  const keys = c && typeof c === 'object' ? Object.keys(c).sort() : undefined;
  const kind = keys && CREDENTIAL_KINDS.find((k) => [...k].sort().join() === keys.join());
  if (!kind || kind.some((k) => typeof (c as Record<string, unknown>)[k] !== 'string' || !(c as Record<string, string>)[k]))
    throw new BadArgument('cluster: credentials must be one of { user, pass }, { token }, { nkeySeed } or { credsFile }, with non-empty strings');
}

/**
 * Credentials from a file (the CLI's `--credentials FILE`, so no secret is on a command line): a
 * JWT `.creds` file, a file holding an nkey seed (`SU…`), or JSON `{ user, pass }` / `{ token }`.
 */
export function credentialsFromFile(path: string): ClusterCredentials {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new BadArgument(`cluster: cannot read the credentials file ${path} (${(error as NodeJS.ErrnoException).code ?? error})`);
  }
  if (text.includes('BEGIN NATS USER JWT')) return { credsFile: path };
  if (/^\s*SU[A-Z2-7]{50,}\s*$/.test(text)) return { nkeySeed: path };
  try {
    const parsed = JSON.parse(text) as ClusterCredentials;
    checkCredentials(parsed);
    return parsed;
  } catch {
    throw new BadArgument(`cluster: ${path} is not a .creds file, an nkey seed, or JSON { user, pass } / { token }`);
  }
}

export { names, type Names } from '../net/subjects.js';

/** A failure while connecting or joining, as a typed error naming the cause. */
export function joinError(error: unknown, servers: string[], host: string): SubnodeError {
  if (error instanceof SubnodeError) return error;
  const e = error as Error;
  const text = `${e?.name ?? ''}: ${e?.message ?? String(error)}`;
  const details = { servers, host, cause: e?.message ?? String(error) };
  if (/authoriz|authenticat|auth.*(expired|revoked)|permission/i.test(text))
    return new ClusterNotAuthorized(`cluster: NATS refused host '${host}' (${e?.message}): check its credentials and permissions`, details);
  return new ClusterUnavailable(`cluster: host '${host}' could not join through ${servers.join(', ')}: ${e?.message ?? error}`, details);
}

/** A host's connection to NATS, or (`node`) the one a node of it opens on its own thread (src/node/nats-endpoint.ts). */
export async function connectNats(options: ClusterOptions, settings: Settings, node?: string, timeoutMs?: number): Promise<NatsConnection> {
  const servers = Array.isArray(options.servers) ? options.servers : [options.servers];
  const { host, cluster } = settings;
  const base: NodeConnectionOptions = {
    servers,
    name: `subnode:${cluster}:${host}${node === undefined ? '' : `:${node}`}`,
    // Replies (requests, JetStream) come to this host's own inbox subjects, which only it may read.
    inboxPrefix: names(cluster).inbox(host),
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    pingInterval: 2_000,
    ...(timeoutMs === undefined ? {} : { timeout: timeoutMs }),
  };
  try {
    const c = options.credentials;
    if (c && 'user' in c) Object.assign(base, { user: c.user, pass: c.pass });
    else if (c && 'token' in c) base.token = c.token;
    else if (c && 'nkeySeed' in c) base.authenticator = nkeyAuthenticator(new TextEncoder().encode(seedText(c.nkeySeed)));
    else if (c && 'credsFile' in c) base.authenticator = credsAuthenticator(new Uint8Array(readCredentials(c.credsFile)));
    return await connect(base);
  } catch (error) {
    throw joinError(error, servers, host);
  }
}

/** A connection for a store on NATS (release or state store): `kind` names it to the server. */
export function connectStore(kind: string, options: { servers?: string | string[]; credentials?: ClusterCredentials }): Promise<NatsConnection> {
  const settings = { servers: options.servers!, name: kind, ...(options.credentials ? { credentials: options.credentials } : {}) };
  return connectNats(settings, checkOptions(settings));
}

function seedText(seed: string): string {
  return /^\s*S[A-Z2-7]{50,}\s*$/.test(seed) ? seed.trim() : readCredentials(seed).toString('utf8').trim();
}

function readCredentials(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new BadArgument(`cluster: cannot read the credentials file ${path} (${(error as NodeJS.ErrnoException).code ?? error})`);
  }
}
