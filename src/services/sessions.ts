import { hashToken, randomToken } from '../crypto/tokens.js';
import type { UserRecord } from '../storage/repositories/users.js';
import type { Store } from '../storage/store.js';
import type { Clock } from '../util/clock.js';
import { TtlCache } from '../util/ttl-cache.js';
import type { Revocations } from './revocations.js';
import type { UserService } from './users.js';

export const SESSION_COOKIE = 'applinks_session';
export const SESSION_PREFIX = 'alses_';

export interface ResolvedSession {
  idHash: string;
  user: UserRecord;
  expiresAt: number;
}

/**
 * Sign-in sessions. The cookie holds a random value; the store holds only its hash. A session of
 * a disabled or deleted user resolves to nothing.
 */
export class SessionService {
  private readonly cache: TtlCache<{ userId: string; expiresAt: number }>;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly users: UserService,
    private readonly revocations: Revocations,
    private readonly ttlSeconds: number,
    private readonly cacheTtlMs: number,
  ) {
    this.cache = revocations.register(new TtlCache(10_000, () => clock.now()));
  }

  async create(userId: string, address: string | null, userAgent: string | null): Promise<{ cookie: string; expiresAt: number }> {
    const cookie = randomToken(SESSION_PREFIX);
    const now = this.clock.now();
    const expiresAt = now + this.ttlSeconds * 1000;
    await this.store.sessions.create({ idHash: hashToken(cookie), userId, createdAt: now, expiresAt, address, userAgent: userAgent?.slice(0, 512) ?? null });
    return { cookie, expiresAt };
  }

  async resolve(cookie: string | undefined): Promise<ResolvedSession | undefined> {
    if (!cookie?.startsWith(SESSION_PREFIX)) return undefined;
    const idHash = hashToken(cookie);
    let session = this.cache.get(idHash);
    if (!session) {
      const row = await this.store.sessions.find(idHash);
      if (!row) return undefined;
      session = { userId: row.userId, expiresAt: row.expiresAt };
      this.cache.set(idHash, session, this.cacheTtlMs, [`user:${row.userId}`, `cred:${idHash}`]);
    }
    if (session.expiresAt <= this.clock.now()) {
      await this.destroy(cookie);
      return undefined;
    }
    const user = await this.users.cached(session.userId);
    if (!user || user.disabled) return undefined;
    return { idHash, user, expiresAt: session.expiresAt };
  }

  async destroy(cookie: string): Promise<void> {
    const idHash = hashToken(cookie);
    await this.store.sessions.delete(idHash);
    this.revocations.credential(idHash);
  }

  pruneExpired(): Promise<number> {
    return this.store.sessions.deleteExpired(this.clock.now());
  }
}
