import type { Executor } from './common.js';

export interface AuditEntry {
  id: string;
  at: number;
  actorId: string | null;
  actorName: string | null;
  action: string;
  targetType: string | null;
  targetId: string | null;
  targetName: string | null;
  address: string | null;
  details: Record<string, unknown>;
}

export interface AuditQuery {
  limit: number;
  /** Entries strictly older than this entry id (ids are time-ordered UUIDv7). */
  before?: string;
  action?: string;
  targetId?: string;
}

/** Append-only audit log. Entries are listed newest first. Callers never put secrets in details. */
export interface AuditRepository {
  append(entry: AuditEntry): Promise<void>;
  list(query: AuditQuery): Promise<AuditEntry[]>;
}

export class KyselyAuditRepository implements AuditRepository {
  constructor(private readonly db: Executor) {}

  async append(e: AuditEntry): Promise<void> {
    await this.db
      .insertInto('audit_log')
      .values({
        id: e.id,
        at: e.at,
        actor_id: e.actorId,
        actor_name: e.actorName,
        action: e.action,
        target_type: e.targetType,
        target_id: e.targetId,
        target_name: e.targetName,
        address: e.address,
        details: JSON.stringify(e.details),
      })
      .execute();
  }

  async list(q: AuditQuery): Promise<AuditEntry[]> {
    let query = this.db.selectFrom('audit_log').selectAll();
    if (q.before) query = query.where('id', '<', q.before);
    if (q.action) query = query.where('action', '=', q.action);
    if (q.targetId) query = query.where('target_id', '=', q.targetId);
    const rows = await query.orderBy('id', 'desc').limit(q.limit).execute();
    return rows.map((r) => ({
      id: r.id,
      at: Number(r.at),
      actorId: r.actor_id,
      actorName: r.actor_name,
      action: r.action,
      targetType: r.target_type,
      targetId: r.target_id,
      targetName: r.target_name,
      address: r.address,
      details: JSON.parse(r.details) as Record<string, unknown>,
    }));
  }
}
