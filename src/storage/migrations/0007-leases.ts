import type { Kysely } from 'kysely';

/**
 * `leases`: a named lease on the store that one process at a time holds, for operations that
 * must not run twice at once (`applinks keys rotate` and `prune`, from two machines sharing
 * PostgreSQL as from two shells on one SQLite file). Taken with one atomic upsert that succeeds
 * only when the row is absent or expired; renewed while the operation runs, deleted at its end,
 * so a holder that crashed blocks the next one only until `expires_at` (or not at all when its
 * process is seen gone, `scope` and `pid`). Also `instances.scope`, the same process identity
 * for serving instances. Landed: never edit, add a new migration.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('leases')
    .addColumn('name', 'text', (c) => c.primaryKey())
    // A random id per attempt: renewals and the release only touch the holder's own lease.
    .addColumn('holder', 'text', (c) => c.notNull())
    // Who holds it, for the message of whoever is refused ("keys rotate by alice").
    .addColumn('owner', 'text', (c) => c.notNull())
    .addColumn('host', 'text', (c) => c.notNull())
    .addColumn('pid', 'integer', (c) => c.notNull())
    // Boot and pid namespace of the holder (Linux), so a process sharing both can tell whether
    // the pid still runs; null elsewhere.
    .addColumn('scope', 'text')
    .addColumn('acquired_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
  // Null on rows of instances started before it (they are told apart by their heartbeat only).
  await db.schema.alterTable('instances').addColumn('scope', 'text').execute();
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
