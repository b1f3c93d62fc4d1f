/**
 * A host's cluster settings, the names it uses on NATS, and the connection (credentials passed
 * through as NATS takes them: user/password, token, an nkey seed, or a JWT `.creds` file).
 */
import { readFileSync } from 'node:fs';
import { connect, credsAuthenticator, nkeyAuthenticator, type NatsConnection, type NodeConnectionOptions } from '@nats-io/transport-node';
import { BadArgument } from '../errors.js';
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

export function checkOptions(options: ClusterOptions): Settings {
  if (!options || typeof options !== 'object') throw new BadArgument('cluster: expected { servers, name, credentials? }');
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

/** Subjects and buckets of one cluster. Every host publishes only under names it owns (see README: permissions). */
export function names(cluster: string) {
  const prefix = `subnode.${cluster}`;
  return {
    /** Batches of envelopes for the nodes of `host`. */
    data: (host: string) => `${prefix}.data.${host}`,
    /** Control requests for the nodes of `host` (request/reply). */
    control: (host: string) => `${prefix}.ctl.${host}`,
    /** Hosts alive: key = host, value = its nodes; entries expire when heartbeats stop. */
    hostsBucket: `subnode_${cluster}_hosts`,
    /** Node names: key = node, value = owning host and its creation counter. */
    nodesBucket: `subnode_${cluster}_nodes`,
    /** Global names: key = name (base64url), value = pid. */
    globalsBucket: `subnode_${cluster}_globals`,
    /** Compiled module code by content hash. */
    codeBucket: `subnode_${cluster}_code`,
  };
}

export type Names = ReturnType<typeof names>;

export async function connectNats(options: ClusterOptions, host: string): Promise<NatsConnection> {
  const servers = Array.isArray(options.servers) ? options.servers : [options.servers];
  const base: NodeConnectionOptions = {
    servers,
    name: `subnode:${options.cluster ?? 'subnode'}:${host}`,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    pingInterval: 2_000,
  };
  const c = options.credentials;
  if (c) {
    if ('user' in c) Object.assign(base, { user: c.user, pass: c.pass });
    else if ('token' in c) base.token = c.token;
    else if ('nkeySeed' in c) base.authenticator = nkeyAuthenticator(new TextEncoder().encode(seedText(c.nkeySeed)));
    else if ('credsFile' in c) base.authenticator = credsAuthenticator(new Uint8Array(readFileSync(c.credsFile)));
    else throw new BadArgument('cluster: credentials must be { user, pass }, { token }, { nkeySeed } or { credsFile }');
  }
  return connect(base);
}

function seedText(seed: string): string {
  return seed.startsWith('S') && !seed.includes('/') ? seed.trim() : readFileSync(seed, 'utf8').trim();
}
