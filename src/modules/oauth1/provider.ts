import { randomBytes, randomInt, type KeyObject } from 'node:crypto';
import type { Connection, Principal } from '../../auth/principal.js';
import { WARNINGS } from '../../auth/principal.js';
import { constantTimeEqual, hashToken, randomToken } from '../../crypto/tokens.js';
import { AppError } from '../../errors/index.js';
import { formEncodeOAuth } from '../../protocols/oauth1/encoding.js';
import { isProtocolParameter, type OAuthMessage } from '../../protocols/oauth1/parameters.js';
import { oauthProblem, type OAuth1ProblemCode, type ProblemOptions } from '../../protocols/oauth1/problems.js';
import { hmacKeyObject, type SigningSecrets } from '../../protocols/oauth1/signature.js';
import { checkProtocolParameters, checkSignature, type ProtocolParameters } from '../../protocols/oauth1/validate.js';
import type { Actor } from '../../services/audit.js';
import type { Authorization } from '../../services/authorizations.js';
import type { Services } from '../../services/index.js';
import { toPrincipalUser } from '../../services/users.js';
import { isForeignKeyViolation, isUniqueViolation, unlessDeletedMeanwhile, type Executor } from '../../storage/repositories/common.js';
import type { UserRecord } from '../../storage/repositories/users.js';
import { andThen, type Awaitable } from '../../util/awaitable.js';
import { LastUse } from '../../util/last-use.js';
import { isUriText } from '../../util/text.js';
import { TtlCache } from '../../util/ttl-cache.js';
import { allowedMethods, OAUTH1_2LO_TYPE, OAUTH1_2LOI_TYPE, OAUTH1_TYPE, toConsumer, type Consumer } from './consumers.js';
import { NonceStore } from './nonces.js';
import { OAuth1Repository, type AccessTokenRecord, type RequestTokenRecord } from './repository.js';
import { sealContexts } from './tables.js';

/** Token prefixes by kind (CONVENTIONS.md habit 6); clients treat the values as opaque. */
export const REQUEST_TOKEN_PREFIX = 'alort_';
export const ACCESS_TOKEN_PREFIX = 'aloat_';
export const SESSION_HANDLE_PREFIX = 'alosh_';

/** Atlassian's AuthorizeServlet.VERIFIER_LENGTH; letters and digits, case-sensitive. */
const VERIFIER_LENGTH = 6;
const VERIFIER_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** How a request reached an endpoint: the URL it was addressed to is what the client signed. */
export interface SignedRequest {
  method: string;
  url: string;
  secure: boolean;
  /** Marks parameters as consumed credentials (the gateway then does not forward them). */
  consume?: (drop: (name: string) => boolean) => void;
}

/** An access token in the per-instance cache: the record, its opened secret, and the HMAC key made from them. */
interface CachedAccess {
  record: AccessTokenRecord;
  secret: string;
  hmac?: { consumer: Consumer; key: KeyObject };
}

/** What the consent page shows about a request token. */
export interface PendingAuthorization {
  record: RequestTokenRecord;
  consumer: Consumer;
}

/**
 * The OAuth 1.0a service provider, wire-compatible with Jira's (PROTOCOLS.md §1): temporary
 * credentials, the user's decision, token credentials and their renewal, and authentication of
 * signed requests (3-legged, 2-legged, 2-legged with impersonation). Every endpoint runs the
 * same ordered checks: protocol parameters, consumer, signature method, token, signature,
 * nonce, then the state of what the token stands for.
 */
export class OAuth1Provider {
  readonly repo: OAuth1Repository;
  private readonly nonces: NonceStore;
  private readonly accessCache: TtlCache<CachedAccess>;
  /** Access-token last-use times, written in batches so a resource request never waits for a write. */
  private readonly lastUsed = new LastUse();
  private readonly consumerKeys = new WeakMap<Consumer, KeyObject>();

  constructor(private readonly s: Services) {
    this.repo = new OAuth1Repository(s.store.db);
    this.nonces = new NonceStore(this.repo, s.clock, s.store.capabilities, s.config.oauth1TimestampWindowSeconds);
    this.accessCache = s.revocations.register(new TtlCache<CachedAccess>(100_000, () => s.clock.now()));
  }

  /** The realm problems are reported under: the base URL, as Jira does. */
  get realm(): string {
    return this.s.config.baseUrl;
  }

  private get now(): number {
    return this.s.clock.now();
  }

  problem(code: OAuth1ProblemCode, options: ProblemOptions = {}): AppError {
    return oauthProblem(code, this.realm, options);
  }

  // ---------------------------------------------------------------- the common checks

  // The request path answers synchronously while everything it needs is cached (Awaitable): it
  // runs on every signed request through the gateway.

  /** The consumer registered under a key, or consumer_key_unknown. */
  consumer(key: string): Awaitable<Consumer> {
    return andThen(this.s.links.findIncoming(OAUTH1_TYPE, key), (match) => {
      if (!match) throw this.problem('oauth1_consumer_key_unknown', { advice: 'No application link has this consumer key.', detail: `unknown consumer ${key.slice(0, 64)}` });
      return toConsumer(match.link, match.auth, (auth) => this.s.links.openSecrets(auth));
    });
  }

  /** Parameters, consumer and signature method: what every endpoint checks first. */
  private begin(request: SignedRequest, message: OAuthMessage): Awaitable<{ p: ProtocolParameters; consumer: Consumer }> {
    const p = checkProtocolParameters(message, { now: this.now, windowSeconds: this.s.config.oauth1TimestampWindowSeconds, realm: this.realm });
    return andThen(this.consumer(p.consumerKey), (consumer) => this.methodAllowed(request, p, consumer));
  }

  private methodAllowed(request: SignedRequest, p: ProtocolParameters, consumer: Consumer): { p: ProtocolParameters; consumer: Consumer } {
    const allowed = allowedMethods(consumer, request.secure);
    if (!allowed.includes(p.signatureMethod)) {
      const why =
        consumer.rsaKey !== null
          ? 'This consumer is registered with an RSA public key: sign with RSA-SHA1.'
          : p.signatureMethod === 'PLAINTEXT'
            ? 'PLAINTEXT is accepted only over https.'
            : 'This consumer is registered with a shared secret: sign with HMAC-SHA1.';
      throw this.problem('oauth1_signature_method_rejected', { advice: why });
    }
    return { p, consumer };
  }

  /** The signature with the consumer's key and the token secret, then the nonce. */
  private verify(request: SignedRequest, p: ProtocolParameters, consumer: Consumer, tokenSecret: string | undefined, hmacKey?: KeyObject): Awaitable<void> {
    const secrets: SigningSecrets = consumer.rsaKey
      ? { rsaKey: consumer.rsaKey }
      : { consumerSecret: consumer.sharedSecret ?? '', ...(tokenSecret !== undefined ? { tokenSecret } : {}), hmacKey: hmacKey ?? (tokenSecret === undefined ? this.twoLeggedKey(consumer) : undefined) };
    checkSignature(request, p, secrets, { realm: this.realm, debug: this.s.config.oauth1DebugSignatures });
    // Remembered until no timestamp check could accept the request again (plus a minute of
    // clock difference between instances).
    const expiresAt = (p.timestamp + this.s.config.oauth1TimestampWindowSeconds + 60) * 1000;
    return andThen(this.nonces.check(consumer.key, p.nonce, expiresAt), (fresh) => {
      if (!fresh) throw this.problem('oauth1_nonce_used', { advice: 'This nonce was already used: every request needs a new oauth_nonce.' });
    });
  }

  /** The HMAC key of a consumer's 2-legged (and token-less) requests, made once per consumer record. */
  private twoLeggedKey(consumer: Consumer): KeyObject | undefined {
    if (consumer.sharedSecret === null) return undefined;
    let key = this.consumerKeys.get(consumer);
    if (!key) this.consumerKeys.set(consumer, (key = hmacKeyObject(consumer.sharedSecret, undefined)));
    return key;
  }

  private openSecret(sealed: string, context: string): string {
    return this.s.keyring.open(sealed, context);
  }

  // ---------------------------------------------------------------- temporary credentials

  /**
   * RFC 5849 §2.1, at Jira's `/plugins/servlet/oauth/request-token`: a signed request with the
   * consumer's credentials only, and `oauth_callback` (an absolute http(s) URL or `oob`).
   * Answers the form-encoded body: `oauth_token`, `oauth_token_secret`, `oauth_callback_confirmed`.
   */
  async requestToken(request: SignedRequest, message: OAuthMessage): Promise<string> {
    const { p, consumer } = await this.begin(request, message);
    if (p.token) throw this.problem('oauth1_parameter_rejected', { params: { oauth_parameters_rejected: 'oauth_token' }, advice: 'A request-token call carries no oauth_token.' });
    await this.verify(request, p, consumer, undefined);
    if (!consumer.allow3LO) throw this.problem('oauth1_permission_denied', { advice: '3-legged OAuth is switched off for this consumer.' });
    const callbackParam = p.get('oauth_callback');
    let callback: string | null;
    let version: '1.0' | '1.0a' = '1.0a';
    if (callbackParam === undefined) {
      if (!this.s.config.oauth1DangerouslyAllowOAuth10) {
        throw this.problem('oauth1_parameter_absent', { params: { oauth_parameters_absent: 'oauth_callback' }, advice: 'OAuth 1.0a: send oauth_callback (an absolute http(s) URL, or oob).' });
      }
      version = '1.0';
      callback = null;
    } else if (callbackParam === 'oob') {
      callback = null;
    } else {
      if (!isAbsoluteHttpUrl(callbackParam)) {
        throw this.problem('oauth1_parameter_rejected', {
          params: { oauth_parameters_rejected: 'oauth_callback' },
          advice: 'oauth_callback must be an absolute http or https URI, or "oob".',
        });
      }
      callback = callbackParam;
    }
    const token = randomToken(REQUEST_TOKEN_PREFIX, 24);
    const secret = randomBytes(24).toString('base64url');
    const tokenHash = hashToken(token);
    const now = this.now;
    try {
      await this.repo.insertRequestToken({
        tokenHash,
        linkId: consumer.linkId,
        consumerKey: consumer.key,
        secretSealed: this.s.keyring.seal(secret, sealContexts.requestSecret(tokenHash)),
        callback,
        version,
        state: 'pending',
        userId: null,
        verifierHash: null,
        createdAt: now,
        expiresAt: now + this.s.config.oauth1RequestTokenTtlSeconds * 1000,
      });
    } catch (error) {
      // The consumer was read from a cache: its link deleted meanwhile (here or on another
      // instance), the token names no link and nothing is written. As for an unknown consumer.
      if (!isForeignKeyViolation(error)) throw error;
      this.s.revocations.link(consumer.linkId);
      throw this.problem('oauth1_consumer_key_unknown', { advice: 'The application link of this consumer was removed.', detail: 'foreign key refused the request token: link removed' });
    }
    const pairs: Array<[string, string]> = [
      ['oauth_token', token],
      ['oauth_token_secret', secret],
    ];
    if (callbackParam !== undefined) pairs.push(['oauth_callback_confirmed', 'true']);
    return formEncodeOAuth(pairs);
  }

  // ---------------------------------------------------------------- the user's decision

  /**
   * The request token a consent page is about, or an error for a page (never a redirect: until
   * the token is known there is no callback to trust).
   */
  async pendingAuthorization(token: string | undefined): Promise<PendingAuthorization> {
    if (!token) throw new AppError('oauth1_parameter_absent', { message: 'The link you followed has no oauth_token: go back to the application and start again.' });
    const record = token.startsWith(REQUEST_TOKEN_PREFIX) ? await this.repo.findRequestToken(hashToken(token)) : undefined;
    if (!record) throw new AppError('oauth1_token_rejected', { message: 'This authorization request is unknown or was already used. Go back to the application and start again.' });
    if (record.expiresAt <= this.now) throw new AppError('oauth1_token_expired', { message: 'This authorization request has expired. Go back to the application and start again.' });
    if (record.state !== 'pending') throw new AppError('oauth1_token_rejected', { message: 'This authorization request was already decided.' });
    let consumer: Consumer;
    try {
      consumer = await this.consumer(record.consumerKey);
    } catch {
      throw new AppError('oauth1_consumer_key_unknown', { message: 'The application that asked is no longer linked.' });
    }
    if (consumer.linkId !== record.linkId) throw new AppError('oauth1_token_rejected', { message: 'This authorization request is not valid.' });
    if (!consumer.allow3LO) throw new AppError('oauth1_permission_denied', { message: `${consumer.name} may no longer ask users for access.` });
    return { record, consumer };
  }

  /**
   * Where the browser goes after a decision. 1.0a: the callback of the request-token call (none
   * for `oob`: the verifier is shown). 1.0 (only with the dangerous switch): the callback of the
   * authorize request, else the consumer's registered one.
   */
  callbackOf(pending: PendingAuthorization, fromAuthorizeRequest: string | undefined): string | null {
    if (pending.record.version === '1.0a') return pending.record.callback;
    if (fromAuthorizeRequest && isAbsoluteHttpUrl(fromAuthorizeRequest)) return fromAuthorizeRequest;
    return pending.consumer.callback;
  }

  /** "Allow": binds the request token to the user with a fresh verifier. Answers the verifier. */
  async approve(pending: PendingAuthorization, user: UserRecord, actor: Actor): Promise<string> {
    const verifier = Array.from({ length: VERIFIER_LENGTH }, () => VERIFIER_ALPHABET[randomInt(VERIFIER_ALPHABET.length)]).join('');
    const ok = await unlessDeletedMeanwhile(
      () =>
        this.s.store.transaction(async (repos, trx) => {
          if (!(await new OAuth1Repository(trx).authorizeRequestToken(pending.record.tokenHash, user.id, hashToken(verifier), this.now))) return false;
          await this.s.audit.record(actor, { action: 'oauth1.consent', target: { type: 'link', id: pending.consumer.linkId, name: pending.consumer.linkName }, details: { consumerKey: pending.consumer.key } }, repos);
          return true;
        }),
      (error) => this.removedWhileDeciding(error, pending, user.id),
    );
    if (!ok) throw new AppError('oauth1_token_rejected', { message: 'This authorization request was already decided or has expired.' });
    return verifier;
  }

  /** "Deny": the access-token call for this token will get permission_denied. */
  async deny(pending: PendingAuthorization, user: UserRecord): Promise<void> {
    const ok = await unlessDeletedMeanwhile(
      () => this.repo.denyRequestToken(pending.record.tokenHash, user.id),
      (error) => this.removedWhileDeciding(error, pending, user.id),
    );
    if (!ok) throw new AppError('oauth1_token_rejected', { message: 'This authorization request was already decided.' });
  }

  /**
   * After the store refused to bind a request token to a user (foreign key): the user, read from
   * caches up to APPLINKS_AUTH_CACHE_TTL_MS old, was deleted while deciding (here or on another
   * instance), or the consumer's link was. Nothing was written; the error is for the page.
   */
  private async removedWhileDeciding(error: unknown, pending: PendingAuthorization, userId: string): Promise<AppError> {
    if ((await this.removedMeanwhile(pending.consumer, userId)) === 'consumer') {
      return new AppError('oauth1_consumer_key_unknown', { message: `${pending.consumer.name} is no longer linked: it was removed while you were deciding. Nothing was authorized.`, cause: error });
    }
    return new AppError('oauth1_token_rejected', { message: 'Your account was removed while you were deciding. Nothing was authorized.', cause: error });
  }

  /**
   * After a write naming a consumer's link and a user was refused by a foreign key: which of them
   * was deleted since it was read (from the store, not the caches). What this instance still
   * caches of it is dropped, so the next request sees it. Answers `user` when the consumer is still there.
   */
  private async removedMeanwhile(consumer: Consumer, userId: string): Promise<'consumer' | 'user'> {
    const auth = await this.s.store.links.findAuth(consumer.linkId, 'incoming', OAUTH1_TYPE);
    if (!auth || auth.lookupKey !== consumer.key) {
      this.s.revocations.link(consumer.linkId);
      return 'consumer';
    }
    this.s.revocations.user(userId);
    return 'user';
  }

  // ---------------------------------------------------------------- token credentials

  /**
   * RFC 5849 §2.3 at `/plugins/servlet/oauth/access-token`: exchanges an authorized request
   * token (with `oauth_verifier` for 1.0a tokens) for an access token, or renews an access token
   * with its `oauth_session_handle`. Answers `oauth_token`, `oauth_token_secret`,
   * `oauth_expires_in`, `oauth_session_handle`, `oauth_authorization_expires_in` (PROTOCOLS.md §1.5).
   */
  async accessToken(request: SignedRequest, message: OAuthMessage): Promise<string> {
    const { p, consumer } = await this.begin(request, message);
    if (!p.token) throw this.problem('oauth1_parameter_absent', { params: { oauth_parameters_absent: 'oauth_token' }, advice: 'Send the request token (or, to renew, the access token).' });
    if (p.token.startsWith(ACCESS_TOKEN_PREFIX)) return this.renew(request, p, consumer);
    const record = p.token.startsWith(REQUEST_TOKEN_PREFIX) ? await this.repo.findRequestToken(hashToken(p.token)) : undefined;
    if (!record || record.linkId !== consumer.linkId || record.consumerKey !== consumer.key) {
      throw this.problem('oauth1_token_rejected', { advice: 'The request token is unknown, already exchanged, or belongs to another consumer.' });
    }
    await this.verify(request, p, consumer, this.openSecret(record.secretSealed, sealContexts.requestSecret(record.tokenHash)));
    const now = this.now;
    if (record.expiresAt <= now) throw this.problem('oauth1_token_expired', { advice: 'The request token expired before it was exchanged: start again.' });
    if (record.state === 'pending') throw this.problem('oauth1_permission_unknown', { advice: 'The user has not decided yet.' });
    if (record.state === 'denied') throw this.problem('oauth1_permission_denied', { advice: 'The user denied access.' });
    const verifier = p.get('oauth_verifier');
    if (verifier === undefined && record.version === '1.0a') {
      throw this.problem('oauth1_parameter_absent', { params: { oauth_parameters_absent: 'oauth_verifier' }, advice: 'OAuth 1.0a: send the oauth_verifier the user brought back.' });
    }
    if (verifier !== undefined && (record.verifierHash === null || !constantTimeEqual(hashToken(verifier), record.verifierHash))) {
      throw this.problem('oauth1_token_rejected', { advice: 'The verifier does not match.' });
    }
    if (!consumer.allow3LO) throw this.problem('oauth1_permission_denied', { advice: '3-legged OAuth is switched off for this consumer.' });
    const user = record.userId ? await this.s.users.cached(record.userId) : undefined;
    if (!user || user.disabled) throw this.problem('oauth1_permission_denied', { advice: 'The user who authorized this is disabled or deleted.' });
    const issued = this.newAccessToken(consumer, user.id, now, undefined);
    await this.withLiveTokenRetry(async (trx) => {
      const r = new OAuth1Repository(trx);
      if (!(await r.consumeRequestToken(record.tokenHash))) return false;
      await r.issueAccessToken(issued.record, now);
      return true;
    }, { consumer, userId: user.id }, 'The request token was already exchanged.');
    this.s.revocations.credential(`oauth1:${user.id}:${consumer.linkId}`);
    return issued.body;
  }

  /** Renewal: a live session issues a new access token and revokes the one presented. */
  private async renew(request: SignedRequest, p: ProtocolParameters, consumer: Consumer): Promise<string> {
    const record = await this.repo.findAccessToken(hashToken(p.token!));
    if (!record || record.linkId !== consumer.linkId || record.consumerKey !== consumer.key) {
      throw this.problem('oauth1_token_rejected', { advice: 'The access token is unknown or belongs to another consumer.' });
    }
    await this.verify(request, p, consumer, this.openSecret(record.secretSealed, sealContexts.accessSecret(record.tokenHash)));
    const handle = p.get('oauth_session_handle');
    if (handle === undefined) throw this.problem('oauth1_parameter_absent', { params: { oauth_parameters_absent: 'oauth_session_handle' }, advice: 'To renew, send oauth_session_handle.' });
    if (!constantTimeEqual(hashToken(handle), record.sessionHash)) throw this.problem('oauth1_token_rejected', { advice: 'The session handle does not match this token.' });
    if (record.revokedAt !== null) throw this.problem('oauth1_token_revoked', { advice: 'The authorization was revoked: the user must authorize again.' });
    const now = this.now;
    if (record.sessionExpiresAt <= now) throw this.problem('oauth1_permission_denied', { advice: 'The authorization expired: the user must authorize again.' });
    if (!consumer.allow3LO) throw this.problem('oauth1_permission_denied', { advice: '3-legged OAuth is switched off for this consumer.' });
    const user = await this.s.users.cached(record.userId);
    if (!user || user.disabled) throw this.problem('oauth1_permission_denied', { advice: 'The user of this authorization is disabled or deleted.' });
    const issued = this.newAccessToken(consumer, user.id, now, { handle, sessionHash: record.sessionHash });
    await this.withLiveTokenRetry(async (trx) => {
      const r = new OAuth1Repository(trx);
      if (!(await r.revokeAccessToken(record.tokenHash, 'renewed', now))) return false;
      await r.issueAccessToken(issued.record, now);
      return true;
    }, { consumer, userId: user.id }, 'The access token was renewed by a concurrent request.', 'oauth1_token_revoked');
    this.s.revocations.credential(record.tokenHash);
    return issued.body;
  }

  /**
   * Runs an issuing transaction; a concurrent authorization of the same user and consumer wins
   * once, then this one retries. The consumer and user were read from caches: when the link or
   * the user was deleted meanwhile (here or on another instance), the store refuses the token
   * (foreign key), nothing is written, and the consumer hears token_rejected.
   */
  private async withLiveTokenRetry(
    work: (trx: Executor) => Promise<boolean>,
    issuedTo: { consumer: Consumer; userId: string },
    lostMessage: string,
    lostCode: OAuth1ProblemCode = 'oauth1_token_rejected',
  ): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      let ok: boolean;
      try {
        ok = await this.s.store.transaction((_repos, trx) => work(trx));
      } catch (error) {
        if (isForeignKeyViolation(error)) {
          const gone = await this.removedMeanwhile(issuedTo.consumer, issuedTo.userId);
          throw this.problem('oauth1_token_rejected', {
            advice: gone === 'consumer' ? 'The application link of this consumer was removed.' : 'The user who authorized this token was removed.',
            detail: `foreign key refused the access token: ${gone} removed`,
          });
        }
        if (!isUniqueViolation(error) || attempt >= 3) throw error;
        continue;
      }
      if (!ok) throw this.problem(lostCode, { advice: lostMessage });
      return;
    }
  }

  /**
   * A new access token, in a new session or, on renewal, in the session it renews. Either way the
   * session lives the session lifetime from now: as Atlassian's (valid while the time since its
   * last renewal is within its time to live), each renewal extends it.
   */
  private newAccessToken(consumer: Consumer, userId: string, now: number, session: { handle: string; sessionHash: string } | undefined) {
    const token = randomToken(ACCESS_TOKEN_PREFIX, 24);
    const secret = randomBytes(24).toString('base64url');
    const handle = session?.handle ?? randomToken(SESSION_HANDLE_PREFIX, 24);
    const tokenHash = hashToken(token);
    const sessionExpiresAt = now + this.s.config.oauth1SessionTtlSeconds * 1000;
    const expiresAt = Math.min(now + this.s.config.oauth1AccessTokenTtlSeconds * 1000, sessionExpiresAt);
    const record: AccessTokenRecord = {
      tokenHash,
      linkId: consumer.linkId,
      consumerKey: consumer.key,
      userId,
      secretSealed: this.s.keyring.seal(secret, sealContexts.accessSecret(tokenHash)),
      sessionHash: session?.sessionHash ?? hashToken(handle),
      createdAt: now,
      lastUsedAt: null,
      expiresAt,
      sessionExpiresAt,
      revokedAt: null,
      revokedReason: null,
    };
    const body = formEncodeOAuth([
      ['oauth_token', token],
      ['oauth_token_secret', secret],
      ['oauth_expires_in', String(Math.floor((expiresAt - now) / 1000))],
      ['oauth_session_handle', handle],
      ['oauth_authorization_expires_in', String(Math.floor((sessionExpiresAt - now) / 1000))],
    ]);
    return { record, body };
  }

  // ---------------------------------------------------------------- protected resources

  /**
   * A signed request for a protected resource (PROTOCOLS.md §1.8): a non-empty `oauth_token` is
   * 3-legged and acts as the user who authorized it; an empty or absent one is 2-legged, acting
   * as the user named by `xoauth_requestor_id` (or the legacy `user_id`) when impersonation is
   * allowed, else as the consumer's "execute as" user or anonymously when 2LO is allowed.
   */
  authenticate(request: SignedRequest, message: OAuthMessage, connection: Connection): Awaitable<Principal> {
    return andThen(this.begin(request, message), ({ p, consumer }) => {
      // What signed the request is not the host's business: oauth_* parameters are not passed on.
      if (message.transports.has('query') || message.transports.has('body')) request.consume?.(isProtocolParameter);
      if (p.token) return this.threeLegged(request, p, consumer, connection);
      return andThen(this.verify(request, p, consumer, undefined), () => this.twoLegged(p, consumer, connection));
    });
  }

  /** A 2-legged request whose signature and nonce passed: as whom it acts. */
  private async twoLegged(p: ProtocolParameters, consumer: Consumer, connection: Connection): Promise<Principal> {
    const link = { id: consumer.linkId, name: consumer.linkName };
    const requestor = this.requestorOf(p);
    if (requestor !== undefined) {
      if (!consumer.allow2LOImpersonation) throw this.problem('oauth1_permission_denied', { advice: 'This consumer may not act as users it names (2-legged OAuth with impersonation is off).' });
      const user = await this.s.users.cachedByUsername(requestor);
      if (!user || user.disabled) throw this.problem('oauth1_permission_denied', { advice: 'The user to act as does not exist or is disabled.' });
      return { user: toPrincipalUser(user), link, authType: OAUTH1_2LOI_TYPE, scopes: null, connection, warnings: [WARNINGS.impersonation] };
    }
    if (!consumer.allow2LO) throw this.problem('oauth1_permission_denied', { advice: '2-legged OAuth is switched off for this consumer.' });
    if (consumer.executeAs === null) return { user: null, link, authType: OAUTH1_2LO_TYPE, scopes: null, connection, warnings: [] };
    const user = await this.s.users.cachedByUsername(consumer.executeAs);
    if (!user || user.disabled) throw this.problem('oauth1_permission_denied', { advice: 'The user 2-legged requests act as is disabled or deleted.' });
    return { user: toPrincipalUser(user), link, authType: OAUTH1_2LO_TYPE, scopes: null, connection, warnings: [] };
  }

  /** `xoauth_requestor_id`, else the deprecated `user_id`; each must be sent once. Blank names nobody (as Atlassian's filter reads it). */
  private requestorOf(p: ProtocolParameters): string | undefined {
    const xoauth = p.get('xoauth_requestor_id');
    if (xoauth !== undefined && xoauth.trim() !== '') return xoauth;
    const legacy = p.message.pairs.filter(([name]) => name === 'user_id');
    if (legacy.length > 1) throw this.problem('oauth1_parameter_rejected', { params: { oauth_parameters_rejected: 'user_id' }, advice: 'user_id is repeated.' });
    const named = legacy[0]?.[1];
    return named !== undefined && named.trim() !== '' ? named : undefined;
  }

  private threeLegged(request: SignedRequest, p: ProtocolParameters, consumer: Consumer, connection: Connection): Awaitable<Principal> {
    const token = p.token!;
    if (!token.startsWith(ACCESS_TOKEN_PREFIX)) throw this.problem('oauth1_token_rejected', { advice: 'This is not an access token.' });
    // Keyed by the token itself (held for a second, beside its secret): a hit costs no hash.
    const cached = this.accessCache.get(token);
    return cached ? this.withAccessToken(request, p, consumer, connection, cached) : this.loadAccessToken(token).then((loaded) => this.withAccessToken(request, p, consumer, connection, loaded));
  }

  private async loadAccessToken(token: string): Promise<CachedAccess> {
    const tokenHash = hashToken(token);
    const record = await this.repo.findAccessToken(tokenHash);
    if (!record) throw this.problem('oauth1_token_rejected', { advice: 'The access token is unknown.' });
    const cached = { record, secret: this.openSecret(record.secretSealed, sealContexts.accessSecret(tokenHash)) };
    this.accessCache.set(token, cached, this.s.config.authCacheTtlMs, [
      `user:${record.userId}`,
      `link:${record.linkId}`,
      `cred:${tokenHash}`,
      `cred:oauth1:${record.userId}:${record.linkId}`,
    ]);
    return cached;
  }

  private withAccessToken(request: SignedRequest, p: ProtocolParameters, consumer: Consumer, connection: Connection, cached: CachedAccess): Awaitable<Principal> {
    const { record } = cached;
    const tokenHash = record.tokenHash;
    if (record.linkId !== consumer.linkId || record.consumerKey !== consumer.key) throw this.problem('oauth1_token_rejected', { advice: 'The access token belongs to another consumer.' });
    if (consumer.sharedSecret !== null && cached.hmac?.consumer !== consumer) cached.hmac = { consumer, key: hmacKeyObject(consumer.sharedSecret, cached.secret) };
    return andThen(this.verify(request, p, consumer, cached.secret, cached.hmac?.key), () => {
      if (record.revokedAt !== null) throw this.problem('oauth1_token_revoked', { advice: 'The authorization was revoked.' });
      const now = this.now;
      if (record.expiresAt <= now) throw this.problem('oauth1_token_expired', { advice: 'The access token has expired: renew it with oauth_session_handle.' });
      if (!consumer.allow3LO) throw this.problem('oauth1_permission_denied', { advice: '3-legged OAuth is switched off for this consumer.' });
      return andThen(this.s.users.cached(record.userId), (user) => {
        if (!user || user.disabled) throw this.problem('oauth1_token_revoked', { advice: 'The user of this token is disabled or deleted.' });
        this.lastUsed.note(tokenHash, now);
        return { user: toPrincipalUser(user), link: { id: consumer.linkId, name: consumer.linkName }, authType: OAUTH1_TYPE, scopes: null, connection, warnings: [], credentialId: tokenHash };
      });
    });
  }

  // ---------------------------------------------------------------- authorized applications

  async authorizationsOf(userId: string): Promise<Authorization[]> {
    const now = this.now;
    const out: Authorization[] = [];
    for (const t of await this.repo.liveTokensOf(userId, now)) {
      const link = await this.s.links.cached(t.linkId);
      if (!link) continue;
      const auth = await this.s.store.links.findAuth(t.linkId, 'incoming', OAUTH1_TYPE);
      const name = (auth?.config as { name?: string } | undefined)?.name ?? link.name;
      out.push({
        id: `oauth1:${t.linkId}`,
        type: OAUTH1_TYPE,
        application: { name, linkId: link.id, linkName: link.name },
        scopes: null,
        createdAt: t.createdAt,
        lastUsedAt: this.lastUsed.get(t.tokenHash) ?? t.lastUsedAt,
        expiresAt: t.expiresAt,
      });
    }
    return out;
  }

  async revokeAuthorization(userId: string, id: string, actor: Actor): Promise<boolean> {
    if (!id.startsWith('oauth1:')) return false;
    const linkId = id.slice('oauth1:'.length);
    const revoked = await this.s.store.transaction(async (repos, trx) => {
      const n = await new OAuth1Repository(trx).revokeUserLink(userId, linkId, 'revoked', this.now);
      if (n > 0) await this.s.audit.record(actor, { action: 'oauth1.authorization.revoke', target: { type: 'link', id: linkId }, details: { user: userId } }, repos);
      return n > 0;
    });
    if (revoked) this.s.revocations.credential(`oauth1:${userId}:${linkId}`);
    return revoked;
  }

  async revokeLink(linkId: string, actor: Actor): Promise<number> {
    const count = await this.s.store.transaction(async (repos, trx) => {
      const n = await new OAuth1Repository(trx).revokeLink(linkId, 'revoked-for-link', this.now);
      if (n > 0) await this.s.audit.record(actor, { action: 'oauth1.link.revoke', target: { type: 'link', id: linkId }, details: { users: n } }, repos);
      return n;
    });
    this.s.revocations.link(linkId);
    return count;
  }

  /** Inside the transaction that removes a link's consumer: what it was issued goes with it. */
  async consumerRemoved(trx: Executor, linkId: string): Promise<void> {
    await new OAuth1Repository(trx).deleteForLink(linkId);
  }

  // ---------------------------------------------------------------- background

  async flushLastUsed(): Promise<void> {
    await this.lastUsed.flush(async (batch) => {
      for (const [tokenHash, at] of batch) await this.repo.touch(tokenHash, at);
    });
  }

  async prune(): Promise<number> {
    return (await this.repo.prune(this.now)) + (await this.nonces.prune(this.now));
  }
}

/** An absolute http(s) URI (Jira's rule for oauth_callback), in URI characters (it becomes a Location). */
export function isAbsoluteHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && isUriText(value);
  } catch {
    return false;
  }
}
