import { SignJWT } from 'jose';
import type { Principal, PrincipalUser } from '../auth/principal.js';
import type { Clock } from '../util/clock.js';
import type { Awaitable } from '../util/awaitable.js';
import { TtlCache } from '../util/ttl-cache.js';
import type { KeyService } from './keys.js';

export const ASSERTION_KEY_PURPOSE = 'assertion';

/**
 * The `X-Applinks-Assertion` JWT: the identity of the identity headers, signed (ES256) by a key
 * published as a JWKS, so a host reachable by other paths can check the headers came from
 * applinks. Signing costs far more than forwarding, so one assertion per identity is reused
 * until half its lifetime has passed.
 */
export class AssertionService {
  private readonly cache: TtlCache<{ token: string; user: PrincipalUser | null }>;

  constructor(
    private readonly keys: KeyService,
    private readonly clock: Clock,
    private readonly issuer: string,
    private readonly audience: string,
    private readonly ttlSeconds: number,
  ) {
    this.cache = new TtlCache(10_000, () => clock.now());
  }

  /** The assertion of a principal: synchronously from the cache, or signed now. */
  assertion(p: Principal): Awaitable<string> {
    const cacheKey = `${p.user?.id ?? ''}|${p.authType}|${p.link?.id ?? ''}|${p.scopes?.join(' ') ?? ''}|${p.connection}`;
    const hit = this.cache.get(cacheKey);
    // Signed for this very user record: a renamed or demoted user (seen through the user cache,
    // within APPLINKS_AUTH_CACHE_TTL_MS on every instance) gets a new assertion, never the old claims.
    return hit && hit.user === (p.user ?? null) ? hit.token : this.sign(p, cacheKey);
  }

  private async sign(p: Principal, cacheKey: string): Promise<string> {
    const { record, privateKey } = await this.keys.activeKey(ASSERTION_KEY_PURPOSE, 'ES256');
    const now = Math.floor(this.clock.now() / 1000);
    const claims: Record<string, unknown> = { auth: p.authType, conn: p.connection };
    if (p.user) Object.assign(claims, { uid: p.user.id, name: p.user.displayName, email: p.user.email, admin: p.user.isAdmin, groups: p.user.groups });
    if (p.link) claims.link = p.link.id;
    if (p.scopes) claims.scope = p.scopes.join(' ');
    let jwt = new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', kid: record.kid, typ: 'JWT' })
      .setIssuer(this.issuer)
      .setAudience(this.audience)
      .setIssuedAt(now)
      .setExpirationTime(now + this.ttlSeconds);
    if (p.user) jwt = jwt.setSubject(p.user.username);
    const token = await jwt.sign(privateKey);
    this.cache.set(cacheKey, { token, user: p.user ?? null }, (this.ttlSeconds * 1000) / 2, p.user ? [`user:${p.user.id}`] : []);
    return token;
  }

  /** Drops cached assertions of a user (their name or rights changed). */
  get revocable(): TtlCache<{ token: string; user: PrincipalUser | null }> {
    return this.cache;
  }

  jwks(): Promise<{ keys: Record<string, unknown>[] }> {
    return this.keys.jwks(ASSERTION_KEY_PURPOSE);
  }
}
