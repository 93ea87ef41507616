import { verifyPassword, DUMMY_PASSWORD_HASH } from '../crypto/password.js';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { hmacBase64url, keyedHash } from '../crypto/tokens.js';
import { AppError } from '../errors/index.js';
import type { UserRecord } from '../storage/repositories/users.js';
import type { Store } from '../storage/store.js';
import type { Clock } from '../util/clock.js';
import { andThen, type Awaitable } from '../util/awaitable.js';
import { isStorableName } from '../util/text.js';
import { TtlCache } from '../util/ttl-cache.js';
import type { Actor, AuditService } from './audit.js';
import type { Revocations } from './revocations.js';
import type { UserService } from './users.js';

export interface SignInLimits {
  maxFailuresPerUser: number;
  maxFailuresPerAddress: number;
  windowSeconds: number;
  passwordCacheTtlSeconds: number;
}

/** The cookie that marks a browser where a user signed in before (see {@link SignInService.deviceCookie}). */
export const DEVICE_COOKIE = 'applinks_device';
/** How long a browser stays known after its last successful sign-in. */
export const DEVICE_COOKIE_MAX_AGE_SECONDS = 180 * 86_400;

/**
 * Password checks for the sign-in form and Basic authentication, with the throttle on failures
 * (per username and per client address, counted in the store so every instance shares them)
 * and a cache of recent successes, keyed by an HMAC of the credential so that Basic does not
 * run scrypt on every request. A cached success is used only while the user's stored password
 * hash is still the one it was checked against.
 *
 * The per-user throttle would let anyone lock a user out by guessing wrong on purpose. So a
 * browser where the user signed in before carries a device cookie (OWASP's "device cookies"):
 * bound to the username by a MAC, it moves that browser's attempts from the user's counter to
 * its own, so guesses from elsewhere do not lock the user out of their own browser, and the
 * cookie's own failures lock only it. It grants nothing else: the password is checked as always.
 */
export class SignInService {
  private readonly successes: TtlCache<{ userId: string; passwordHash: string }>;
  /** Full checks under way, by credential, address and device: the same attempt made at once joins the one check. */
  private readonly checking = new Map<string, Promise<UserRecord>>();
  private readonly cacheKeyPrefix: string;
  private readonly deviceKey: Buffer;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly users: UserService,
    private readonly audit: AuditService,
    revocations: Revocations,
    cacheKey: Buffer,
    private readonly limits: SignInLimits,
  ) {
    this.successes = revocations.register(new TtlCache(10_000, () => clock.now()));
    this.cacheKeyPrefix = `${cacheKey.toString('base64url')}\u0000`;
    this.deviceKey = Buffer.from(keyedHash(this.cacheKeyPrefix, 'device cookies'), 'base64url');
  }

  /** A device cookie value for a browser where `username` just signed in: `<id>.<MAC of id and username>`. */
  deviceCookie(username: string): string {
    const id = randomBytes(18).toString('base64url');
    return `${id}.${this.deviceMac(id, username)}`;
  }

  /** The throttle key of a device cookie when it was issued for this username, else undefined. */
  private knownDevice(cookie: string | undefined, username: string): string | undefined {
    if (!cookie || cookie.length > 200) return undefined;
    const dot = cookie.indexOf('.');
    if (dot < 1) return undefined;
    const id = cookie.slice(0, dot);
    const given = Buffer.from(cookie.slice(dot + 1));
    const expected = Buffer.from(this.deviceMac(id, username));
    return given.length === expected.length && timingSafeEqual(given, expected) ? `signin:device:${id}` : undefined;
  }

  private deviceMac(id: string, username: string): string {
    return hmacBase64url(this.deviceKey, `${id}\u0000${username.toLowerCase()}`);
  }

  /**
   * Answers the user whose password this is. Throws too_many_attempts (429, Retry-After),
   * invalid_credentials or user_disabled; failures are counted and audited.
   */
  verify(username: string, password: string, how: 'form' | 'basic', address: string, device?: string): Awaitable<UserRecord> {
    const key = keyedHash(this.cacheKeyPrefix, `${username.toLowerCase()}\u0000${password}`);
    const hit = this.successes.get(key);
    if (!hit) return this.checkOnce(username, password, how, address, key, device);
    // A recent success, synchronously when the user is cached too: Basic pays no scrypt. It
    // stands only for the same user record: the name typed (renamed meanwhile, perhaps on
    // another instance) and the password hash (changed) must still be the ones checked.
    return andThen(this.users.cached(hit.userId), (user) => {
      if (user && user.passwordHash === hit.passwordHash && (user.username === username || user.username.toLowerCase() === username.toLowerCase())) {
        if (user.disabled) throw new AppError('user_disabled');
        return user;
      }
      this.successes.delete(key);
      return this.checkOnce(username, password, how, address, key, device);
    });
  }

  /**
   * The full check, once for the same attempt in flight: a client that opens many connections
   * at once with a right password (a Basic client on a cold cache, or when its cached success
   * expires) would otherwise count one attempt per request before the first check ended, and
   * be refused with 429 for its own password. Joined requests are the same guess, so counting
   * them once gives an attacker nothing; different ways in, addresses or devices never join.
   */
  private checkOnce(username: string, password: string, how: 'form' | 'basic', address: string, key: string, device: string | undefined): Promise<UserRecord> {
    const attempt = `${key}\u0000${how}\u0000${address}\u0000${device ?? ''}`;
    const running = this.checking.get(attempt);
    if (running) return running;
    const check = this.check(username, password, how, address, key, device).finally(() => this.checking.delete(attempt));
    this.checking.set(attempt, check);
    return check;
  }

  /**
   * The full check: the attempt is counted first (atomically, in the store shared by every
   * instance), so that a burst of parallel guesses cannot all pass the throttle before any of
   * them is counted; then scrypt; a success takes its count back and is remembered. A known
   * device's attempts count against the device instead of the user.
   */
  private async check(username: string, password: string, how: 'form' | 'basic', address: string, key: string, device: string | undefined): Promise<UserRecord> {
    // A name no account can have is wrong without asking the store.
    if (!isStorableName(username, 255)) throw new AppError('invalid_credentials', { message: 'The username or password is wrong.' });
    const counter = this.knownDevice(device, username) ?? userKey(username);
    await this.reserveAttempt(counter, address);
    const user = await this.store.users.findByUsername(username);
    // Spend the same scrypt time whether or not the user exists.
    const ok = await verifyPassword(password, user?.passwordHash ?? DUMMY_PASSWORD_HASH);
    if (!user || !user.passwordHash || !ok) {
      await this.recordFailure(username, address, how, user);
      throw new AppError('invalid_credentials', { message: 'The username or password is wrong.' });
    }
    if (user.disabled) throw new AppError('user_disabled');
    await this.store.throttle.reset(counter);
    await this.store.throttle.release(addressKey(address));
    this.successes.set(key, { userId: user.id, passwordHash: user.passwordHash }, this.limits.passwordCacheTtlSeconds * 1000, [`user:${user.id}`]);
    return user;
  }

  /**
   * A user changes their own password, proving the current one (throttled like a sign-in).
   * Every session of theirs ends; the caller signs the current browser in again.
   */
  async changePassword(userId: string, current: string, next: string, address: string, actor: Actor): Promise<UserRecord> {
    const user = await this.users.get(userId);
    if (!user.passwordHash) throw new AppError('validation_failed', { field: 'currentPassword', message: 'Your account has no password to change.' });
    try {
      await this.verify(user.username, current, 'form', address);
    } catch (error) {
      if (error instanceof AppError && error.code === 'invalid_credentials') {
        throw new AppError('validation_failed', { field: 'currentPassword', message: 'The current password is wrong.' });
      }
      throw error;
    }
    return this.users.update(userId, { password: next }, actor);
  }

  /** Counts this attempt for the user name (or known device) and the address; refuses it (429) past either limit. */
  private async reserveAttempt(counter: string, address: string): Promise<void> {
    const now = this.clock.now();
    const windowMs = this.limits.windowSeconds * 1000;
    const checks: Array<[string, number]> = [
      [counter, this.limits.maxFailuresPerUser],
      [addressKey(address), this.limits.maxFailuresPerAddress],
    ];
    for (const [key, max] of checks) {
      const state = await this.store.throttle.hit(key, now, windowMs);
      if (state.count > max) {
        const retryAfter = Math.max(1, Math.ceil((state.windowStart + windowMs - now) / 1000));
        throw new AppError('too_many_attempts', { headers: { 'retry-after': String(retryAfter) } });
      }
    }
  }

  /**
   * Audits a failed attempt (already counted). The typed name is kept only when it is a user's:
   * what someone types into the name field is often their password.
   */
  private async recordFailure(username: string, address: string, how: 'form' | 'basic', user: UserRecord | undefined): Promise<void> {
    const actor: Actor = { id: null, name: 'anonymous', address };
    const target = user ? { type: 'user', id: user.id, name: user.username } : { type: 'user', id: null, name: '(unknown user)' };
    await this.audit.record(actor, { action: 'signin.failed', target, details: { method: how } });
  }

  pruneThrottle(): Promise<void> {
    return this.store.throttle.deleteOlderThan(this.clock.now() - this.limits.windowSeconds * 1000);
  }
}

const userKey = (username: string) => `signin:user:${username.toLowerCase()}`;
/**
 * The throttle's address key: IPv4 as it is, IPv6 by its /64 (one subscriber usually holds a whole
 * /64, so counting single addresses would let a client rotate past the limit).
 */
export function addressKey(address: string): string {
  const v4 = /^(?:::ffff:)?(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (v4) return `signin:addr:${v4[1]}`;
  if (!address.includes(':')) return `signin:addr:${address}`;
  const [head, tail = ''] = address.toLowerCase().split('%')[0]!.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = address.includes('::') ? [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right] : left;
  return `signin:addr:${groups.slice(0, 4).map((g) => (g || '0').replace(/^0+(?=.)/, '')).join(':')}::/64`;
}
