import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { startCheckpointer } from '../../src/storage/checkpointer.js';
import { openDatabase } from '../../src/storage/database.js';

const dir = mkdtempSync(path.join(tmpdir(), 'applinks-checkpoint-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const size = (file: string) => statSync(file).size;

async function until(condition: () => boolean, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 20))) if (condition()) return true;
  return condition();
}

describe('checkpoints of the embedded store in a worker thread', () => {
  it('copies the write-ahead log into the database while the serving connection never checkpoints', async () => {
    const file = path.join(dir, 'direct.db');
    const db = new SQLite(file);
    db.pragma('journal_mode = WAL');
    db.pragma('wal_autocheckpoint = 0');
    db.exec('create table t (v text)');
    const insert = db.prepare('insert into t (v) values (?)');
    db.transaction(() => {
      for (let i = 0; i < 4000; i++) insert.run('x'.repeat(200) + i);
    })();
    // Nothing checkpoints here: the rows are in the log only.
    expect(size(file)).toBeLessThan(64 * 1024);
    expect(size(`${file}-wal`)).toBeGreaterThan(800 * 1024);

    const failures: string[] = [];
    const checkpointer = startCheckpointer(file, 50, (reason) => failures.push(reason));
    expect(await until(() => size(file) > 800 * 1024, 5000)).toBe(true);
    // Writes go on meanwhile, and the data is whole.
    insert.run('after');
    await checkpointer.stop();
    expect(failures).toEqual([]);
    expect(db.prepare('select count(*) as n from t').get()).toEqual({ n: 4001 });
    db.close();
  });

  it('is what the serving process opens, and stops before the store closes', async () => {
    const { db, capabilities } = openDatabase(`sqlite:${path.join(dir, 'served.db')}`, { backgroundCheckpoints: true });
    const setting = await sql<{ wal_autocheckpoint: number }>`pragma wal_autocheckpoint`.execute(db);
    expect(setting.rows[0]?.wal_autocheckpoint).toBe(0);
    await capabilities.stopBackground();
    await db.destroy();

    // Short-lived commands (the CLI) keep SQLite's own checkpoints.
    const cli = openDatabase(`sqlite:${path.join(dir, 'served.db')}`);
    expect((await sql<{ wal_autocheckpoint: number }>`pragma wal_autocheckpoint`.execute(cli.db)).rows[0]?.wal_autocheckpoint).toBe(1000);
    await cli.capabilities.stopBackground();
    await cli.db.destroy();
  });
});
