import { mkdirSync } from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import { migrations } from './migrations/index.js';
import type { Database } from './schema.js';

export type DialectName = 'sqlite' | 'postgres';

/**
 * What differs between the two engines, in one place. Repositories ask this object instead of
 * testing the dialect name.
 */
export interface Capabilities {
  readonly dialect: DialectName;
  /** Several processes may share this store (PostgreSQL), so per-process state is not authoritative. */
  readonly shared: boolean;
  /**
   * Removes superseded copies of rewritten rows from the store's files (after re-sealing under a
   * new key, old ciphertext must not linger in free pages or the write-ahead log).
   */
  purgeOldVersions(db: Kysely<Database>): Promise<void>;
}

export interface OpenedDatabase {
  db: Kysely<Database>;
  capabilities: Capabilities;
}

export interface OpenOptions {
  /** PostgreSQL only: a schema to use (created when missing); tests isolate themselves with it. */
  schema?: string;
  /** PostgreSQL pool size. */
  poolSize?: number;
}

/** Opens the store named by a `sqlite:<path>` or `postgres://` URL. Does not migrate. */
export function openDatabase(url: string, options: OpenOptions = {}): OpenedDatabase {
  if (url.startsWith('sqlite:')) {
    const file = url.slice('sqlite:'.length);
    if (file !== ':memory:') mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    const sqlite = new SQLite(file);
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = NORMAL');
    sqlite.pragma('foreign_keys = ON');
    sqlite.pragma('busy_timeout = 5000');
    // Deleted and overwritten content is zeroed, so revoked secrets do not linger in free pages.
    sqlite.pragma('secure_delete = ON');
    return {
      db: new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) }),
      capabilities: {
        dialect: 'sqlite',
        shared: false,
        purgeOldVersions: async (db) => {
          await sql`PRAGMA wal_checkpoint(TRUNCATE)`.execute(db);
        },
      },
    };
  }
  if (/^postgres(ql)?:\/\//.test(url)) {
    const schema = options.schema;
    if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new Error('invalid schema name');
    const pool = new pg.Pool({
      connectionString: url,
      max: options.poolSize ?? 10,
      ...(schema ? { options: `-c search_path=${schema}` } : {}),
      // bigint columns hold millisecond times and counters well inside 2^53.
      types: {
        getTypeParser: ((oid: number, format?: string) =>
          oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
      },
    });
    return {
      db: new Kysely<Database>({ dialect: new PostgresDialect({ pool }) }),
      // Dead row versions are invisible to every reader and dump, and VACUUM reclaims them.
      capabilities: { dialect: 'postgres', shared: true, purgeOldVersions: async () => undefined },
    };
  }
  throw new Error('database URL must start with sqlite: or postgres://');
}

/** Applies pending migrations; several instances starting at once are serialised by Kysely's lock. */
export async function migrate(db: Kysely<Database>, schema?: string): Promise<void> {
  if (schema) await db.schema.createSchema(schema).ifNotExists().execute();
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => migrations },
    ...(schema ? { migrationTableSchema: schema } : {}),
  });
  let outcome = await migrator.migrateToLatest();
  // Kysely's Migrator introspects every schema of the database before taking its lock; another
  // process dropping a schema or table at that moment (instances or test runs sharing one
  // PostgreSQL) fails the introspection: invalid_schema_name, undefined_table, or "could not open
  // relation" (XX000). Migrations are idempotent and run in a transaction: try again.
  const transient = (e: unknown) => ['3F000', '42P01', 'XX000'].includes(String((e as { code?: unknown } | undefined)?.code));
  for (let attempt = 1; attempt < 5 && transient(outcome.error); attempt++) {
    outcome = await migrator.migrateToLatest();
  }
  const { error, results } = outcome;
  const failed = results?.find((r) => r.status === 'Error');
  if (error || failed) {
    throw new Error(`migration ${failed?.migrationName ?? ''} failed: ${(error as Error | undefined)?.message ?? 'unknown error'}`, {
      cause: error,
    });
  }
}
