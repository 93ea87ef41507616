import { generateKeyPairSync, createPrivateKey, type KeyObject } from 'node:crypto';
import { sql } from 'kysely';
import { Keyring } from '../crypto/keyring.js';
import type { SigningKeyRecord } from '../storage/repositories/signing-keys.js';
import type { Store } from '../storage/store.js';
import type { Clock } from '../util/clock.js';

/** A column holding sealed values, and how to rebuild each value's sealing context from its row. */
export interface SealedColumn {
  table: string;
  keyColumns: readonly string[];
  column: string;
  /** Only rows whose `column` starts with this prefix hold sealed values (for mixed tables like meta). */
  keyPrefix?: { column: string; prefix: string };
  context(row: Record<string, unknown>): string;
}

/** The sealed columns of the core schema; protocol modules add theirs through `sealedColumns`. */
export const CORE_SEALED_COLUMNS: readonly SealedColumn[] = [
  {
    table: 'link_auth',
    keyColumns: ['link_id', 'direction', 'type'],
    column: 'secrets_sealed',
    context: (r) => `link_auth.secrets_sealed:${String(r.link_id)}/${String(r.direction)}/${String(r.type)}`,
  },
  { table: 'signing_keys', keyColumns: ['kid'], column: 'private_sealed', context: (r) => `signing_keys.private_sealed:${String(r.kid)}` },
  { table: 'meta', keyColumns: ['key'], column: 'value', keyPrefix: { column: 'key', prefix: 'sealed:' }, context: (r) => `meta.value:${String(r.key)}` },
];

export interface ActiveKey {
  record: SigningKeyRecord;
  privateKey: KeyObject;
}

/**
 * This installation's asymmetric keys (the assertion signing key now; the OAuth 1.0a consumer
 * key later), generated on first use and shared by every instance through the store, and the
 * re-sealing of every secret under a new master key.
 */
export class KeyService {
  private readonly active = new Map<string, Promise<ActiveKey>>();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private keyring: Keyring,
    private readonly sealedColumns: readonly SealedColumn[],
  ) {}

  /** The active key of a purpose, created when there is none. */
  activeKey(purpose: string, alg: 'ES256' | 'RS256'): Promise<ActiveKey> {
    let pending = this.active.get(purpose);
    if (!pending) {
      pending = this.loadOrCreate(purpose, alg);
      pending.catch(() => this.active.delete(purpose));
      this.active.set(purpose, pending);
    }
    return pending;
  }

  /** Public keys of a purpose that are not retired, as a JWKS. */
  async jwks(purpose: string): Promise<{ keys: Record<string, unknown>[] }> {
    const keys = await this.store.signingKeys.list(purpose);
    return { keys: keys.filter((k) => k.retiredAt === null).map((k) => ({ ...k.publicJwk, kid: k.kid, alg: k.alg, use: 'sig' })) };
  }

  private async loadOrCreate(purpose: string, alg: 'ES256' | 'RS256'): Promise<ActiveKey> {
    let record = (await this.store.signingKeys.list(purpose)).find((k) => k.retiredAt === null);
    if (!record) {
      const pair =
        alg === 'ES256'
          ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
          : generateKeyPairSync('rsa', { modulusLength: 2048 });
      const publicJwk = pair.publicKey.export({ format: 'jwk' }) as Record<string, unknown>;
      const kid = Keyring.kidOf(Buffer.from(JSON.stringify(publicJwk)));
      const pem = pair.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
      await this.store.signingKeys.insert({
        kid,
        purpose,
        alg,
        publicJwk,
        privateSealed: this.keyring.seal(pem, `signing_keys.private_sealed:${kid}`),
        createdAt: this.clock.now(),
        retiredAt: null,
      });
      // Instances that started together converge on the oldest key.
      record = (await this.store.signingKeys.list(purpose)).find((k) => k.retiredAt === null)!;
    }
    const pem = this.keyring.open(record.privateSealed, `signing_keys.private_sealed:${record.kid}`);
    return { record, privateKey: createPrivateKey(pem) };
  }

  /**
   * Re-seals every sealed value under the keyring's current key, in one transaction. Answers how
   * many values were rewritten.
   */
  async reseal(keyring: Keyring): Promise<number> {
    this.keyring = keyring;
    let count = 0;
    await this.store.db.transaction().execute(async (trx) => {
      for (const col of this.sealedColumns) {
        const only = col.keyPrefix ? sql` and ${sql.ref(col.keyPrefix.column)} like ${`${col.keyPrefix.prefix}%`}` : sql``;
        const rows = (
          await sql<Record<string, unknown>>`select ${sql.join(col.keyColumns.map((c) => sql.ref(c)))}, ${sql.ref(col.column)} as sealed from ${sql.table(col.table)} where ${sql.ref(col.column)} is not null${only}`.execute(trx)
        ).rows;
        for (const row of rows) {
          const sealed = String(row.sealed);
          if (keyring.kidOfSealed(sealed) === keyring.currentKid) continue;
          const resealed = keyring.seal(keyring.open(sealed, col.context(row)), col.context(row));
          const where = sql.join(col.keyColumns.map((c) => sql`${sql.ref(c)} = ${row[c]}`), sql` and `);
          await sql`update ${sql.table(col.table)} set ${sql.ref(col.column)} = ${resealed} where ${where}`.execute(trx);
          count++;
        }
      }
    });
    this.active.clear();
    await this.store.capabilities.purgeOldVersions(this.store.db);
    return count;
  }
}
