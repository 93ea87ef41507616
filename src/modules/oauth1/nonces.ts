import { hash } from 'node:crypto';
import type { OAuth1Repository } from './repository.js';

interface Pending {
  key: string;
  expiresAt: number;
  done: (fresh: boolean) => void;
  fail: (error: unknown) => void;
}

/**
 * The replay store: a nonce is accepted once per consumer within the timestamp window, after a
 * restart and across every instance that shares the store (PROTOCOLS.md §1.3). Each check is a
 * row insert that either lands (fresh) or conflicts (replay), so the store decides, never
 * per-process memory.
 *
 * Group commit: the checks asked for in one turn of the event loop go to the store as one
 * multi-row `INSERT … ON CONFLICT DO NOTHING RETURNING`, and each request waits for its answer.
 * The row is written before the request is let through, and under load one commit serves many
 * requests, which keeps the replay store nearly free on the hot path.
 */
export class NonceStore {
  private pending: Pending[] = [];
  private scheduled = false;

  constructor(private readonly repo: OAuth1Repository) {}

  /** The stored key of a (consumer, nonce) pair: fixed length whatever the client sent. */
  static key(consumerKey: string, nonce: string): string {
    return hash('sha256', `${consumerKey}\n${nonce}`, 'base64url');
  }

  /** True when this (consumer, nonce) was not seen before; it is then remembered until `expiresAt`. */
  check(consumerKey: string, nonce: string, expiresAt: number): Promise<boolean> {
    return new Promise<boolean>((done, fail) => {
      this.pending.push({ key: NonceStore.key(consumerKey, nonce), expiresAt, done, fail });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    this.scheduled = false;
    while (this.pending.length > 0) {
      // 500 rows of 2 columns stay far below either engine's limit on bound parameters.
      const batch = this.pending.splice(0, 500);
      // The same key twice in one batch: the first asks the store, the others are replays.
      const first = new Map<string, Pending>();
      const duplicates: Pending[] = [];
      for (const p of batch) {
        if (first.has(p.key)) duplicates.push(p);
        else first.set(p.key, p);
      }
      try {
        const inserted = await this.repo.recordNonces([...first.values()].map((p) => ({ key: p.key, expiresAt: p.expiresAt })));
        for (const p of first.values()) p.done(inserted.has(p.key));
        for (const p of duplicates) p.done(false);
      } catch (error) {
        for (const p of batch) p.fail(error);
      }
    }
  }
}
