import { hash } from 'node:crypto';
import type { Capabilities } from '../../storage/database.js';
import type { Clock } from '../../util/clock.js';
import type { OAuth1Repository } from './repository.js';

/** One check: a (consumer, nonce) digest and when no timestamp check could accept it again. */
interface Entry {
  digest: Buffer;
  expiresAt: number;
}

/** How a batch of checks is decided: true where the nonce is fresh (and is now remembered). */
interface Backend {
  decide(batch: readonly Entry[]): Promise<boolean[]>;
  prune?(now: number): Promise<number>;
}

interface Pending extends Entry {
  done: (fresh: boolean) => void;
  fail: (error: unknown) => void;
}

/**
 * The replay store: a nonce is accepted once per consumer within the timestamp window, after a
 * restart and across every instance that shares the store (PROTOCOLS.md §1.3).
 *
 * Group commit: the checks asked for in one turn of the event loop are decided together, and
 * each request waits until its nonce is durably recorded. Two backends, chosen by whether the
 * store is shared (`capabilities.shared`):
 * - PostgreSQL, shared by instances: each nonce is a row that one multi-row
 *   `INSERT … ON CONFLICT DO NOTHING RETURNING` either creates (fresh) or finds (a replay, on any
 *   instance). The store decides.
 * - The embedded store, owned by one process: that process decides from memory (a window of
 *   64-bit fingerprints) and appends what it accepted to a log in the same transaction-per-batch,
 *   which it reads back after a restart. A unique index would cost one random page write per
 *   request; the append touches the last page only, which keeps the replay store nearly free on
 *   the hot path.
 */
export class NonceStore {
  private pending: Pending[] = [];
  private scheduled = false;
  private readonly backend: Backend;

  /**
   * @param windowSeconds the timestamp window: a nonce is checked with an expiry of at most
   * (timestamp + window + 60 s), and timestamps are at most a window ahead of server time.
   */
  constructor(repo: OAuth1Repository, clock: Clock, capabilities: Capabilities, windowSeconds: number) {
    this.backend = capabilities.shared ? new SharedBackend(repo) : new LocalBackend(repo, clock, capabilities, (2 * windowSeconds + 120) * 1000);
  }

  /** True when this (consumer, nonce) was not seen before; it is then remembered until `expiresAt`. */
  check(consumerKey: string, nonce: string, expiresAt: number): Promise<boolean> {
    return new Promise<boolean>((done, fail) => {
      this.pending.push({ digest: hash('sha256', `${consumerKey}\n${nonce}`, 'buffer'), expiresAt, done, fail });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  /** Forgets what no timestamp check could accept any more (the shared table prunes with the module's job). */
  prune(now: number): Promise<number> {
    return this.backend.prune?.(now) ?? Promise.resolve(0);
  }

  private async flush(): Promise<void> {
    this.scheduled = false;
    while (this.pending.length > 0) {
      // 500 rows stay far below either engine's limit on bound parameters.
      const batch = this.pending.splice(0, 500);
      try {
        const fresh = await this.backend.decide(batch);
        batch.forEach((p, i) => p.done(fresh[i]!));
      } catch (error) {
        for (const p of batch) p.fail(error);
      }
    }
  }
}

/** The store decides: the first insert of a key wins, on whichever instance. */
class SharedBackend implements Backend {
  constructor(private readonly repo: OAuth1Repository) {}

  async decide(batch: readonly Entry[]): Promise<boolean[]> {
    // The same key twice in one batch: the first asks the store, the others are replays.
    const keys = batch.map((e) => e.digest.toString('base64url'));
    const first = new Map<string, number>();
    keys.forEach((k, i) => {
      if (!first.has(k)) first.set(k, i);
    });
    const inserted = await this.repo.recordNonces([...first].map(([key, i]) => ({ key, expiresAt: batch[i]!.expiresAt })));
    return keys.map((k, i) => first.get(k) === i && inserted.has(k));
  }
}

/** This process decides from memory and logs what it accepted, to remember it after a restart. */
class LocalBackend implements Backend {
  private readonly window = new FingerprintWindow();
  private loaded: Promise<void> | undefined;

  /** @param longestLifeMs how long after it was appended a logged nonce can still be live. */
  constructor(
    private readonly repo: OAuth1Repository,
    private readonly clock: Clock,
    private readonly capabilities: Capabilities,
    private readonly longestLifeMs: number,
  ) {}

  private load(): Promise<void> {
    return (this.loaded ??= (async () => {
      const now = this.clock.now();
      for (const batch of await this.repo.liveNonceLog(now)) {
        for (let i = 0; i + 16 <= batch.fingerprints.length; i += 16) {
          this.window.add(Number.parseInt(batch.fingerprints.slice(i, i + 8), 16), Number.parseInt(batch.fingerprints.slice(i + 8, i + 16), 16), batch.expiresAt, now);
        }
      }
    })().catch((error: unknown) => {
      this.loaded = undefined;
      throw error;
    }));
  }

  async decide(batch: readonly Entry[]): Promise<boolean[]> {
    await this.load();
    const now = this.clock.now();
    const fresh: boolean[] = [];
    let fingerprints = '';
    let latest = 0;
    for (const e of batch) {
      const added = this.window.add(e.digest.readUInt32BE(0), e.digest.readUInt32BE(4), e.expiresAt, now);
      fresh.push(added);
      if (added) {
        fingerprints += e.digest.toString('hex', 0, 8);
        if (e.expiresAt > latest) latest = e.expiresAt;
      }
    }
    // One row per batch, recorded before anyone is let through: a crash right after still remembers them.
    if (fingerprints) await this.repo.appendNonceLog(this.capabilities, fingerprints, latest, now);
    return fresh;
  }

  async prune(now: number): Promise<number> {
    // Everything appended longer ago than the longest life of an entry is dead.
    return this.repo.pruneNonceLog(now - this.longestLifeMs);
  }
}

/**
 * Accepted nonce fingerprints (the first 64 bits of SHA-256(consumer, nonce)) in buckets by
 * expiry minute, each an open-addressing hash set of two 32-bit words per entry: about 16 bytes
 * per remembered nonce, so a window of millions fits in tens of megabytes. A false "seen" needs
 * a 64-bit collision among the nonces of one window (the client then retries with a new nonce).
 */
export class FingerprintWindow {
  private readonly buckets = new Map<number, FingerprintSet>();

  /** Adds the fingerprint unless a live bucket has it; answers whether it was added. */
  add(hi: number, lo: number, expiresAt: number, now: number): boolean {
    const current = Math.floor(now / 60_000);
    for (const [minute, set] of this.buckets) {
      // A bucket holds entries expiring within its minute: past it, every one of them is dead.
      if (minute < current) this.buckets.delete(minute);
      else if (set.has(hi, lo)) return false;
    }
    if (expiresAt <= now) return true;
    const minute = Math.floor(expiresAt / 60_000);
    let set = this.buckets.get(minute);
    if (!set) this.buckets.set(minute, (set = new FingerprintSet()));
    set.add(hi, lo);
    return true;
  }

  get size(): number {
    let n = 0;
    for (const set of this.buckets.values()) n += set.size;
    return n;
  }
}

/** A growable open-addressing set of (hi, lo) 32-bit pairs; lo's lowest bit is forced on so (0, 0) marks an empty slot. */
class FingerprintSet {
  private slots = new Uint32Array(2 * 1024);
  private mask = 1023;
  size = 0;

  has(hi: number, lo: number): boolean {
    lo = (lo | 1) >>> 0;
    hi >>>= 0;
    for (let i = hi & this.mask; ; i = (i + 1) & this.mask) {
      const sl = this.slots[2 * i + 1]!;
      if (sl === 0) return false;
      if (sl === lo && this.slots[2 * i] === hi) return true;
    }
  }

  add(hi: number, lo: number): void {
    if ((this.size + 1) * 2 > this.mask + 1) this.grow();
    this.insert(hi >>> 0, (lo | 1) >>> 0);
  }

  private insert(hi: number, lo: number): void {
    for (let i = hi & this.mask; ; i = (i + 1) & this.mask) {
      const sl = this.slots[2 * i + 1]!;
      if (sl === 0) {
        this.slots[2 * i] = hi;
        this.slots[2 * i + 1] = lo;
        this.size++;
        return;
      }
      if (sl === lo && this.slots[2 * i] === hi) return;
    }
  }

  private grow(): void {
    const old = this.slots;
    this.slots = new Uint32Array(old.length * 2);
    this.mask = old.length - 1;
    this.size = 0;
    for (let i = 0; i < old.length; i += 2) if (old[i + 1] !== 0) this.insert(old[i]!, old[i + 1]!);
  }
}
