import type { Kysely } from 'kysely';

/**
 * `instances`: every serving process says which master keys it holds and which one it seals
 * with, and when it last said so (src/services/instances.ts), so `applinks keys rotate` can wait
 * until every running instance holds a new key before re-sealing under it, and `applinks keys
 * prune` can refuse to drop a key that one still seals with. Landed: never edit, add a new
 * migration.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('instances')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('host', 'text', (c) => c.notNull())
    .addColumn('pid', 'integer', (c) => c.notNull())
    // 'file' (follows <dataDir>/master.key) or 'env' (APPLINKS_MASTER_KEY, fixed until restart).
    .addColumn('key_source', 'text', (c) => c.notNull())
    .addColumn('sealing_kid', 'text', (c) => c.notNull())
    // Comma-separated ids of every key the instance can open with, the sealing one first.
    .addColumn('kids', 'text', (c) => c.notNull())
    .addColumn('started_at', 'bigint', (c) => c.notNull())
    .addColumn('seen_at', 'bigint', (c) => c.notNull())
    .execute();
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
