import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import { pidAlive } from '../util/process-scope.js';

/**
 * Takes the embedded store for this process: one serving process per SQLite file. Several would
 * each keep their own replay (nonce) store and caches, so a request replayed to the other one
 * would pass; PostgreSQL is the store for several instances. The lock is a file beside the
 * database holding the owner's pid; a lock whose process is gone (a crash, a container
 * restarted with the same pid) is taken over. Answers the release function.
 */
export function lockEmbeddedStore(databaseFile: string): () => void {
  const lockPath = `${databaseFile}.lock`;
  // A first start with the master key in the environment has not made the data directory yet.
  mkdirSync(path.dirname(databaseFile), { recursive: true, mode: 0o700 });
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = openSync(lockPath, 'wx', 0o600);
      try {
        writeSync(fd, String(process.pid));
      } finally {
        closeSync(fd);
      }
      return () => {
        try {
          if (readFileSync(lockPath, 'utf8') === String(process.pid)) unlinkSync(lockPath);
        } catch {
          // Already gone.
        }
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw error;
      let owner = NaN;
      try {
        owner = Number(readFileSync(lockPath, 'utf8').trim());
      } catch {
        // Removed meanwhile: try again.
      }
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && pidAlive(owner)) {
        throw new Error(
          `another applinks server (pid ${owner}) is using the embedded store ${databaseFile}. The embedded store serves one process; ` +
            'run several instances on PostgreSQL (APPLINKS_DATABASE_URL=postgres://...), or stop the other one.',
        );
      }
      try {
        unlinkSync(lockPath);
      } catch {
        // Someone else took it over first; the next attempt tells.
      }
    }
  }
}
