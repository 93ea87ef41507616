import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { Keyring } from '../crypto/keyring.js';
import type { InstanceRecord } from '../storage/repositories/instances.js';
import type { Store } from '../storage/store.js';
import { processScope } from '../util/process-scope.js';
import type { KeySourceKind } from './master-key.js';

export interface InstanceTiming {
  /** How often a process following the key file looks at it (one stat) when it seals nothing. */
  keyPollMs: number;
  /** How often an instance says it is alive and which keys it holds. */
  heartbeatMs: number;
  /** An instance not heard from for this long is taken to have stopped. */
  liveMs: number;
  /** Rows of instances not heard from for this long are deleted. */
  forgetMs: number;
}

/**
 * A heartbeat every 3 s (one small write) so that an instance killed without deregistering (a
 * crash, SIGKILL, a lost machine) stops holding up `keys rotate` after 10 s rather than 30 s.
 * Counting a live but stalled instance as stopped costs little: it reads the key file before
 * sealing and when it meets an unknown key id.
 */
export const INSTANCE_TIMING: InstanceTiming = { keyPollMs: 1000, heartbeatMs: 3_000, liveMs: 10_000, forgetMs: 86_400_000 };

/**
 * This serving process as one of the instances on the store: it follows the key file (looking
 * every `keyPollMs`, so it adopts a rotated key even when it seals nothing) and says which
 * master keys it holds and seals with, at start, whenever they change, and every `heartbeatMs`.
 * `applinks keys rotate` and `prune` read these reports. Times are the system clock's: they are
 * compared across processes, not with the protocols' (injectable) clock.
 */
export class InstanceRegistry {
  readonly id = randomUUID();
  private readonly startedAt = Date.now();
  private writes: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(
    private readonly store: Store,
    private readonly keyring: Keyring,
    private readonly keySource: KeySourceKind,
    private readonly logger: Logger,
    private readonly timing: InstanceTiming = INSTANCE_TIMING,
  ) {}

  /** Registers the instance and starts following the keys; answers how to stop (which deregisters). */
  async start(): Promise<() => Promise<void>> {
    this.keyring.listen({
      changed: (kids) => {
        if (this.stopped) return;
        this.logger.info({ sealingKid: kids[0], kids }, 'master keys changed: sealing with the first');
        void this.report();
      },
      failed: (error) => this.logger.warn({ problem: error.message }, 'could not read the master key file; keeping the keys in use'),
    });
    await this.store.instances.forgetSeenBefore(Date.now() - this.timing.forgetMs);
    await this.report();
    const timers = [setInterval(() => void this.report(), this.timing.heartbeatMs)];
    // A change is reported by the listener above; this only makes the instance look.
    if (this.keySource === 'file') timers.push(setInterval(() => this.keyring.refresh(), this.timing.keyPollMs));
    for (const t of timers) t.unref();
    return async () => {
      this.stopped = true;
      for (const t of timers) clearInterval(t);
      await this.writes;
      await this.store.instances.remove(this.id).catch((error: unknown) => this.logger.warn({ err: error }, 'could not deregister the instance'));
    };
  }

  /**
   * Writes the instance's row. Writes are queued and each reads the keys when it runs, so the
   * last one to land always says what the instance holds now.
   */
  report(): Promise<void> {
    this.writes = this.writes.then(async () => {
      if (this.stopped) return;
      const record: InstanceRecord = {
        id: this.id,
        host: hostname(),
        pid: process.pid,
        keySource: this.keySource,
        sealingKid: this.keyring.currentKid,
        kids: this.keyring.kids,
        startedAt: this.startedAt,
        seenAt: Date.now(),
        scope: processScope(),
      };
      await this.store.instances.report(record).catch((error: unknown) => this.logger.warn({ err: error }, 'could not report the instance and its keys'));
    });
    return this.writes;
  }
}
