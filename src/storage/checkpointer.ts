import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * The embedded store's WAL checkpoints, moved off the event loop. better-sqlite3 is
 * synchronous, so SQLite's automatic checkpoint (every 1000 pages of WAL) ran inside whichever
 * request committed that page, stalling every request of the process while it copied pages
 * and waited for fsync: under steady writes (token issuance, the nonce log) about a quarter of
 * the throughput and most of the p99. Here a worker thread with its own connection runs a
 * PASSIVE checkpoint (which never blocks readers or writers) on an interval, and the serving
 * connection's automatic checkpoints are switched off.
 */
export interface Checkpointer {
  /** Stops the thread after its current checkpoint; the store can then be closed. */
  stop(): Promise<void>;
}

// CommonJS, evaluated in the worker: it needs no file of its own, so it runs the same from
// dist/ and from the TypeScript sources under the test runner.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.module);
const db = new Database(workerData.file, { fileMustExist: true });
const timer = setInterval(() => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch (error) {
    clearInterval(timer);
    parentPort.postMessage({ failed: String(error && error.message) });
  }
}, workerData.intervalMs);
parentPort.on('message', () => {
  clearInterval(timer);
  db.close();
  parentPort.close();
});
`;

/**
 * Starts checkpointing `file` every `intervalMs`. `onFailure` is told when the thread cannot
 * go on (the caller then turns automatic checkpoints back on, so the WAL never grows unbounded).
 */
export function startCheckpointer(file: string, intervalMs: number, onFailure: (reason: string) => void): Checkpointer {
  const module = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(WORKER, { eval: true, workerData: { file, module, intervalMs } });
  let stopped = false;
  const failed = (reason: string) => {
    if (!stopped) onFailure(reason);
    stopped = true;
  };
  worker.on('message', (m: { failed?: string }) => failed(m.failed ?? 'unknown'));
  worker.on('error', (error) => failed(error.message));
  worker.on('exit', (code) => failed(`the checkpoint thread exited (${code})`));
  // A process that forgets to close its store still exits.
  worker.unref();
  return {
    stop: async () => {
      if (stopped) return;
      stopped = true;
      const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
      // Waited for: keep the process alive until the thread has closed its connection.
      worker.ref();
      worker.postMessage('stop');
      await exited;
    },
  };
}
