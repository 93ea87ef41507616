import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { lockEmbeddedStore } from '../../src/storage/sqlite-lock.js';

describe('the embedded store lock (one serving process per SQLite file)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'applinks-lock-'));
  const file = path.join(dir, 'applinks.db');
  afterEach(() => rmSync(`${file}.lock`, { force: true }));

  it('makes the directory of a first start', () => {
    const fresh = path.join(dir, 'not-yet', 'applinks.db');
    const release = lockEmbeddedStore(fresh);
    expect(existsSync(`${fresh}.lock`)).toBe(true);
    release();
  });

  it('is taken, refused to a second taker while its owner lives, and released', async () => {
    const release = lockEmbeddedStore(file);
    expect(readFileSync(`${file}.lock`, 'utf8')).toBe(String(process.pid));
    release();
    expect(existsSync(`${file}.lock`)).toBe(false);

    // Another live process holds it.
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)']);
    try {
      writeFileSync(`${file}.lock`, String(other.pid));
      expect(() => lockEmbeddedStore(file)).toThrow(new RegExp(`another applinks server \\(pid ${other.pid}\\).*PostgreSQL`));
    } finally {
      other.kill();
      await new Promise((resolve) => other.once('exit', resolve));
    }
    // Its owner is gone (a crash): taken over.
    const again = lockEmbeddedStore(file);
    expect(readFileSync(`${file}.lock`, 'utf8')).toBe(String(process.pid));
    again();
  });

  it('takes over a lock with garbage in it', () => {
    writeFileSync(`${file}.lock`, 'not a pid');
    lockEmbeddedStore(file)();
    expect(existsSync(`${file}.lock`)).toBe(false);
  });
});
