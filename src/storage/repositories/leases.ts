import type { Executor } from './common.js';

export interface LeaseRecord {
  name: string;
  /** A random id per attempt to take the lease. */
  holder: string;
  /** Who holds it, for people: `keys rotate by alice`. */
  owner: string;
  host: string;
  pid: number;
  /** See processScope(): lets a process in the same scope see that the holder has exited. */
  scope: string | undefined;
  acquiredAt: number;
  expiresAt: number;
}

/**
 * Named leases on the store, one holder at a time. Contracts: `acquire` is atomic, of any
 * number of concurrent calls for one name at most one succeeds; it takes the lease when no row
 * exists, when the row expired at or before `now`, or when its holder is `replacing` (a holder
 * the caller found dead), and answers whether it did. `renew` moves the expiry of the holder's
 * own lease and answers false when the holder no longer holds it (it expired and was taken
 * over). `release` deletes the holder's own lease only. Times are the callers' system clocks:
 * the lease's length must dwarf the skew between the machines.
 */
export interface LeaseRepository {
  acquire(lease: LeaseRecord, now: number, replacing?: string): Promise<boolean>;
  renew(name: string, holder: string, expiresAt: number): Promise<boolean>;
  release(name: string, holder: string): Promise<void>;
  get(name: string): Promise<LeaseRecord | undefined>;
}

export class KyselyLeaseRepository implements LeaseRepository {
  constructor(private readonly db: Executor) {}

  async acquire(l: LeaseRecord, now: number, replacing?: string): Promise<boolean> {
    const values = {
      name: l.name,
      holder: l.holder,
      owner: l.owner,
      host: l.host,
      pid: l.pid,
      scope: l.scope ?? null,
      acquired_at: l.acquiredAt,
      expires_at: l.expiresAt,
    };
    const { name: _name, ...update } = values;
    // One statement on both engines: PostgreSQL re-checks the condition on the row as committed
    // by a concurrent taker (it waits for it), SQLite runs one writer at a time.
    const row = await this.db
      .insertInto('leases')
      .values(values)
      .onConflict((oc) =>
        oc
          .column('name')
          .doUpdateSet(update)
          .where((eb) => eb.or([eb('leases.expires_at', '<=', now), ...(replacing === undefined ? [] : [eb('leases.holder', '=', replacing)])])),
      )
      .returning('holder')
      .executeTakeFirst();
    return row?.holder === l.holder;
  }

  async renew(name: string, holder: string, expiresAt: number): Promise<boolean> {
    const r = await this.db.updateTable('leases').set({ expires_at: expiresAt }).where('name', '=', name).where('holder', '=', holder).executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  async release(name: string, holder: string): Promise<void> {
    await this.db.deleteFrom('leases').where('name', '=', name).where('holder', '=', holder).execute();
  }

  async get(name: string): Promise<LeaseRecord | undefined> {
    const r = await this.db.selectFrom('leases').selectAll().where('name', '=', name).executeTakeFirst();
    return r
      ? {
          name: r.name,
          holder: r.holder,
          owner: r.owner,
          host: r.host,
          pid: Number(r.pid),
          scope: r.scope ?? undefined,
          acquiredAt: Number(r.acquired_at),
          expiresAt: Number(r.expires_at),
        }
      : undefined;
  }
}
