import { generateKeyPairSync, createPrivateKey, type KeyObject } from 'node:crypto';
import { sql, type Transaction } from 'kysely';
import { Keyring, SEALED_PREFIX_LENGTH, SealError } from '../crypto/keyring.js';
import type { Executor } from '../storage/repositories/common.js';
import type { SigningKeyRecord } from '../storage/repositories/signing-keys.js';
import type { Database } from '../storage/schema.js';
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
   * Re-seals every value not sealed under the keyring's current key (by default this instance's
   * keyring), in one transaction, and then counts, in the same transaction, the values each key
   * id still seals. Only values under another key are read (picked by their `v1.<kid>.` prefix).
   * A value that cannot be opened (sealed under a key the keyring lacks, damaged, or copied to
   * another row) is left as it is and reported, rather than failing the whole re-seal.
   * `fence` runs first inside the transaction (a rotation checks there that it still holds its
   * lease); throwing from it rolls everything back.
   */
  async reseal(keyring: Keyring = this.keyring, options: { fence?: (trx: Transaction<Database>) => Promise<void> } = {}): Promise<ResealReport> {
    this.keyring = keyring;
    const prefix = Keyring.sealedPrefix(keyring.currentKid);
    const resealed = new Map<string, number>();
    const unreadable = new Map<string, { where: string; kid: string; problem: string; count: number }>();
    let census: SealedCount[] = [];
    await this.store.db.transaction().execute(async (trx) => {
      await options.fence?.(trx);
      for (const col of this.sealedColumns) {
        const where = `${col.table}.${col.column}`;
        const rows = (
          await sql<Record<string, unknown>>`select ${sql.join(col.keyColumns.map((c) => sql.ref(c)))}, ${sql.ref(col.column)} as sealed from ${sql.table(col.table)} where ${sql.ref(col.column)} is not null${only(col)} and substr(${sql.ref(col.column)}, 1, ${SEALED_PREFIX_LENGTH}) <> ${prefix}`.execute(trx)
        ).rows;
        for (const row of rows) {
          const sealed = String(row.sealed);
          let value: string;
          try {
            value = keyring.open(sealed, col.context(row));
          } catch (error) {
            if (!(error instanceof SealError)) throw error;
            const kid = keyring.kidOfSealed(sealed) ?? '';
            const key = `${where} ${kid} ${error.message}`;
            const entry = unreadable.get(key) ?? { where, kid, problem: error.message, count: 0 };
            entry.count++;
            unreadable.set(key, entry);
            continue;
          }
          const match = sql.join(col.keyColumns.map((c) => sql`${sql.ref(c)} = ${row[c]}`), sql` and `);
          // Only as read: a value written meanwhile (a new secret, sealed under the current key by
          // the instance that wrote it) is never replaced by the old one re-sealed.
          const r = await sql`update ${sql.table(col.table)} set ${sql.ref(col.column)} = ${keyring.seal(value, col.context(row))} where ${match} and ${sql.ref(col.column)} = ${sealed}`.execute(trx);
          if (Number(r.numAffectedRows ?? 0) > 0) resealed.set(where, (resealed.get(where) ?? 0) + 1);
        }
      }
      census = await this.countSealed(trx);
    });
    this.active.clear();
    await this.store.capabilities.purgeOldVersions(this.store.db);
    const perColumn = [...resealed].map(([where, count]) => ({ where, count }));
    return { resealed: perColumn.reduce((n, c) => n + c.count, 0), perColumn, unreadable: [...unreadable.values()], census };
  }

  /** How many values each key id seals, per sealed column, read from the values' prefixes (nothing is opened). */
  async countSealed(executor: Executor = this.store.db): Promise<SealedCount[]> {
    const counts: SealedCount[] = [];
    for (const col of this.sealedColumns) {
      const rows = (
        await sql<{ prefix: string; n: number | string }>`select substr(${sql.ref(col.column)}, 1, ${sql.lit(SEALED_PREFIX_LENGTH)}) as prefix, count(*) as n from ${sql.table(col.table)} where ${sql.ref(col.column)} is not null${only(col)} group by 1 order by 1`.execute(executor)
      ).rows;
      for (const row of rows) {
        const kid = /^v1\.([A-Za-z0-9_-]+)\.$/.exec(row.prefix)?.[1] ?? '(not a sealed value)';
        counts.push({ where: `${col.table}.${col.column}`, kid, count: Number(row.n) });
      }
    }
    return counts;
  }
}

/** Values of one sealed column under one key id. */
export interface SealedCount {
  /** `table.column`. */
  where: string;
  kid: string;
  count: number;
}

export interface ResealReport {
  /** How many values were re-sealed under the current key. */
  resealed: number;
  perColumn: Array<{ where: string; count: number }>;
  /** Values that could not be opened, left as they were, grouped by column, key id and reason. */
  unreadable: Array<{ where: string; kid: string; problem: string; count: number }>;
  /** After re-sealing: the values each key id seals, per column. */
  census: SealedCount[];
}

/** The condition that keeps a mixed table's rows to its sealed ones (meta's `sealed:` keys). */
function only(col: SealedColumn) {
  return col.keyPrefix ? sql` and ${sql.ref(col.keyPrefix.column)} like ${`${col.keyPrefix.prefix}%`}` : sql``;
}
