/**
 * NATS decentralized auth (operator mode) for tests, without `nsc`: an operator, a system account,
 * an account with JetStream, and users whose JWTs carry their permissions, signed with nkeys
 * (`@nats-io/nkeys`) in the JWT v2 format nats-server checks (header `ed25519-nkey`, claims with
 * `jti` = base32 SHA-512/256 of the claims, signature over `header.claims`). `config()` is a
 * nats-server config with a memory resolver preloaded; `creds()` writes a user's `.creds` file.
 */
import { createHash } from 'node:crypto';
import { createAccount, createOperator, createUser, type KeyPair } from '@nats-io/nkeys';
import type { NatsPermissions } from '../../src/cluster/permissions.js';

const b64url = (bytes: Uint8Array | string): string => Buffer.from(bytes).toString('base64url');

function base32(bytes: Uint8Array): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return out;
}

function sign(issuer: KeyPair, subject: string, name: string, nats: Record<string, unknown>): string {
  const claims: Record<string, unknown> = {
    jti: '',
    iat: Math.floor(Date.now() / 1000),
    iss: issuer.getPublicKey(),
    name,
    sub: subject,
    nats: { ...nats, version: 2 },
  };
  claims.jti = base32(createHash('sha512-256').update(JSON.stringify(claims)).digest());
  const signed = `${b64url(JSON.stringify({ typ: 'JWT', alg: 'ed25519-nkey' }))}.${b64url(JSON.stringify(claims))}`;
  return `${signed}.${b64url(issuer.sign(new TextEncoder().encode(signed)))}`;
}

const UNLIMITED = { subs: -1, data: -1, payload: -1 };

export class Operator {
  private readonly operator = createOperator();
  private readonly system = createAccount();
  private readonly account = createAccount();

  /** A nats-server config (JSON) for this operator: the system account and one account with JetStream. */
  config(): Record<string, unknown> {
    const limits = { ...UNLIMITED, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 };
    const jetstream = { mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 };
    return {
      operator: sign(this.operator, this.operator.getPublicKey(), 'op', { type: 'operator', system_account: this.system.getPublicKey() }),
      system_account: this.system.getPublicKey(),
      resolver: 'MEMORY',
      // A user JWT carrying a host's permissions is ~4-5 KB, sent in the CONNECT line (4 KB by default).
      max_control_line: 16384,
      resolver_preload: {
        [this.system.getPublicKey()]: sign(this.operator, this.system.getPublicKey(), 'SYS', { type: 'account', limits }),
        [this.account.getPublicKey()]: sign(this.operator, this.account.getPublicKey(), 'subnode', { type: 'account', limits: { ...limits, ...jetstream } }),
      },
    };
  }

  /** A user of the account with these permissions, as the text of a `.creds` file. */
  creds(name: string, permissions: NatsPermissions): string {
    const user = createUser();
    const jwt = sign(this.account, user.getPublicKey(), name, {
      type: 'user',
      ...UNLIMITED,
      pub: permissions.publish,
      sub: permissions.subscribe,
      resp: { max: 1, ttl: 0 },
    });
    const seed = new TextDecoder().decode(user.getSeed());
    return `-----BEGIN NATS USER JWT-----\n${jwt}\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\n${seed}\n------END USER NKEY SEED------\n`;
  }
}
