import { sql } from 'kysely';
import type { Executor } from './common.js';

/**
 * Fixed-window failure counters shared by every instance through the store. `hit` is atomic:
 * concurrent hits from several instances each count once.
 */
export interface ThrottleRepository {
  /** Counts one event for `key` and answers the count in the current window and when it started. */
  hit(key: string, now: number, windowMs: number): Promise<{ count: number; windowStart: number }>;
  get(key: string): Promise<{ count: number; windowStart: number } | undefined>;
  reset(key: string): Promise<void>;
  /** Takes back one counted event (an attempt reserved before it succeeded). */
  release(key: string): Promise<void>;
  deleteOlderThan(time: number): Promise<void>;
}

export class KyselyThrottleRepository implements ThrottleRepository {
  constructor(private readonly db: Executor) {}

  async hit(key: string, now: number, windowMs: number): Promise<{ count: number; windowStart: number }> {
    const stale = now - windowMs;
    const row = await this.db
      .insertInto('throttle')
      .values({ key, window_start: now, count: 1 })
      .onConflict((oc) =>
        oc.column('key').doUpdateSet({
          count: sql<number>`case when throttle.window_start <= ${stale} then 1 else throttle.count + 1 end`,
          window_start: sql<number>`case when throttle.window_start <= ${stale} then ${now} else throttle.window_start end`,
        }),
      )
      .returning(['count', 'window_start'])
      .executeTakeFirstOrThrow();
    return { count: Number(row.count), windowStart: Number(row.window_start) };
  }

  async get(key: string): Promise<{ count: number; windowStart: number } | undefined> {
    const row = await this.db.selectFrom('throttle').select(['count', 'window_start']).where('key', '=', key).executeTakeFirst();
    return row ? { count: Number(row.count), windowStart: Number(row.window_start) } : undefined;
  }

  async reset(key: string): Promise<void> {
    await this.db.deleteFrom('throttle').where('key', '=', key).execute();
  }

  async release(key: string): Promise<void> {
    await this.db.updateTable('throttle').set({ count: sql<number>`count - 1` }).where('key', '=', key).where('count', '>', 0).execute();
  }

  async deleteOlderThan(time: number): Promise<void> {
    await this.db.deleteFrom('throttle').where('window_start', '<', time).execute();
  }
}
