import { mkdirSync } from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, sql, type SqliteDatabase, type Transaction } from 'kysely';
import pg from 'pg';
import { startCheckpointer, type Checkpointer } from './checkpointer.js';
import { migrations } from './migrations/index.js';
import type { Executor } from './repositories/common.js';
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
  /** Serialises migrations of instances that start at the same time (inside the migration transaction). */
  lockMigrations(trx: Transaction<Database>): Promise<void>;
  /**
   * Inserts rows that need no answer, committed together, as cheaply as the engine allows: for
   * per-request logs written in batches (SQLite: one reused prepared statement in one
   * transaction, no query building; PostgreSQL: one multi-row INSERT). `table` and `columns`
   * are names from the code, never from a request.
   */
  appendRows(db: Kysely<Database>, table: string, columns: readonly string[], rows: ReadonlyArray<readonly unknown[]>): Promise<void>;
  /**
   * Inside a transaction: holds the row of `table` whose `id` is given until the transaction ends
   * (PostgreSQL `SELECT … FOR UPDATE` or `FOR SHARE`; SQLite runs one write transaction at a
   * time, so reading it is enough) and answers whether it exists. Two transactions that lock the
   * same row first are thereby ordered: what one wrote is read by the other. `table` is a name
   * from the code, never from a request.
   */
  lockRow(trx: Executor, table: 'users', id: string, mode: 'update' | 'share'): Promise<boolean>;
  /** Stops the store's own background work (the embedded store's checkpoint thread) before it is closed. */
  stopBackground(): Promise<void>;
}

/** How often the serving process checkpoints the embedded store's write-ahead log. */
const CHECKPOINT_INTERVAL_MS = 1000;

const quoteId = (name: string) => `"${name.replace(/"/g, '""')}"`;

/**
 * better-sqlite3 with each SQL text prepared once: Kysely prepares every query anew, which cost
 * about a tenth of the CPU of an OAuth 2.0 code exchange. Kysely's queries carry their values
 * as parameters, so the texts are few; a statement still iterating (a streamed query) is not
 * shared, and the cache is bounded for the texts that vary (IN lists, multi-row inserts).
 */
function withStatementCache(sqlite: SQLite.Database): SqliteDatabase {
  const statements = new Map<string, SQLite.Statement>();
  return {
    close: () => void sqlite.close(),
    prepare(text: string) {
      const cached = statements.get(text);
      if (cached && !cached.busy) return cached;
      const statement = sqlite.prepare(text);
      if (statements.size >= 1000) statements.delete(statements.keys().next().value!);
      statements.set(text, statement);
      return statement;
    },
  };
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
  /**
   * SQLite only: checkpoint the write-ahead log from a worker thread instead of inside the
   * request that fills it (see checkpointer.ts). For the serving process, which owns the file.
   */
  backgroundCheckpoints?: boolean;
}

/** Opens the store named by a `sqlite:<path>` or `postgres://` URL. Does not migrate. */
export function openDatabase(url: string, options: OpenOptions = {}): OpenedDatabase {
  if (url.startsWith('sqlite:')) {
    const file = url.slice('sqlite:'.length);
    if (file !== ':memory:') mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    const sqlite = new SQLite(file);
    const appenders = new Map<string, (rows: ReadonlyArray<readonly unknown[]>) => void>();
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = NORMAL');
    sqlite.pragma('foreign_keys = ON');
    sqlite.pragma('busy_timeout = 5000');
    // Deleted and overwritten content is zeroed, so revoked secrets do not linger in free pages.
    sqlite.pragma('secure_delete = ON');
    let checkpointer: Checkpointer | undefined;
    if (options.backgroundCheckpoints && file !== ':memory:') {
      sqlite.pragma('wal_autocheckpoint = 0');
      // The log is emptied by each complete checkpoint; this keeps its file from staying large.
      sqlite.pragma(`journal_size_limit = ${64 * 1024 * 1024}`);
      checkpointer = startCheckpointer(file, CHECKPOINT_INTERVAL_MS, () => {
        // Never let the log grow without bound: back to checkpoints in the serving connection.
        if (sqlite.open) sqlite.pragma('wal_autocheckpoint = 1000');
      });
    }
    return {
      db: new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(sqlite) }) }),
      capabilities: {
        dialect: 'sqlite',
        shared: false,
        purgeOldVersions: async (db) => {
          await sql`PRAGMA wal_checkpoint(TRUNCATE)`.execute(db);
        },
        // The transaction's first write (the bookkeeping table) takes SQLite's write lock.
        lockMigrations: async () => undefined,
        lockRow: async (trx, table, id) => (await sql`select id from ${sql.table(table)} where id = ${id}`.execute(trx)).rows.length > 0,
        stopBackground: async () => checkpointer?.stop(),
        appendRows: async (db, table, columns, rows) => {
          if (rows.length === 0) return;
          const key = `${table}(${columns.join(',')})`;
          let insert = appenders.get(key);
          if (!insert) {
            const statement = sqlite.prepare(`insert into ${quoteId(table)} (${columns.map(quoteId).join(', ')}) values (${columns.map(() => '?').join(', ')})`);
            insert = sqlite.transaction((batch: ReadonlyArray<readonly unknown[]>) => {
              for (const row of batch) statement.run(...row);
            });
            appenders.set(key, insert);
          }
          // better-sqlite3 is synchronous, so outside a transaction nobody can interleave: append
          // at once, without Kysely's connection (its acquire and release cost a chain of promises
          // per batch). Inside someone else's open transaction (Kysely's runs between awaits),
          // wait for the connection, so that the rows are not part of, or rolled back with, it.
          if (!sqlite.inTransaction) return insert(rows);
          const run = insert;
          await db.connection().execute(async () => run(rows));
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
      capabilities: {
        dialect: 'postgres',
        shared: true,
        purgeOldVersions: async () => undefined,
        stopBackground: async () => undefined,
        lockRow: async (trx, table, id, mode) => (await sql`select id from ${sql.table(table)} where id = ${id} ${mode === 'update' ? sql`for update` : sql`for share`}`.execute(trx)).rows.length > 0,
        lockMigrations: async (trx) => {
          await sql`select pg_advisory_xact_lock(hashtext(${'applinks-migrations:'} || current_schema()))`.execute(trx);
        },
        appendRows: async (db, table, columns, rows) => {
          if (rows.length === 0) return;
          const values = sql.join(rows.map((row) => sql`(${sql.join(row.map((v) => sql`${v}`))})`));
          await sql`insert into ${sql.table(table)} (${sql.join(columns.map((c) => sql.ref(c)))}) values ${values}`.execute(db);
        },
      },
    };
  }
  throw new Error('database URL must start with sqlite: or postgres://');
}

/**
 * Applies pending migrations in one transaction. Instances starting together are serialised (an
 * advisory lock on PostgreSQL; SQLite's write lock, taken by the first statement). Only this
 * store's own bookkeeping table is read, never the rest of the database, which may hold other
 * applications' schemas. A store migrated by a newer applinks is refused rather than misread.
 */
export async function migrate(db: Kysely<Database>, capabilities: Capabilities, schema?: string): Promise<void> {
  if (schema) await sql`create schema if not exists ${sql.id(schema)}`.execute(db);
  const known = Object.keys(migrations).sort();
  await db.transaction().execute(async (trx) => {
    await capabilities.lockMigrations(trx);
    await trx.schema
      .createTable('applinks_migrations')
      .ifNotExists()
      .addColumn('name', 'text', (c) => c.primaryKey())
      .addColumn('applied_at', 'bigint', (c) => c.notNull())
      .execute();
    const applied = new Set((await sql<{ name: string }>`select name from applinks_migrations`.execute(trx)).rows.map((r) => r.name));
    const unknown = [...applied].filter((name) => !known.includes(name));
    if (unknown.length > 0) throw new Error(`the store was migrated by a newer applinks (${unknown.join(', ')}); upgrade this one`);
    for (const name of known) {
      if (applied.has(name)) continue;
      try {
        await migrations[name]!.up(trx as unknown as Kysely<unknown>);
      } catch (error) {
        throw new Error(`migration ${name} failed: ${(error as Error).message}`, { cause: error });
      }
      await sql`insert into applinks_migrations (name, applied_at) values (${name}, ${Date.now()})`.execute(trx);
    }
  });
}
