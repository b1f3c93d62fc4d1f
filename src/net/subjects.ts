/**
 * The names one cluster uses on NATS: subjects and buckets. Every subject a host publishes on ends
 * with its own name, so NATS permissions can hold it to publishing as itself
 * (src/cluster/permissions.ts). No NATS import here: the permissions can be computed without
 * loading the client.
 */
/** Subjects and buckets of one cluster. Every host publishes only under names it owns (see README: permissions). */
export function names(cluster: string) {
  const prefix = `subnode.${cluster}`;
  return {
    /** Batches for host `to`'s own mailboxes, and its notices, sent by host `from` (`*` to subscribe to every sender). */
    data: (to: string, from: string) => `${prefix}.data.${to}.${from}`,
    /**
     * Batches for node `node` of host `to`, sent by host `from` (its main thread or one of its
     * nodes' threads). A node's thread reads its own subject (a dense node's, its host's).
     */
    node: (to: string, node: string, from: string) => `${prefix}.node.${to}.${node}.${from}`,
    /** Control requests for the nodes of host `to` from host `from` (request/reply). */
    control: (to: string, from: string) => `${prefix}.ctl.${to}.${from}`,
    /** Where replies to `host` arrive (its connection's inbox prefix): only `host` may subscribe there. */
    inbox: (host: string) => `_INBOX_subnode.${cluster}.${host}`,
    /** Hosts alive: key = host, value = its nodes; entries expire when heartbeats stop. */
    hostsBucket: `subnode_${cluster}_hosts`,
    /** Node names: key = node, value = owning host and its creation counter. */
    nodesBucket: `subnode_${cluster}_nodes`,
    /** Global names: key = name (base64url), value = pid. */
    globalsBucket: `subnode_${cluster}_globals`,
    /** Module names → the SHA-256 of the source text loaded last on any host (in the code bucket). */
    modulesBucket: `subnode_${cluster}_modules`,
    /** Module code (compiled, and source text) by content hash. */
    codeBucket: `subnode_${cluster}_code`,
    /** Control messages too large for one NATS message, under fresh names; they expire on their own. */
    spillBucket: `subnode_${cluster}_spill`,
  };
}

export type Names = ReturnType<typeof names>;

/** The host that published on `subject`: its last token (NATS permissions hold a host to its own, README: security). */
export const senderOf = (subject: string): string => subject.slice(subject.lastIndexOf('.') + 1);
