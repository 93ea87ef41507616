import type { Executor } from './common.js';

export interface SigningKeyRecord {
  kid: string;
  /** What the key signs: `assertion` (X-Applinks-Assertion), `oauth1-consumer` (our RSA consumer key)... */
  purpose: string;
  alg: string;
  publicJwk: Record<string, unknown>;
  privateSealed: string;
  createdAt: number;
  retiredAt: number | null;
}

/**
 * Asymmetric keys of this installation, private halves sealed. Listed oldest first: the active
 * key of a purpose is the oldest one not retired, so instances that start at once and each
 * insert a key still agree on which one signs.
 */
export interface SigningKeyRepository {
  list(purpose?: string): Promise<SigningKeyRecord[]>;
  insert(key: SigningKeyRecord): Promise<void>;
  retire(kid: string, at: number): Promise<void>;
  setPrivateSealed(kid: string, privateSealed: string): Promise<void>;
}

export class KyselySigningKeyRepository implements SigningKeyRepository {
  constructor(private readonly db: Executor) {}

  async list(purpose?: string): Promise<SigningKeyRecord[]> {
    let q = this.db.selectFrom('signing_keys').selectAll();
    if (purpose) q = q.where('purpose', '=', purpose);
    const rows = await q.orderBy('created_at').orderBy('kid').execute();
    return rows.map((r) => ({
      kid: r.kid,
      purpose: r.purpose,
      alg: r.alg,
      publicJwk: JSON.parse(r.public_jwk) as Record<string, unknown>,
      privateSealed: r.private_sealed,
      createdAt: Number(r.created_at),
      retiredAt: r.retired_at === null ? null : Number(r.retired_at),
    }));
  }

  async insert(k: SigningKeyRecord): Promise<void> {
    await this.db
      .insertInto('signing_keys')
      .values({
        kid: k.kid,
        purpose: k.purpose,
        alg: k.alg,
        public_jwk: JSON.stringify(k.publicJwk),
        private_sealed: k.privateSealed,
        created_at: k.createdAt,
        retired_at: k.retiredAt,
      })
      .execute();
  }

  async retire(kid: string, at: number): Promise<void> {
    await this.db.updateTable('signing_keys').set({ retired_at: at }).where('kid', '=', kid).execute();
  }

  async setPrivateSealed(kid: string, privateSealed: string): Promise<void> {
    await this.db.updateTable('signing_keys').set({ private_sealed: privateSealed }).where('kid', '=', kid).execute();
  }
}
