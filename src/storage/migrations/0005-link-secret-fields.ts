import type { Kysely } from 'kysely';

/**
 * `link_auth.secret_fields`: the names of the secret fields a configuration holds (never the
 * values), so listing links does not open every secret just to name them, and one value that
 * cannot be opened does not fail the list. Null on rows written before it: their names are read
 * from the sealed value. Landed: never edit, add a new migration.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('link_auth').addColumn('secret_fields', 'text').execute();
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
