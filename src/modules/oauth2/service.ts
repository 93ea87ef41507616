import { randomBytes, randomUUID } from 'node:crypto';
import { constantTimeEqual, hashToken, randomToken } from '../../crypto/tokens.js';
import { AppError } from '../../errors/index.js';
import type { AuthChange, AuthSet, IssuedSecrets } from '../../auth/registry.js';
import type { ClientCredentials } from '../../protocols/oauth2/client-auth.js';
import { checkCodeVerifier } from '../../protocols/oauth2/pkce.js';
import { capAt, capForUser, closure, covers, formatScope, parseScope, type Scope } from '../../protocols/oauth2/scopes.js';
import type { Actor } from '../../services/audit.js';
import type { Authorization } from '../../services/authorizations.js';
import type { Services } from '../../services/index.js';
import { isForeignKeyViolation, unlessDeletedMeanwhile, type Executor } from '../../storage/repositories/common.js';
import type { Repositories } from '../../storage/store.js';
import type { LinkAuthRecord, LinkRecord } from '../../storage/repositories/links.js';
import type { UserRecord } from '../../storage/repositories/users.js';
import { andThen, type Awaitable } from '../../util/awaitable.js';
import { uuidv7 } from '../../util/ids.js';
import { LastUse } from '../../util/last-use.js';
import { TtlCache } from '../../util/ttl-cache.js';
import { OAUTH2_TYPE, toClient, type Client, type ClientConfig } from './clients.js';
import { OAuth2Repository, type CodeRecord, type TokenRecord } from './repository.js';

/** The longest a rotated-out client secret keeps working: 30 days. */
export const MAX_SECRET_GRACE_SECONDS = 2_592_000;

/** Token prefixes by kind (CONVENTIONS.md habit 6), so a leaked value says what it is. */
export const ACCESS_TOKEN_PREFIX = 'alat_';
export const REFRESH_TOKEN_PREFIX = 'alrt_';
export const CODE_PREFIX = 'alac_';
export const CLIENT_SECRET_PREFIX = 'alcs_';

/** RFC 6749 §5.1: the successful token response. */
export interface TokenResponse {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  refresh_token?: string;
  scope: string;
}

/** What a valid access token stands for on a resource request. */
export interface AccessGrant {
  record: TokenRecord;
  user: UserRecord;
  link: { id: string; name: string };
  /** The client as it is configured now: its scopes cap what the token may do. */
  client: Client;
}

/** Who asks the introspection endpoint: a confidential client (its own tokens only) or the host. */
export type IntrospectionCaller = { kind: 'client'; client: Client } | { kind: 'host' };

const INACTIVE = { active: false } as const;

/**
 * A cached access token: its record with its link and client as they were read with it. Any change
 * of the link or client drops the entry on this instance (it is tagged `link:<id>`), so a hit
 * sees the client's current scopes and service account without a lookup per request; other
 * instances see a change within APPLINKS_AUTH_CACHE_TTL_MS, as with every cached credential.
 */
interface AccessEntry {
  readonly record: TokenRecord;
  readonly link: LinkRecord;
  readonly client: Client;
}

/**
 * Group commit for token rows: inserts asked for in the same turn of the event loop are written
 * in one multi-row INSERT, and each caller's promise settles when that statement has (the token
 * is stored before it is answered). Under concurrent issuance this turns one commit per token
 * into one per batch, which is most of the cost on the embedded store.
 */
class TokenWriter {
  private pending: Array<{ record: TokenRecord; done: (error?: unknown) => void }> = [];
  private scheduled = false;

  constructor(private readonly repo: OAuth2Repository) {}

  write(record: TokenRecord): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ record, done: (error) => (error === undefined ? resolve() : reject(error)) });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    this.scheduled = false;
    while (this.pending.length > 0) {
      // 500 rows of 11 columns stay far below either engine's limit on bound parameters.
      const batch = this.pending.splice(0, 500);
      try {
        await this.repo.insertTokens(batch.map((b) => b.record));
        for (const b of batch) b.done();
      } catch (error) {
        if (batch.length === 1) {
          batch[0]!.done(error ?? new Error('token write failed'));
          continue;
        }
        // One row may name a link or user deleted meanwhile (by another instance, within the
        // cache window): it alone fails, the others are written one by one.
        for (const b of batch) {
          try {
            await this.repo.insertTokens([b.record]);
            b.done();
          } catch (rowError) {
            b.done(rowError ?? new Error('token write failed'));
          }
        }
      }
    }
  }
}

/**
 * The OAuth 2.0 authorization server's logic over the store: clients and their secrets, codes,
 * grants with rotating refresh tokens, access tokens, consent, introspection and revocation.
 * Routes parse and render; every decision is here or in the pure core (src/protocols/oauth2).
 */
export class OAuth2Service {
  readonly repo: OAuth2Repository;
  private readonly accessCache: TtlCache<AccessEntry>;
  private readonly secretCache: TtlCache<string[]>;
  /** Grant last-use times, written in batches so a resource request never waits for a write. */
  private readonly lastUsed = new LastUse();
  private readonly tokenWriter: TokenWriter;

  constructor(private readonly s: Services) {
    this.repo = new OAuth2Repository(s.store.db);
    this.tokenWriter = new TokenWriter(this.repo);
    this.accessCache = s.revocations.register(new TtlCache<AccessEntry>(100_000, () => s.clock.now()));
    this.secretCache = s.revocations.register(new TtlCache<string[]>(10_000, () => s.clock.now()));
  }

  /** The issuer identifier (RFC 8414 §2), also the `iss` of authorization responses (RFC 9207). */
  get issuer(): string {
    return this.s.config.oauth2Issuer ?? this.s.config.baseUrl;
  }

  private get now(): number {
    return this.s.clock.now();
  }

  private get accessTtlMs(): number {
    return this.s.config.oauth2AccessTokenTtlSeconds * 1000;
  }

  private get refreshTtlMs(): number {
    return this.s.config.oauth2RefreshTokenTtlSeconds * 1000;
  }

  // ---------------------------------------------------------------- clients

  /** The client registered under a client_id, from the link service's cache. */
  async findClient(clientId: string): Promise<Client | undefined> {
    const match = await this.s.links.findIncoming(OAUTH2_TYPE, clientId);
    return match ? toClient(match.link, match.auth) : undefined;
  }

  /** The client of a link, when the link has one. */
  async clientOfLink(linkId: string): Promise<Client | undefined> {
    const link = await this.s.links.cached(linkId);
    const auth = link ? await this.s.store.links.findAuth(linkId, 'incoming', OAUTH2_TYPE) : undefined;
    return link && auth ? toClient(link, auth) : undefined;
  }

  /**
   * RFC 6749 §2.3 and §3.2.1: authenticates the client of a token, revocation or introspection
   * request. Confidential clients must present a live secret (the current one, or the previous
   * one during a rotation's grace period); public clients present none. Every failure is
   * invalid_client (401); the route adds the challenge.
   */
  async authenticateClient(credentials: ClientCredentials | undefined): Promise<Client> {
    if (!credentials) throw new AppError('oauth2_invalid_client', { message: 'Client authentication is required (client_secret_basic, client_secret_post, or client_id for public clients).' });
    const client = await this.findClient(credentials.clientId);
    if (!client) throw new AppError('oauth2_invalid_client', { message: 'Unknown client.', detail: `unknown client_id ${credentials.clientId.slice(0, 64)}` });
    if (!client.confidential) {
      if (credentials.method !== 'none') throw new AppError('oauth2_invalid_client', { message: 'This is a public client: it has no secret to authenticate with.' });
      return client;
    }
    if (credentials.method === 'none') throw new AppError('oauth2_invalid_client', { message: 'This confidential client must authenticate with its client secret.' });
    const presented = hashToken(credentials.clientSecret);
    let matched = false;
    // Every stored hash is compared, so timing does not tell which (or whether one) matched.
    for (const stored of await this.secretHashes(client.linkId)) matched = constantTimeEqual(presented, stored) || matched;
    if (!matched) throw new AppError('oauth2_invalid_client', { message: 'The client secret is wrong or expired.', detail: `bad secret for ${client.clientId}` });
    return client;
  }

  private async secretHashes(linkId: string): Promise<string[]> {
    const hit = this.secretCache.get(linkId);
    if (hit) return hit;
    const live = await this.repo.liveSecrets(linkId, this.now);
    const hashes = live.map((r) => r.secretHash);
    // Cached no longer than the earliest expiry, so a grace period ends on time.
    const soonest = Math.min(...live.map((r) => (r.expiresAt === null ? Infinity : r.expiresAt - this.now)));
    this.secretCache.set(linkId, hashes, Math.min(this.s.config.authCacheTtlMs, soonest), [`link:${linkId}`, `cred:client:${linkId}`]);
    return hashes;
  }

  /**
   * Generates a new client secret. The previous ones keep working for `graceSeconds` (0 ends
   * them at once). Answers the secret: shown this once, stored as a SHA-256 hash.
   */
  async rotateSecret(client: Client, graceSeconds: number, actor: Actor): Promise<string> {
    if (!Number.isSafeInteger(graceSeconds) || graceSeconds < 0 || graceSeconds > MAX_SECRET_GRACE_SECONDS) {
      throw new AppError('validation_failed', { field: 'graceSeconds', message: `graceSeconds: a whole number from 0 to ${MAX_SECRET_GRACE_SECONDS}.` });
    }
    if (!client.confidential) throw new AppError('validation_failed', { field: 'confidential', message: 'A public client has no secret.' });
    const secret = randomToken(CLIENT_SECRET_PREFIX);
    const now = this.now;
    const removed = new AppError('not_found', { message: 'No OAuth 2.0 client with this client id: it was removed meanwhile.' });
    try {
      await this.s.store.transaction(async (repos, trx) => {
        // The client was read from a cache: removed meanwhile with its link kept, a secret written
        // now would outlive it and vouch for the next client registered on that link.
        if ((await repos.links.findAuth(client.linkId, 'incoming', OAUTH2_TYPE))?.lookupKey !== client.clientId) throw removed;
        const r = new OAuth2Repository(trx);
        await r.expireSecrets(client.linkId, now + graceSeconds * 1000);
        await r.addSecret({ id: uuidv7(now), linkId: client.linkId, secretHash: hashToken(secret), createdAt: now, expiresAt: null });
        await this.s.audit.record(actor, { action: 'oauth2.client.secret.rotate', target: { type: 'link', id: client.linkId, name: client.linkName }, details: { clientId: client.clientId, graceSeconds } }, repos);
      });
    } catch (error) {
      // Or its link deleted after the check (another instance): the secret names no link.
      if (error !== removed && !isForeignKeyViolation(error)) throw error;
      this.s.revocations.link(client.linkId);
      throw removed;
    }
    this.s.revocations.credential(`client:${client.linkId}`);
    return secret;
  }

  /** A fresh client id: 32 hex characters, like Data Center's. */
  static newClientId(): string {
    return randomBytes(16).toString('hex');
  }

  // ---------------------------------------------------------------- authorization

  /** The scopes an authorization request asks for: the client's registered ones when it names none (RFC 6749 §3.3). */
  requestedScopes(client: Client, scope: string | undefined): Scope[] {
    const requested = parseScope(scope) ?? [...client.scopes];
    if (!covers(client.scopes, requested)) {
      throw new AppError('oauth2_invalid_scope', { message: `This client may ask for at most: ${formatScope(client.scopes)}.` });
    }
    return requested;
  }

  /** True when the user already allowed this client at least these scopes and has not revoked it. */
  async consentCovers(userId: string, linkId: string, scopes: readonly Scope[]): Promise<boolean> {
    const consent = await this.repo.findConsent(userId, linkId);
    return consent !== undefined && covers(consent.scopes, scopes);
  }

  /**
   * Issues a single-use authorization code (RFC 6749 §4.1.2), bound to client, user, redirect URI,
   * scopes and PKCE challenge. With `consent` (the user's "Allow", audited) the consent is
   * remembered in the same transaction, until the user revokes the application.
   *
   * The client and user were read from caches (up to APPLINKS_AUTH_CACHE_TTL_MS old): when either
   * was deleted meanwhile, here or on another instance, the store refuses the rows (foreign key)
   * and nothing is written. A removed client is `oauth2_client_removed` and a removed user
   * `unauthenticated`: both for a page, never for a redirect to a client that is gone.
   */
  async issueCode(input: {
    client: Client;
    user: UserRecord;
    redirectUri: string;
    redirectUriSent: boolean;
    scopes: readonly Scope[];
    challenge: { challenge: string; method: 'S256' } | undefined;
    consent?: Actor;
  }): Promise<string> {
    const { client, user, consent } = input;
    const code = randomToken(CODE_PREFIX);
    const now = this.now;
    try {
      await this.s.store.transaction(async (repos, trx) => {
        const r = new OAuth2Repository(trx);
        if (consent) {
          await r.saveConsent(user.id, client.linkId, input.scopes, now);
          await this.s.audit.record(consent, { action: 'oauth2.consent', target: { type: 'link', id: client.linkId, name: client.linkName }, details: { clientId: client.clientId, scopes: formatScope(input.scopes) } }, repos);
        }
        await r.insertCode({
          codeHash: hashToken(code),
          linkId: client.linkId,
          userId: user.id,
          clientId: client.clientId,
          redirectUri: input.redirectUri,
          redirectUriSent: input.redirectUriSent,
          scopes: [...input.scopes],
          codeChallenge: input.challenge?.challenge ?? null,
          codeChallengeMethod: input.challenge?.method ?? null,
          grantId: randomUUID(),
          createdAt: now,
          expiresAt: now + this.s.config.oauth2CodeTtlSeconds * 1000,
          consumedAt: null,
        });
      });
    } catch (error) {
      if (!isForeignKeyViolation(error)) throw error;
      if ((await this.removedMeanwhile(client, user.id)) === 'client') {
        throw new AppError('oauth2_client_removed', { message: `${client.name} is no longer available: it was removed while you were deciding. Nothing was authorized.`, cause: error });
      }
      throw new AppError('unauthenticated', { message: 'Your account was removed while you were deciding. Nothing was authorized.', cause: error });
    }
    return code;
  }

  /**
   * After the store refused a row naming a client's link and a user (foreign key: one of them was
   * deleted since it was read from a cache, here or on another instance): which one is gone, read
   * from the store. What this instance still caches of it is dropped, so the next request sees it.
   * Answers `user` when the client is still there.
   */
  private async removedMeanwhile(client: Client, userId: string): Promise<'client' | 'user'> {
    const link = await this.s.store.links.findById(client.linkId);
    const auth = link ? await this.s.store.links.findAuth(client.linkId, 'incoming', OAUTH2_TYPE) : undefined;
    if (!link || !auth || toClient(link, auth).clientId !== client.clientId) {
      this.s.revocations.link(client.linkId);
      return 'client';
    }
    this.s.revocations.user(userId);
    return 'user';
  }

  /** The token endpoint's answer to a write refused by a foreign key (RFC 6749 §5.2): the client is gone, or the grant's user. */
  private async removedAtTokenEndpoint(error: unknown, client: Client, userId: string): Promise<AppError> {
    if ((await this.removedMeanwhile(client, userId)) === 'client') {
      return new AppError('oauth2_invalid_client', { message: 'This client has just been removed.', cause: error });
    }
    return new AppError('oauth2_invalid_grant', { message: 'The user this authorization acts for has just been removed.', cause: error });
  }

  // ---------------------------------------------------------------- token endpoint

  /**
   * RFC 6749 §4.1.3 with RFC 7636 §4.6: exchanges a code. The code must be this client's, unused,
   * unexpired; `redirect_uri` identical when the authorization request carried one; the PKCE
   * verifier must match. Consuming is atomic, so of concurrent exchanges exactly one wins; a code
   * presented again revokes the grant the first exchange created (§4.1.2: "SHOULD revoke").
   */
  async exchangeCode(client: Client, p: { code: string; redirectUri: string | undefined; codeVerifier: string | undefined }): Promise<TokenResponse> {
    const codeHash = hashToken(p.code);
    const code = p.code.startsWith(CODE_PREFIX) ? await this.repo.findCode(codeHash) : undefined;
    const now = this.now;
    if (!code) throw new AppError('oauth2_invalid_grant', { message: 'The authorization code is not valid.' });
    if (code.clientId !== client.clientId || code.linkId !== client.linkId) {
      throw new AppError('oauth2_invalid_grant', { message: 'The authorization code was issued to another client.' });
    }
    if (code.consumedAt !== null) await this.replayedCode(code, client);
    if (code.expiresAt <= now) throw new AppError('oauth2_invalid_grant', { message: 'The authorization code has expired.' });
    if (code.redirectUriSent && p.redirectUri === undefined) {
      throw new AppError('oauth2_invalid_request', { message: 'redirect_uri is required: the authorization request included one.' });
    }
    if (p.redirectUri !== undefined && p.redirectUri !== code.redirectUri) {
      throw new AppError('oauth2_invalid_grant', { message: 'redirect_uri differs from the one of the authorization request.' });
    }
    // A client that must use PKCE never redeems a code issued without it (one issued before the
    // client became public, or before an administrator required PKCE).
    if (client.requirePkce && code.codeChallenge === null) throw new AppError('oauth2_invalid_grant', { message: 'This client must use PKCE, and the authorization code was issued without it.' });
    checkCodeVerifier(p.codeVerifier, code.codeChallenge && code.codeChallengeMethod ? { challenge: code.codeChallenge, method: code.codeChallengeMethod } : null);
    const user = await this.activeUser(code.userId);
    // The user may have lost administrator rights since consenting, the client some of its scopes.
    const scopes = capAt(capForUser(code.scopes, user.isAdmin), client.scopes);
    const issued = this.newPair(client, user.id, code.grantId, scopes, 0, now);
    // The client's link or the user deleted (by another request or instance) between the reads
    // above and this transaction: nothing is written (the code is not consumed either).
    const won = await unlessDeletedMeanwhile(
      () =>
        this.s.store.transaction(async (_repos, trx) => {
          const r = new OAuth2Repository(trx);
          if (!(await r.consumeCode(codeHash, now))) return false;
          await r.insertGrant({
            id: code.grantId,
            linkId: client.linkId,
            userId: user.id,
            clientId: client.clientId,
            scopes,
            redirectUri: code.redirectUri,
            refreshGeneration: 0,
            version: 0,
            createdAt: now,
            lastUsedAt: now,
            expiresAt: now + this.refreshTtlMs,
          });
          await r.insertTokens(issued.records);
          return true;
        }),
      (error) => this.removedAtTokenEndpoint(error, client, user.id),
    );
    if (!won) {
      // Gone rather than used: revoked, or taken along with its deleted link or user.
      if (!(await this.repo.findCode(codeHash))) throw new AppError('oauth2_invalid_grant', { message: 'The authorization code is no longer valid.' });
      await this.replayedCode(code, client);
    }
    return issued.response;
  }

  private async replayedCode(code: CodeRecord, client: Client): Promise<never> {
    await this.revokeGrant(code.grantId, client, 'code-replayed');
    throw new AppError('oauth2_invalid_grant', { message: 'The authorization code was already used; the tokens issued for it are revoked.' });
  }

  /**
   * RFC 6749 §6 with rotation. The grant's refresh tokens form a chain of generations; the grant
   * row holds the newest generation and a version every rotation compares and bumps (one atomic
   * UPDATE, so it holds across instances). Presenting
   * - the newest token rotates: generation n+1 is issued, token n stays usable for a retry;
   * - the previous token (n-1) while the newest is unused is a retry of a lost response: the
   *   unused newest token is replaced by a new one of the same generation, so there is never more
   *   than one live successor;
   * - any older or replaced token is reuse: the whole grant is revoked.
   * Also checks the client and, as Data Center does, `redirect_uri` when sent.
   */
  async refresh(client: Client, p: { refreshToken: string; scope: string | undefined; redirectUri: string | undefined }): Promise<TokenResponse> {
    const tokenHash = hashToken(p.refreshToken);
    const token = p.refreshToken.startsWith(REFRESH_TOKEN_PREFIX) ? await this.repo.findToken(tokenHash) : undefined;
    if (!token || token.kind !== 'refresh' || token.grantId === null) throw new AppError('oauth2_invalid_grant', { message: 'The refresh token is not valid.' });
    if (token.clientId !== client.clientId || token.linkId !== client.linkId) {
      throw new AppError('oauth2_invalid_grant', { message: 'The refresh token was issued to another client.' });
    }
    const now = this.now;
    if (token.expiresAt <= now) throw new AppError('oauth2_invalid_grant', { message: 'The refresh token has expired.' });
    const grant = await this.repo.findGrant(token.grantId);
    if (!grant) throw new AppError('oauth2_invalid_grant', { message: 'The refresh token was revoked.' });
    // As Data Center: a redirect_uri sent with a refresh must be the one the grant was issued for.
    if (p.redirectUri !== undefined && p.redirectUri !== grant.redirectUri) {
      throw new AppError('oauth2_invalid_grant', { message: 'redirect_uri differs from the one this authorization was issued for.' });
    }
    const n = grant.refreshGeneration;
    const mode = token.replacedAt === null && token.generation === n ? 'rotate' : token.replacedAt === null && token.generation === n - 1 ? 'retry' : 'reuse';
    if (mode === 'reuse') {
      await this.revokeGrant(grant.id, client, 'refresh-reused');
      throw new AppError('oauth2_invalid_grant', { message: 'The refresh token was already used; the authorization is revoked.' });
    }
    const requested = parseScope(p.scope);
    if (requested && !covers(grant.scopes, requested)) {
      throw new AppError('oauth2_invalid_scope', { message: `The refresh token was granted only: ${formatScope(grant.scopes)}.` });
    }
    const user = await this.activeUser(grant.userId);
    // Never more than the user may do now, nor than the client is allowed now.
    const cap = (scopes: readonly Scope[]) => capAt(capForUser(scopes, user.isAdmin), client.scopes);
    const generation = mode === 'rotate' ? n + 1 : n;
    const issued = this.newPair(client, user.id, grant.id, cap(requested ?? grant.scopes), generation, now, cap(grant.scopes));
    // The client's link or the user deleted meanwhile: nothing is written, the grant is unchanged.
    const ok = await unlessDeletedMeanwhile(
      () =>
        this.s.store.transaction(async (_repos, trx) => {
          const r = new OAuth2Repository(trx);
          if (!(await r.advanceGrant(grant.id, grant.version, generation, now, now + this.refreshTtlMs))) return false;
          if (mode === 'retry') await r.replaceGeneration(grant.id, n, now);
          await r.insertTokens(issued.records);
          return true;
        }),
      (error) => this.removedAtTokenEndpoint(error, client, user.id),
    );
    if (!ok) {
      if (!(await this.repo.findGrant(grant.id))) throw new AppError('oauth2_invalid_grant', { message: 'The refresh token was revoked.' });
      throw new AppError('oauth2_invalid_grant', { message: 'The refresh token was used by a concurrent request; use the newest refresh token.' });
    }
    if (mode === 'retry') this.s.revocations.credential(grant.id);
    return issued.response;
  }

  /**
   * RFC 6749 §4.4: a confidential client an administrator marked as a service account obtains an
   * access token acting as the chosen user. No refresh token (§4.4.3).
   */
  async clientCredentials(client: Client, scope: string | undefined): Promise<TokenResponse> {
    if (!client.confidential || client.serviceAccountUserId === null) {
      throw new AppError('oauth2_unauthorized_client', { message: 'This client is not a service account: it may not use client_credentials.' });
    }
    const requested = parseScope(scope) ?? [...client.scopes];
    if (!covers(client.scopes, requested)) throw new AppError('oauth2_invalid_scope', { message: `This client may ask for at most: ${formatScope(client.scopes)}.` });
    // No grant was presented, so a service account that is gone is not invalid_grant: this
    // client is not authorized to use this grant type now (RFC 6749 §5.2, unauthorized_client).
    const user = await this.s.users.cached(client.serviceAccountUserId);
    if (!user || user.disabled) throw new AppError('oauth2_unauthorized_client', { message: 'The service account of this client is disabled or deleted: it may not use client_credentials now.' });
    const scopes = capForUser(requested, user.isAdmin);
    const now = this.now;
    const access = randomToken(ACCESS_TOKEN_PREFIX);
    try {
      await this.tokenWriter.write({
        tokenHash: hashToken(access),
        kind: 'access',
        linkId: client.linkId,
        userId: user.id,
        grantId: null,
        clientId: client.clientId,
        scopes,
        generation: 0,
        replacedAt: null,
        createdAt: now,
        expiresAt: now + this.accessTtlMs,
      });
    } catch (error) {
      // The client's link or its service account was deleted (on another instance) since they were
      // read: the same answers as when either is seen gone (invalid_client; unauthorized_client above).
      if (!isForeignKeyViolation(error)) throw error;
      if ((await this.removedMeanwhile(client, user.id)) === 'client') throw new AppError('oauth2_invalid_client', { message: 'This client has just been removed.', cause: error });
      throw new AppError('oauth2_unauthorized_client', { message: 'The service account of this client has just been deleted: it may not use client_credentials now.', cause: error });
    }
    return { access_token: access, token_type: 'Bearer', expires_in: this.s.config.oauth2AccessTokenTtlSeconds, scope: formatScope(scopes) };
  }

  private newPair(client: Client, userId: string, grantId: string, scopes: Scope[], generation: number, now: number, refreshScopes: Scope[] = scopes) {
    const access = randomToken(ACCESS_TOKEN_PREFIX);
    const refresh = randomToken(REFRESH_TOKEN_PREFIX);
    const base = { linkId: client.linkId, userId, grantId, clientId: client.clientId, generation, replacedAt: null, createdAt: now };
    const records: TokenRecord[] = [
      { ...base, tokenHash: hashToken(access), kind: 'access', scopes, expiresAt: now + this.accessTtlMs },
      { ...base, tokenHash: hashToken(refresh), kind: 'refresh', scopes: refreshScopes, expiresAt: now + this.refreshTtlMs },
    ];
    const response: TokenResponse = {
      access_token: access,
      token_type: 'Bearer',
      expires_in: this.s.config.oauth2AccessTokenTtlSeconds,
      refresh_token: refresh,
      scope: formatScope(scopes),
    };
    return { records, response };
  }

  /** The user a grant acts for, who must still exist and be enabled (else the grant is dead). */
  private async activeUser(userId: string): Promise<UserRecord> {
    const user = await this.s.users.cached(userId);
    if (!user || user.disabled) throw new AppError('oauth2_invalid_grant', { message: 'The user this authorization acts for is disabled or deleted.' });
    return user;
  }

  /** Deletes a grant and its tokens, drops them from caches, and audits why. */
  private async revokeGrant(grantId: string, client: Client, reason: string): Promise<void> {
    await this.s.store.transaction(async (repos, trx) => {
      if (await new OAuth2Repository(trx).deleteGrant(grantId)) {
        await this.s.audit.record(
          { id: null, name: `oauth2-client:${client.clientId}`, address: null },
          { action: 'oauth2.grant.revoke', target: { type: 'link', id: client.linkId, name: client.linkName }, details: { reason, grant: grantId } },
          repos,
        );
      }
    });
    this.s.revocations.credential(grantId);
  }

  // ---------------------------------------------------------------- resource requests

  /**
   * The access token of a resource request (RFC 6750 §2.1), from a short-lived cache of records
   * with their link and client (dropped on revocation and on any change of the link, so it holds
   * for the next request on this instance). Throws the invalid_token family. Synchronous when the
   * entry and its user are cached.
   */
  accessToken(token: string): Awaitable<AccessGrant> {
    // Keyed by the token as presented, as API tokens are: a hit costs no hash (the store holds only the hash).
    const entry = this.accessCache.get(token);
    return entry ? this.grantOf(entry) : this.loadAccess(token).then((found) => this.grantOf(found));
  }

  private async loadAccess(token: string): Promise<AccessEntry> {
    const tokenHash = hashToken(token);
    const record = await this.repo.findToken(tokenHash);
    if (!record || record.kind !== 'access') throw new AppError('oauth2_invalid_token', { message: 'The access token is not valid.' });
    const found = await this.clientOf(record);
    if (!found) throw new AppError('oauth2_invalid_token', { message: 'The application link or client this token was issued through was removed.' });
    const entry: AccessEntry = { record, link: found.link, client: found.client };
    this.cacheAccess(token, tokenHash, entry);
    return entry;
  }

  /**
   * The token's user (cached) and its client as configured now: a client whose scopes were
   * narrowed caps the token (the authenticator and introspection apply `client.scopes`), and a
   * client_credentials token lives only while its user is still the client's service account.
   */
  private grantOf({ record, link, client }: AccessEntry): Awaitable<AccessGrant> {
    const now = this.now;
    if (record.expiresAt <= now) throw new AppError('oauth2_invalid_token', { message: 'The access token has expired.' });
    return andThen(this.s.users.cached(record.userId), (user) => {
      if (!user) throw new AppError('oauth2_invalid_token', { message: 'The access token is not valid.' });
      if (user.disabled) throw new AppError('oauth2_invalid_token', { message: 'The user of this access token is disabled.' });
      if (record.grantId === null) {
        if (record.userId !== client.serviceAccountUserId) throw new AppError('oauth2_invalid_token', { message: 'The client is no longer a service account acting as this user.' });
      } else this.lastUsed.note(record.grantId, now);
      return { record, user, link, client };
    });
  }

  /** The link and client a token was issued to, read now; undefined once either is gone or the client id changed. */
  private async clientOf(record: TokenRecord): Promise<{ link: LinkRecord; client: Client } | undefined> {
    const link = await this.s.store.links.findById(record.linkId);
    const auth = link ? await this.s.store.links.findAuth(record.linkId, 'incoming', OAUTH2_TYPE) : undefined;
    if (!link || !auth) return undefined;
    const client = toClient(link, auth);
    return client.clientId === record.clientId ? { link, client } : undefined;
  }

  private cacheAccess(token: string, tokenHash: string, entry: AccessEntry): void {
    const record = entry.record;
    this.accessCache.set(token, entry, this.s.config.authCacheTtlMs, [
      `user:${record.userId}`,
      `link:${record.linkId}`,
      `cred:${record.grantId ?? tokenHash}`,
      `cred:oauth2:${record.userId}:${record.linkId}`,
    ]);
  }

  /**
   * RFC 7662 §2.2: the state of a token. A client learns only about tokens issued to it
   * (others are `active: false`, §4); the host learns about every token.
   */
  async introspect(token: string, caller: IntrospectionCaller): Promise<Record<string, unknown>> {
    let live: { record: TokenRecord; client: Client } | undefined;
    if (token.startsWith(ACCESS_TOKEN_PREFIX)) {
      try {
        live = await this.accessToken(token);
      } catch (error) {
        if (error instanceof AppError) return INACTIVE;
        throw error;
      }
    } else if (token.startsWith(REFRESH_TOKEN_PREFIX)) {
      live = await this.liveRefresh(token);
    }
    if (!live) return INACTIVE;
    const { record, client } = live;
    if (caller.kind === 'client' && (record.clientId !== caller.client.clientId || record.linkId !== caller.client.linkId)) return INACTIVE;
    const user = await this.s.users.cached(record.userId);
    if (!user || user.disabled) return INACTIVE;
    // What the token may do now: a user who lost administrator rights takes them from the token,
    // a client whose scopes an administrator narrowed likewise.
    const scopes = capAt(capForUser(record.scopes, user.isAdmin), client.scopes);
    const answer: Record<string, unknown> = {
      active: true,
      scope: formatScope(scopes),
      client_id: record.clientId,
      username: user.username,
      sub: user.id,
      exp: Math.floor(record.expiresAt / 1000),
      iat: Math.floor(record.createdAt / 1000),
      iss: this.issuer,
    };
    if (record.kind === 'access') answer.token_type = 'Bearer';
    // Extensions for hosts: the link it came through, and the scopes it includes.
    answer.applinks_link_id = record.linkId;
    answer.applinks_scopes = closure(scopes).join(' ');
    return answer;
  }

  /** A refresh token that would be accepted now (newest, or the previous one while the newest is unused). */
  private async liveRefresh(token: string): Promise<{ record: TokenRecord; client: Client } | undefined> {
    const record = await this.repo.findToken(hashToken(token));
    if (!record || record.kind !== 'refresh' || record.grantId === null || record.replacedAt !== null || record.expiresAt <= this.now) return undefined;
    const grant = await this.repo.findGrant(record.grantId);
    const found = grant ? await this.clientOf(record) : undefined;
    if (!grant || !found) return undefined;
    return record.generation === grant.refreshGeneration || record.generation === grant.refreshGeneration - 1 ? { record, client: found.client } : undefined;
  }

  /**
   * RFC 7009 §2.1: revokes a token of this client. A refresh token takes its whole grant (and the
   * access tokens of it) along; an access token goes alone. Unknown (or already revoked or
   * expired) tokens are not an error (§2.2). A live token issued to another client is refused:
   * §2.1 says the server "verifies whether the token was issued to the client making the
   * revocation request. If this validation fails, the request is refused" (unauthorized_client).
   */
  async revoke(client: Client, token: string): Promise<void> {
    if (!token.startsWith(ACCESS_TOKEN_PREFIX) && !token.startsWith(REFRESH_TOKEN_PREFIX)) return;
    const tokenHash = hashToken(token);
    const record = await this.repo.findToken(tokenHash);
    if (!record) return;
    if (record.clientId !== client.clientId || record.linkId !== client.linkId) {
      throw new AppError('oauth2_unauthorized_client', { message: 'The token was not issued to this client: only its own client may revoke it.' });
    }
    if (record.kind === 'refresh' && record.grantId !== null) {
      await this.revokeGrant(record.grantId, client, 'revoked-by-client');
      return;
    }
    await this.repo.deleteToken(tokenHash);
    this.accessCache.delete(token);
    this.s.revocations.credential(record.grantId ?? tokenHash);
  }

  // ---------------------------------------------------------------- authorized applications

  /** The applications a user authorized (RFC-free: the account page and /api/v1/me/authorizations). */
  async authorizationsOf(userId: string): Promise<Authorization[]> {
    const out: Authorization[] = [];
    for (const a of await this.repo.authorizations(userId)) {
      const client = await this.clientOfLink(a.linkId);
      const link = await this.s.links.cached(a.linkId);
      if (!link) continue;
      out.push({
        id: `oauth2:${a.linkId}`,
        type: OAUTH2_TYPE,
        application: { name: client?.name ?? link.name, linkId: link.id, linkName: link.name },
        scopes: closure(a.scopes),
        createdAt: a.createdAt,
        lastUsedAt: a.lastUsedAt,
        expiresAt: a.expiresAt,
      });
    }
    return out;
  }

  /** Revokes what a user allowed one application: consent, grants, tokens, pending codes. */
  async revokeAuthorization(userId: string, id: string, actor: Actor): Promise<boolean> {
    if (!id.startsWith('oauth2:')) return false;
    const linkId = id.slice('oauth2:'.length);
    const revoked = await this.s.store.transaction(async (repos, trx) => {
      const done = await new OAuth2Repository(trx).revokeUserLink(userId, linkId);
      if (done) await this.s.audit.record(actor, { action: 'oauth2.authorization.revoke', target: { type: 'link', id: linkId }, details: { user: userId } }, repos);
      return done;
    });
    if (revoked) this.s.revocations.credential(`oauth2:${userId}:${linkId}`);
    return revoked;
  }

  /** Revokes every authorization and token issued through a link; the client stays registered. */
  async revokeLink(linkId: string, actor: Actor): Promise<number> {
    const count = await this.s.store.transaction(async (repos, trx) => {
      const n = await new OAuth2Repository(trx).revokeLink(linkId);
      if (n > 0) await this.s.audit.record(actor, { action: 'oauth2.link.revoke', target: { type: 'link', id: linkId }, details: { users: n } }, repos);
      return n;
    });
    this.s.revocations.link(linkId);
    return count;
  }

  /**
   * Inside the transaction that changes a client's configuration in place. A change of client type
   * is a change of who can act as the client: what a confidential client holds (refresh tokens,
   * codes issued without PKCE) would be redeemable with its bare client_id once it is public, and
   * its old secret would work again once it is confidential. So the client starts over: every
   * consent, code, grant and token is revoked and its secrets deleted (`clientSet` then issues a
   * new one in the same transaction when the client becomes confidential).
   */
  async clientChanged(change: AuthChange): Promise<void> {
    const before = change.before as ClientConfig;
    const after = change.after as ClientConfig;
    if (before.confidential !== after.confidential) {
      const r = new OAuth2Repository(change.trx);
      const users = await r.revokeLink(change.linkId);
      await r.deleteSecrets(change.linkId);
      await this.s.audit.record(
        change.actor,
        { action: 'oauth2.client.type.change', target: { type: 'link', id: change.linkId }, details: { clientId: after.clientId, confidential: after.confidential, revokedUsers: users } },
        change.repos,
      );
    } else if ((before.serviceAccountUserId ?? null) !== (after.serviceAccountUserId ?? null)) {
      // client_credentials tokens act as the service account they were issued for: a new one, or
      // none, ends them (resource requests also check, for instances whose cache is older).
      await new OAuth2Repository(change.trx).deleteClientCredentialsTokens(change.linkId);
    }
    // Narrowed scopes need no revocation: every use of a token is capped at the client's current scopes.
  }

  /**
   * Inside the transaction that sets a link's `oauth2` configuration, after `clientChanged` or
   * `clientRemoved`: a client that is confidential now and was not a moment ago (a new client, a
   * new client id, or a public client made confidential) has no secret, and nothing else can ever
   * show one, so it gets one here, answered to whoever set the configuration, shown this once.
   * Whichever path made the change (the client API, the generic link API, the CLI), the client can
   * authenticate as soon as the answer arrives. A client that stays confidential keeps its secrets.
   */
  async clientSet(set: AuthSet): Promise<IssuedSecrets | undefined> {
    const after = set.after as ClientConfig;
    // The service account was looked up before the transaction: held now, so that a deletion
    // either waits for this write (and then un-names it) or has happened (and this one stops).
    const account = after.serviceAccountUserId ?? null;
    if (account !== null && account !== ((set.before as ClientConfig | undefined)?.serviceAccountUserId ?? null) && !(await this.s.store.capabilities.lockRow(set.trx, 'users', account, 'share'))) {
      throw new AppError('validation_failed', { field: 'serviceAccount', message: 'serviceAccount: no such user (deleted meanwhile).' });
    }
    if (!after.confidential || (set.before as ClientConfig | undefined)?.confidential === true) return undefined;
    const clientSecret = randomToken(CLIENT_SECRET_PREFIX);
    const now = this.now;
    await new OAuth2Repository(set.trx).addSecret({ id: uuidv7(now), linkId: set.linkId, secretHash: hashToken(clientSecret), createdAt: now, expiresAt: null });
    return { clientSecret };
  }

  /**
   * Inside the transaction that deletes a user: the clients whose service account they were stop
   * naming them (`serviceAccountUserId` null), so views, validation and a later user never see a
   * dangling id. Their client_credentials tokens go with the user (foreign key cascade).
   */
  async serviceAccountDeleted(repos: Repositories, userId: string): Promise<string[]> {
    const changed: string[] = [];
    const namesUser = (auth: LinkAuthRecord | undefined): auth is LinkAuthRecord => auth?.direction === 'incoming' && auth.type === OAUTH2_TYPE && (auth.config as ClientConfig).serviceAccountUserId === userId;
    for (const read of (await repos.links.listAllAuth()).filter(namesUser)) {
      // Only as read: a client changed or its link deleted meanwhile (another instance) is read
      // again, and left alone once it no longer names the user.
      let auth: LinkAuthRecord | undefined = read;
      for (let attempt = 0; namesUser(auth); attempt++) {
        if (attempt === 5) throw new AppError('conflict', { message: 'An OAuth 2.0 client naming this user as its service account keeps changing; try again.' });
        if (await repos.links.replaceAuth(auth, { ...auth, config: { ...auth.config, serviceAccountUserId: null }, updatedAt: this.now })) {
          changed.push(auth.linkId);
          break;
        }
        auth = await repos.links.findAuth(read.linkId, read.direction, read.type);
      }
    }
    return changed;
  }

  /** Inside the transaction that removes a link's `oauth2` configuration: the client is gone, so is everything it held. */
  async clientRemoved(trx: Executor, linkId: string): Promise<void> {
    const r = new OAuth2Repository(trx);
    await r.revokeLink(linkId);
    await r.deleteSecrets(linkId);
    // Removed with its link kept (the generic link API): a developer's app no longer takes a slot.
    // Replaced by a client of another id, the link's client is still the owner's.
    await r.releaseOwnerWithoutClient(linkId);
  }

  // ---------------------------------------------------------------- background

  /** Writes batched grant last-use times. */
  async flushLastUsed(): Promise<void> {
    await this.lastUsed.flush(async (batch) => {
      for (const [grantId, at] of batch) await this.repo.touchGrant(grantId, at);
    });
  }

  prune(): Promise<number> {
    return this.repo.prune(this.now);
  }
}
