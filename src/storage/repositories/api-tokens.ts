import type { Selectable } from 'kysely';
import type { ApiTokensTable } from '../schema.js';
import type { Executor } from './common.js';

export interface ApiTokenRecord {
  id: string;
  userId: string;
  name: string;
  tokenHash: string;
  createdAt: number;
  expiresAt: number | null;
  lastUsedAt: number | null;
  /** The application link this token was issued for, if any. */
  linkId: string | null;
}

/**
 * Personal API tokens, stored only as hashes. `delete` with a userId deletes only that user's
 * token (answers false otherwise). `touch` records last use for many tokens in one go and never
 * moves a time backwards.
 */
export interface ApiTokenRepository {
  create(token: ApiTokenRecord): Promise<void>;
  findByHash(tokenHash: string): Promise<ApiTokenRecord | undefined>;
  findById(id: string): Promise<ApiTokenRecord | undefined>;
  listForUser(userId: string): Promise<ApiTokenRecord[]>;
  delete(id: string, userId?: string): Promise<boolean>;
  deleteForUser(userId: string): Promise<number>;
  /** Deletes every token issued for a link; answers how many. */
  deleteForLink(linkId: string): Promise<number>;
  touch(lastUsed: ReadonlyMap<string, number>): Promise<void>;
}

export class KyselyApiTokenRepository implements ApiTokenRepository {
  constructor(private readonly db: Executor) {}

  async create(t: ApiTokenRecord): Promise<void> {
    await this.db
      .insertInto('api_tokens')
      .values({ id: t.id, user_id: t.userId, name: t.name, token_hash: t.tokenHash, created_at: t.createdAt, expires_at: t.expiresAt, last_used_at: t.lastUsedAt, link_id: t.linkId })
      .execute();
  }

  async findByHash(tokenHash: string): Promise<ApiTokenRecord | undefined> {
    const row = await this.db.selectFrom('api_tokens').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
    return row ? toRecord(row) : undefined;
  }

  async findById(id: string): Promise<ApiTokenRecord | undefined> {
    const row = await this.db.selectFrom('api_tokens').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toRecord(row) : undefined;
  }

  async listForUser(userId: string): Promise<ApiTokenRecord[]> {
    const rows = await this.db.selectFrom('api_tokens').selectAll().where('user_id', '=', userId).orderBy('created_at', 'desc').execute();
    return rows.map(toRecord);
  }

  async delete(id: string, userId?: string): Promise<boolean> {
    let q = this.db.deleteFrom('api_tokens').where('id', '=', id);
    if (userId !== undefined) q = q.where('user_id', '=', userId);
    const r = await q.executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async deleteForUser(userId: string): Promise<number> {
    const r = await this.db.deleteFrom('api_tokens').where('user_id', '=', userId).executeTakeFirst();
    return Number(r.numDeletedRows);
  }

  async deleteForLink(linkId: string): Promise<number> {
    const r = await this.db.deleteFrom('api_tokens').where('link_id', '=', linkId).executeTakeFirst();
    return Number(r.numDeletedRows);
  }

  async touch(lastUsed: ReadonlyMap<string, number>): Promise<void> {
    for (const [id, at] of lastUsed) {
      await this.db
        .updateTable('api_tokens')
        .set({ last_used_at: at })
        .where('id', '=', id)
        .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<', at)]))
        .execute();
    }
  }
}

function toRecord(row: Selectable<ApiTokensTable>): ApiTokenRecord {
  return {
    id: row.id,
    userId: row.user_id,
    name: row.name,
    tokenHash: row.token_hash,
    createdAt: Number(row.created_at),
    expiresAt: row.expires_at === null ? null : Number(row.expires_at),
    lastUsedAt: row.last_used_at === null ? null : Number(row.last_used_at),
    linkId: row.link_id,
  };
}
