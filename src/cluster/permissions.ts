/**
 * The NATS permissions one host of a cluster needs, and no more (its nodes' threads connect as
 * the host, with the same): it publishes data and control requests only on subjects that end with
 * its own name, heartbeats only under its own key, reads
 * only its own data, control requests and inbox, and reaches JetStream only for the cluster's
 * buckets (never to delete, purge or reconfigure them). Put the result in the NATS server's
 * config as a user's `permissions` (user/password, nkey, or a JWT user's pub/sub limits). The
 * tests start a nats-server with exactly these (test/cluster-security.test.ts).
 *
 * In operator mode a user JWT holding these grants is ~4-5 KB, and a client sends its JWT in the
 * CONNECT line, which nats-server caps at 4 KB by default: set `max_control_line: 16KB` in the
 * server's config (or keep the grants in a scoped signing key's template instead of each JWT).
 */
import { names } from '../net/subjects.js';

export interface NatsPermissions {
  publish: { allow: string[] };
  subscribe: { allow: string[] };
  /** Lets the host answer control requests from other hosts (publish to their reply subjects, once each). */
  allow_responses: true;
}

export function hostPermissions(host: string, cluster = 'subnode'): NatsPermissions {
  const n = names(cluster);
  const kv = [n.hostsBucket, n.nodesBucket, n.globalsBucket, n.modulesBucket].map((b) => `KV_${b}`);
  const streams = [...kv, `OBJ_${n.codeBucket}`, `OBJ_${n.spillBucket}`];
  return {
    publish: {
      allow: [
        n.data('*', host),
        n.node('*', '*', host),
        n.control('*', host),
        `$KV.${n.hostsBucket}.${host}`,
        `$KV.${n.nodesBucket}.>`,
        `$KV.${n.globalsBucket}.>`,
        `$KV.${n.modulesBucket}.>`,
        `$O.${n.codeBucket}.>`,
        `$O.${n.spillBucket}.>`,
        '$JS.API.INFO',
        ...streams.flatMap((s) => [
          `$JS.API.STREAM.CREATE.${s}`,
          `$JS.API.STREAM.INFO.${s}`,
          `$JS.API.STREAM.MSG.GET.${s}`,
          `$JS.API.DIRECT.GET.${s}`,
          `$JS.API.DIRECT.GET.${s}.>`,
          `$JS.API.CONSUMER.*.${s}`,
          `$JS.API.CONSUMER.*.${s}.>`,
          `$JS.API.CONSUMER.MSG.NEXT.${s}.>`,
          `$JS.FC.${s}.>`,
        ]),
      ],
    },
    subscribe: { allow: [n.data(host, '*'), n.node(host, '*', '*'), n.control(host, '*'), `${n.inbox(host)}.>`] },
    allow_responses: true,
  };
}
