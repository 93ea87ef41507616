import { affectedRows, deleteInBatches, type Executor } from './common.js';

export interface SessionRecord {
  idHash: string;
  userId: string;
  createdAt: number;
  expiresAt: number;
  address: string | null;
  userAgent: string | null;
}

/**
 * Sign-in sessions, keyed by the hash of the cookie value. `find` returns expired sessions too;
 * the caller decides (and deletes them).
 */
export interface SessionRepository {
  create(session: SessionRecord): Promise<void>;
  find(idHash: string): Promise<SessionRecord | undefined>;
  delete(idHash: string): Promise<void>;
  deleteForUser(userId: string): Promise<number>;
  deleteExpired(now: number): Promise<number>;
}

export class KyselySessionRepository implements SessionRepository {
  constructor(private readonly db: Executor) {}

  async create(s: SessionRecord): Promise<void> {
    await this.db
      .insertInto('sessions')
      .values({ id_hash: s.idHash, user_id: s.userId, created_at: s.createdAt, expires_at: s.expiresAt, address: s.address, user_agent: s.userAgent })
      .execute();
  }

  async find(idHash: string): Promise<SessionRecord | undefined> {
    const row = await this.db.selectFrom('sessions').selectAll().where('id_hash', '=', idHash).executeTakeFirst();
    return row
      ? { idHash: row.id_hash, userId: row.user_id, createdAt: Number(row.created_at), expiresAt: Number(row.expires_at), address: row.address, userAgent: row.user_agent }
      : undefined;
  }

  async delete(idHash: string): Promise<void> {
    await this.db.deleteFrom('sessions').where('id_hash', '=', idHash).execute();
  }

  async deleteForUser(userId: string): Promise<number> {
    const r = await this.db.deleteFrom('sessions').where('user_id', '=', userId).executeTakeFirst();
    return Number(r.numDeletedRows);
  }

  async deleteExpired(now: number): Promise<number> {
    const db = this.db;
    return deleteInBatches(async (limit) =>
      affectedRows(await db.deleteFrom('sessions').where('id_hash', 'in', db.selectFrom('sessions').select('id_hash').where('expires_at', '<=', now).limit(limit)).executeTakeFirst()),
    );
  }
}
