import { randomUUID } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LeaseRecord } from '../storage/repositories/leases.js';
import type { Store } from '../storage/store.js';
import { processGone, processScope } from '../util/process-scope.js';

export interface LeaseTiming {
  /** How long a lease lasts unless renewed: how long a crashed holder on another machine blocks the next one. */
  ttlMs: number;
  /** How often the holder renews it. */
  renewMs: number;
  /** How often a waiting process tries again. */
  pollMs: number;
}

export const LEASE_TIMING: LeaseTiming = { ttlMs: 30_000, renewMs: 5_000, pollMs: 500 };

export interface LeaseOptions extends Partial<LeaseTiming> {
  /** How long to wait for the current holder to finish; 0 (the default) refuses at once. */
  waitMs?: number;
  /** Progress for people: told once when waiting starts, and when a dead holder's lease is taken over. */
  progress?: (line: string) => void;
}

/** Refused because another process holds the lease (and did not let go within the wait). */
export class LeaseBusy extends Error {
  override name = 'LeaseBusy';
  constructor(
    message: string,
    readonly holder: LeaseRecord,
  ) {
    super(message);
  }
}

/** The lease was lost while the work ran (not renewed in time and taken over): the work stops before its next step. */
export class LeaseLost extends Error {
  override name = 'LeaseLost';
}

/** What the work gets: whether the lease is still held, and a fence to run inside its final transaction. */
export interface HeldLease {
  readonly record: LeaseRecord;
  /** Aborted when the lease is lost. */
  readonly signal: AbortSignal;
  /** Throws LeaseLost if the lease was lost. */
  check(): void;
  /**
   * Renews the lease through `store` (a transaction's repositories), throwing LeaseLost when it
   * is no longer held: on PostgreSQL the lease row stays locked until that transaction ends, so
   * nobody takes the lease over before its writes commit or roll back.
   */
  fence(store: Pick<Store, 'leases'>): Promise<void>;
}

/**
 * Runs `work` holding the store's lease `name`, so that one such operation runs at a time across
 * every process and machine on the store. The lease is renewed every `renewMs` while `work`
 * runs and released when it ends; a holder that crashed blocks others until its lease lapses
 * (`ttlMs` after its last renewal), or not at all when it ran where this process can see that
 * its pid is gone. Another holder: LeaseBusy at once, or after `waitMs`.
 */
export async function withLease<T>(store: Store, name: string, operation: string, work: (lease: HeldLease) => Promise<T>, options: LeaseOptions = {}): Promise<T> {
  const t = { ...LEASE_TIMING, ...options };
  const record = await acquire(store, name, operation, t, options.waitMs ?? 0, options.progress);
  const controller = new AbortController();
  const lost = () => new LeaseLost(`lost the ${name} lease (not renewed within ${t.ttlMs / 1000} s, and taken over by another process): stopped before the next step`);
  let renewing: Promise<void> = Promise.resolve();
  const renew = async (via: Pick<Store, 'leases'>) => {
    if (controller.signal.aborted) throw controller.signal.reason as Error;
    const expiresAt = Date.now() + t.ttlMs;
    if (await via.leases.renew(name, record.holder, expiresAt)) {
      record.expiresAt = expiresAt;
      return;
    }
    controller.abort(lost());
    throw controller.signal.reason as Error;
  };
  const timer = setInterval(() => {
    renewing = renewing
      .then(() => renew(store))
      // A store that does not answer for a moment: the lease holds until it expires.
      .catch(() => {
        if (Date.now() >= record.expiresAt && !controller.signal.aborted) controller.abort(lost());
      });
  }, t.renewMs);
  timer.unref();
  const held: HeldLease = {
    record,
    signal: controller.signal,
    check: () => {
      if (controller.signal.aborted) throw controller.signal.reason as Error;
    },
    fence: (via) => renew(via),
  };
  try {
    return await work(held);
  } finally {
    clearInterval(timer);
    await renewing;
    // Not released (the store went away): it lapses at its expiry.
    await store.leases.release(name, record.holder).catch(() => undefined);
  }
}

async function acquire(store: Store, name: string, operation: string, t: LeaseTiming, waitMs: number, progress?: (line: string) => void): Promise<LeaseRecord> {
  const deadline = Date.now() + waitMs;
  let told = false;
  let replacing: string | undefined;
  for (;;) {
    const now = Date.now();
    const record: LeaseRecord = { name, holder: randomUUID(), owner: `${operation} by ${user()}`, host: hostname(), pid: process.pid, scope: processScope(), acquiredAt: now, expiresAt: now + t.ttlMs };
    if (await store.leases.acquire(record, now, replacing)) return record;
    const current = await store.leases.get(name);
    if (!current) continue; // released meanwhile
    if (processGone(current.scope, current.pid)) {
      progress?.(`taking over the ${name} lease of ${describe(current)}: that process has exited`);
      replacing = current.holder;
      continue;
    }
    replacing = undefined;
    if (Date.now() >= deadline) throw new LeaseBusy(busyMessage(name, current, waitMs), current);
    if (!told) progress?.(`waiting up to ${Math.round(waitMs / 1000)} s for ${describe(current)} to finish`);
    told = true;
    await sleep(Math.min(t.pollMs, Math.max(1, deadline - Date.now())));
  }
}

function busyMessage(name: string, holder: LeaseRecord, waitMs: number): string {
  return (
    `nothing changed: ${describe(holder)} holds the store's ${name} lease, since ${new Date(holder.acquiredAt).toISOString()}` +
    (waitMs > 0 ? `; it did not finish within ${Math.round(waitMs / 1000)} s.` : '.') +
    ` One such operation runs at a time. Run again when it has finished (--wait-for-lease <seconds> waits for it); if that process stopped without finishing, its lease lapses by ${new Date(holder.expiresAt).toISOString()}.`
  );
}

function describe(l: LeaseRecord): string {
  return `${l.owner} on ${l.host} (pid ${l.pid})`;
}

function user(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown user';
  }
}
