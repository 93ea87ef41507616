import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../schema.js';

/** Either the database or an open transaction: repositories work the same on both. */
export type Executor = Kysely<Database> | Transaction<Database>;

/** Thrown by a repository when a unique constraint refuses a write. */
export class UniqueViolation extends Error {
  override name = 'UniqueViolation';
}

/** Recognises a unique-constraint failure from either engine (SQLite code, PostgreSQL SQLSTATE 23505). */
export function isUniqueViolation(error: unknown): boolean {
  const e = error as { code?: unknown } | null;
  return e?.code === 'SQLITE_CONSTRAINT_UNIQUE' || e?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || e?.code === '23505';
}

/** Recognises a foreign-key failure (a row naming a link or user deleted meanwhile): SQLite, or PostgreSQL SQLSTATE 23503. */
export function isForeignKeyViolation(error: unknown): boolean {
  const e = error as { code?: unknown } | null;
  return e?.code === 'SQLITE_CONSTRAINT_FOREIGNKEY' || e?.code === '23503';
}

/** Runs a write and turns a unique violation into UniqueViolation. */
export async function uniquely<T>(write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (isUniqueViolation(error)) throw new UniqueViolation('unique constraint', { cause: error });
    throw error;
  }
}

/**
 * Runs a write; a foreign-key failure (a link, client or user it names was deleted meanwhile, by
 * another request or instance) becomes the error `explain` answers. Nothing was written then.
 */
export async function unlessDeletedMeanwhile<T>(write: () => Promise<T>, explain: (error: unknown) => Promise<Error>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (isForeignKeyViolation(error)) throw await explain(error);
    throw error;
  }
}

export const bool = (n: number | boolean): boolean => n === 1 || n === true;
export const int = (b: boolean): number => (b ? 1 : 0);

/**
 * The executor seen with a module's own table types added, for repositories that live in a
 * protocol module (src/modules/<name>/tables.ts declares them; its migration creates them).
 */
export function withTables<T>(db: Executor): Kysely<Database & T> {
  return db as unknown as Kysely<Database & T>;
}

/** How many rows one statement of a housekeeping delete removes (see `deleteInBatches`). */
export const PRUNE_BATCH = 1000;

/**
 * Runs `deleteBatch` (one DELETE of at most `limit` rows, answering how many it removed) until
 * a batch removes fewer, letting the event loop run between batches; answers the total. The
 * embedded store is synchronous: one DELETE of 200,000 expired tokens held every request of the
 * process for a second (measured). On PostgreSQL it keeps each statement's locks short.
 */
export async function deleteInBatches(deleteBatch: (limit: number) => Promise<number>, limit = PRUNE_BATCH): Promise<number> {
  let total = 0;
  for (;;) {
    const n = await deleteBatch(limit);
    total += n;
    if (n < limit) return total;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/** The rows a DELETE or UPDATE removed or changed, as Kysely reports them. */
export function affectedRows(result: { numDeletedRows?: bigint; numUpdatedRows?: bigint }): number {
  return Number(result.numDeletedRows ?? result.numUpdatedRows ?? 0n);
}
