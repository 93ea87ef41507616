import type { Executor } from './common.js';

export interface InstanceRecord {
  id: string;
  host: string;
  pid: number;
  /** Where the instance's master keys come from: the key file it follows, or APPLINKS_MASTER_KEY. */
  keySource: 'file' | 'env';
  sealingKid: string;
  /** Every key id the instance can open with, the sealing one first. */
  kids: string[];
  startedAt: number;
  seenAt: number;
  /** See processScope(): lets a process in the same scope see that the instance has exited. */
  scope?: string | undefined;
}

/**
 * The serving processes on this store and the master keys each holds. Contracts: `report`
 * inserts or replaces the instance's row; `list` answers every row, stale ones included (the
 * caller decides what is live by `seenAt`); `forgetSeenBefore` deletes instances that stopped
 * without saying so.
 */
export interface InstanceRepository {
  report(instance: InstanceRecord): Promise<void>;
  list(): Promise<InstanceRecord[]>;
  remove(id: string): Promise<void>;
  forgetSeenBefore(time: number): Promise<void>;
}

export class KyselyInstanceRepository implements InstanceRepository {
  constructor(private readonly db: Executor) {}

  async report(i: InstanceRecord): Promise<void> {
    const values = {
      id: i.id,
      host: i.host,
      pid: i.pid,
      key_source: i.keySource,
      sealing_kid: i.sealingKid,
      kids: i.kids.join(','),
      started_at: i.startedAt,
      seen_at: i.seenAt,
      scope: i.scope ?? null,
    };
    await this.db
      .insertInto('instances')
      .values(values)
      .onConflict((oc) => oc.column('id').doUpdateSet({ sealing_kid: values.sealing_kid, kids: values.kids, seen_at: values.seen_at }))
      .execute();
  }

  async list(): Promise<InstanceRecord[]> {
    const rows = await this.db.selectFrom('instances').selectAll().orderBy('started_at').orderBy('id').execute();
    return rows.map((r) => ({
      id: r.id,
      host: r.host,
      pid: Number(r.pid),
      keySource: r.key_source === 'env' ? 'env' : 'file',
      sealingKid: r.sealing_kid,
      kids: r.kids.split(',').filter(Boolean),
      startedAt: Number(r.started_at),
      seenAt: Number(r.seen_at),
      ...(r.scope ? { scope: r.scope } : {}),
    }));
  }

  async remove(id: string): Promise<void> {
    await this.db.deleteFrom('instances').where('id', '=', id).execute();
  }

  async forgetSeenBefore(time: number): Promise<void> {
    await this.db.deleteFrom('instances').where('seen_at', '<', time).execute();
  }
}
