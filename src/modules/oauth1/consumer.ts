import { createPublicKey, randomInt, type KeyObject } from 'node:crypto';
import { request as undiciRequest } from 'undici';
import type { PrincipalUser } from '../../auth/principal.js';
import type { Forgotten } from '../../auth/registry.js';
import { constantTimeEqual } from '../../crypto/tokens.js';
import { AppError, type AppErrorOptions, type ErrorCode } from '../../errors/index.js';
import { authorizationHeader, parseTokenResponse, problemOf } from '../../protocols/oauth1/client.js';
import { escapeXml } from '../../protocols/applinks/manifest.js';
import { appendParameters } from '../../protocols/oauth1/encoding.js';
import type { SignatureMethod, SigningSecrets } from '../../protocols/oauth1/signature.js';
import type { OutgoingRequest, OutgoingSigner, SignContext, SignResult } from '../../outgoing/types.js';
import type { Actor } from '../../services/audit.js';
import type { Services } from '../../services/index.js';
import { isForeignKeyViolation, type Executor } from '../../storage/repositories/common.js';
import type { LinkRecord } from '../../storage/repositories/links.js';
import { OAUTH1_2LOI_TYPE, OAUTH1_TYPE, type OutgoingThreeLeggedConfig } from './consumers.js';
import { OAuth1Repository, type OutgoingTokenRecord } from './repository.js';
import { sealContexts } from './tables.js';

export const CONSUMER_KEY_PURPOSE = 'oauth1-consumer';
export const DANCE_START_PATH = '/plugins/servlet/applinks/oauth/login-dance/authorize';
export const DANCE_CALLBACK_PATH = '/plugins/servlet/applinks/oauth/login-dance/access';
/** How long a dance may take between our request token and the user's return. */
const DANCE_TTL_MS = 15 * 60_000;
/** Problems that mean the remote no longer honours the token we hold for a user. */
const DEAD_TOKEN = new Set(['token_rejected', 'token_revoked', 'token_expired', 'permission_denied', 'permission_unknown']);

/** Who applinks is as an OAuth 1.0a consumer: what a remote administrator registers. */
export interface ConsumerIdentity {
  key: string;
  name: string;
  description: string;
  /** The bare base64 of the SubjectPublicKeyInfo, as Atlassian's consumer-info shows it. */
  publicKey: string;
  publicKeyPem: string;
  callbackUrl: string;
}

/** The consumer-info document (PROTOCOLS.md §1.7): `key`, `name`, `publicKey`, `description`, `callback`. */
export function consumerInfoXml(id: ConsumerIdentity): string {
  return (
    `<?xml version="1.0" encoding="UTF-8"?><consumer><key>${escapeXml(id.key)}</key><name>${escapeXml(id.name)}</name>` +
    `<publicKey>${id.publicKey}</publicKey><description>${escapeXml(id.description)}</description><callback>${escapeXml(id.callbackUrl)}</callback></consumer>`
  );
}

/**
 * applinks as an OAuth 1.0a consumer of linked applications: its identity (an RSA key pair made
 * at first start, the private key sealed at rest, and a consumer key of Atlassian's
 * `<type>:<digits>` form, shared by every instance through the store), the signers of the
 * three outgoing types, and the 3-legged dance that obtains a user's access token.
 */
export class OAuth1Consumer {
  readonly repo: OAuth1Repository;
  /** Renewals in flight, by link and user: concurrent calls of this process share one. */
  private readonly renewals = new Map<string, Promise<HeldToken | undefined>>();
  /** The stored token each outgoing call signed with, so a refusal forgets that one and no newer. */
  private readonly signedWith = new WeakMap<SignContext, OutgoingTokenRecord>();

  constructor(private readonly s: Services) {
    this.repo = new OAuth1Repository(s.store.db);
  }

  private async key(): Promise<KeyObject> {
    return (await this.s.keys.activeKey(CONSUMER_KEY_PURPOSE, 'RS256')).privateKey;
  }

  async identity(): Promise<ConsumerIdentity> {
    const prefix = /^[a-z]+$/.test(this.s.config.applicationType) ? this.s.config.applicationType : 'applinks';
    const key = await this.s.store.meta.getOrCreate('oauth1-consumer-key', `${prefix === 'generic' ? 'applinks' : prefix}:${randomInt(1_000_000, 10_000_000)}`);
    const publicKey = createPublicKey(await this.key());
    return {
      key,
      name: this.s.config.appName,
      description: `${this.s.config.appName} at ${this.s.config.baseUrl}`,
      publicKey: publicKey.export({ format: 'der', type: 'spki' }).toString('base64'),
      publicKeyPem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
      callbackUrl: this.s.edge.url(DANCE_CALLBACK_PATH),
    };
  }

  /** How we sign towards one link: our RSA key, or the shared secret the remote gave us. */
  private async signing(config: Record<string, unknown>, secrets: Record<string, unknown>, tokenSecret: string | undefined): Promise<{ consumerKey: string; method: SignatureMethod; secrets: SigningSecrets }> {
    const method = (config.signatureMethod as SignatureMethod | undefined) ?? 'RSA-SHA1';
    const consumerKey = typeof config.consumerKey === 'string' ? config.consumerKey : (await this.identity()).key;
    if (method.startsWith('RSA')) return { consumerKey, method, secrets: { rsaKey: await this.key() } };
    return { consumerKey, method, secrets: { consumerSecret: String(secrets.sharedSecret ?? ''), ...(tokenSecret !== undefined ? { tokenSecret } : {}) } };
  }

  /** Signs an outgoing request with the given token (`''` for 2-legged). */
  private async signed(request: OutgoingRequest, ctx: SignContext, token: string, tokenSecret: string | undefined): Promise<SignResult> {
    const { consumerKey, method, secrets } = await this.signing(ctx.config, ctx.secrets, tokenSecret);
    const contentType = Object.entries(request.headers).find(([k]) => k.toLowerCase() === 'content-type')?.[1] ?? '';
    const form = /^application\/x-www-form-urlencoded/i.test(contentType) && request.body !== undefined ? new URLSearchParams(request.body.toString()) : undefined;
    const authorization = authorizationHeader({ method: request.method, url: request.url, consumerKey, token, signatureMethod: method, secrets, ...(form ? { form } : {}) });
    return { kind: 'signed', request: { ...request, headers: { ...request.headers, authorization } } };
  }

  /** The signer of `oauth1`: the access token the user obtained through the dance. */
  threeLeggedSigner(): OutgoingSigner {
    return {
      sign: async (request, ctx) => {
        if (!ctx.asUser) throw new AppError('validation_failed', { field: 'asUser', message: '3-legged OAuth acts for one user: name the user (asUser).' });
        const held = await this.liveToken(ctx.link, ctx.asUser, ctx);
        if (!held) return this.authorizationRequired(ctx.link, ctx.asUser);
        this.signedWith.set(ctx, held.record);
        return this.signed(request, ctx, held.token, held.secret);
      },
      rejected: async (response, ctx) => {
        const used = this.signedWith.get(ctx);
        if (!ctx.asUser || !used) return undefined;
        const problem = problemOf(response.headers, response.body.toString('utf8').slice(0, 10_000));
        if (!problem || !DEAD_TOKEN.has(problem)) return undefined;
        // The remote refused the token this call was signed with; a newer one stored since (a
        // concurrent renewal, a new dance) is not what it refused: keep it, and let the 401 through.
        if (!(await this.repo.deleteOutgoingIf(used)) && (await this.repo.findOutgoing(ctx.link.id, ctx.asUser.id))) return undefined;
        return this.authorizationRequired(ctx.link, ctx.asUser);
      },
    };
  }

  /** The signer of `oauth1-2lo` and `oauth1-2lo-impersonation`: an empty token (as Atlassian's consumer sends). */
  twoLeggedSigner(type: string): OutgoingSigner {
    return {
      sign: async (request, ctx) => {
        let target = request;
        if (type === OAUTH1_2LOI_TYPE) {
          // Without a user it would go out as plain 2-legged: the remote's own "execute as" user, not who was asked for.
          if (!ctx.asUser) throw new AppError('validation_failed', { field: 'asUser', message: '2-legged OAuth with impersonation acts for one user: name the user (asUser).' });
          // Atlassian appends xoauth_requestor_id to the URL and signs it (TwoLeggedOAuthWithImpersonationRequest).
          const url = new URL(request.url);
          url.searchParams.delete('xoauth_requestor_id');
          url.searchParams.append('xoauth_requestor_id', ctx.asUser.username);
          target = { ...request, url: url.toString() };
        }
        return this.signed(target, ctx, '', undefined);
      },
    };
  }

  private authorizationRequired(link: LinkRecord, user: PrincipalUser): Extract<SignResult, { kind: 'authorization-required' }> {
    return {
      kind: 'authorization-required',
      authorizationUrl: this.s.edge.url(`${DANCE_START_PATH}?applicationLinkID=${encodeURIComponent(link.id)}`),
      message: `${user.username} has not authorized ${this.s.config.appName} to act for them at ${link.name} yet: open the authorization URL, signed in as ${user.username}.`,
    };
  }

  /**
   * The token we hold for a user at a link, renewed with its session handle when it has expired.
   * Concurrent calls of this process share one renewal (a provider honours one renewal of a
   * token and refuses the others, as ours does with token_revoked).
   */
  private liveToken(link: LinkRecord, user: PrincipalUser, ctx: SignContext): Promise<HeldToken | undefined> {
    const key = `${link.id}/${user.id}`;
    const running = this.renewals.get(key);
    if (running) return running;
    return this.repo.findOutgoing(link.id, user.id).then((held) => {
      if (!held) return undefined;
      if (this.fresh(held)) return this.opened(held);
      const joined = this.renewals.get(key);
      if (joined) return joined;
      const renewal = this.renew(link, ctx, held).finally(() => this.renewals.delete(key));
      this.renewals.set(key, renewal);
      return renewal;
    });
  }

  /**
   * Renews the expired token `held`. Only the remote's word that the token is dead (a problem
   * in DEAD_TOKEN) forgets it; an outage, a 5xx or a garbled answer says nothing about the
   * token, so it stays and the caller hears upstream_unavailable. Every write is
   * compare-and-set on the row as read: a token stored meanwhile (by another instance) wins.
   */
  private async renew(link: LinkRecord, ctx: SignContext, held: OutgoingTokenRecord): Promise<HeldToken | undefined> {
    const opened = this.open(held);
    if (!opened.sessionHandle || (held.sessionExpiresAt !== null && held.sessionExpiresAt <= this.s.clock.now())) return this.forgetDead(held);
    let renewed: TokenCredentials;
    try {
      renewed = await this.exchange(link, ctx.config, ctx.secrets, opened.token, opened.secret, { oauth_session_handle: opened.sessionHandle });
    } catch (error) {
      if (error instanceof RemoteRefusal && error.problem !== undefined && DEAD_TOKEN.has(error.problem)) return this.forgetDead(held);
      throw error;
    }
    const next = this.sealed(held.linkId, held.userId, renewed);
    if (await this.repo.replaceOutgoing(held, next)) return { record: next, token: renewed.token, secret: renewed.secret };
    // Changed meanwhile: forgotten (the renewed token is not stored back) or replaced (that one is used).
    return this.current(held.linkId, held.userId);
  }

  /** Forgets a token the remote no longer honours, unless a newer one was stored since (then that one). */
  private async forgetDead(held: OutgoingTokenRecord): Promise<HeldToken | undefined> {
    if (await this.repo.deleteOutgoingIf(held)) return undefined;
    return this.current(held.linkId, held.userId);
  }

  /** The token stored now, when it needs no renewal (whoever stored it just got it). */
  private async current(linkId: string, userId: string): Promise<HeldToken | undefined> {
    const now = await this.repo.findOutgoing(linkId, userId);
    return now && this.fresh(now) ? this.opened(now) : undefined;
  }

  private fresh(t: OutgoingTokenRecord): boolean {
    return t.expiresAt === null || t.expiresAt > this.s.clock.now();
  }

  private opened(t: OutgoingTokenRecord): HeldToken {
    const { token, secret } = this.open(t);
    return { record: t, token, secret };
  }

  private open(t: OutgoingTokenRecord): { token: string; secret: string; sessionHandle: string | null } {
    const k = this.s.keyring;
    return {
      token: k.open(t.tokenSealed, sealContexts.outgoing('token_sealed', t.linkId, t.userId)),
      secret: k.open(t.secretSealed, sealContexts.outgoing('secret_sealed', t.linkId, t.userId)),
      sessionHandle: t.sessionHandleSealed ? k.open(t.sessionHandleSealed, sealContexts.outgoing('session_handle_sealed', t.linkId, t.userId)) : null,
    };
  }

  private sealed(linkId: string, userId: string, t: TokenCredentials): OutgoingTokenRecord {
    const k = this.s.keyring;
    const now = this.s.clock.now();
    return {
      linkId,
      userId,
      tokenSealed: k.seal(t.token, sealContexts.outgoing('token_sealed', linkId, userId)),
      secretSealed: k.seal(t.secret, sealContexts.outgoing('secret_sealed', linkId, userId)),
      sessionHandleSealed: t.sessionHandle ? k.seal(t.sessionHandle, sealContexts.outgoing('session_handle_sealed', linkId, userId)) : null,
      createdAt: now,
      expiresAt: t.expiresIn !== null ? now + t.expiresIn * 1000 : null,
      sessionExpiresAt: t.authorizationExpiresIn !== null ? now + t.authorizationExpiresIn * 1000 : null,
    };
  }

  // ---------------------------------------------------------------- the dance

  /** The link's outgoing 3-legged configuration and endpoint URLs, or a page-worthy error. */
  async danceOf(linkId: string): Promise<{ link: LinkRecord; config: OutgoingThreeLeggedConfig; secrets: Record<string, unknown>; endpoints: { requestToken: string; authorize: string; accessToken: string } }> {
    const link = await this.s.links.cached(linkId);
    const auth = link ? await this.s.store.links.findAuth(link.id, 'outgoing', OAUTH1_TYPE) : undefined;
    if (!link || !auth || !link.url) throw new AppError('not_found', { message: 'This application link does not use 3-legged OAuth to call out.' });
    const config = auth.config as OutgoingThreeLeggedConfig;
    const at = (value: string | undefined, fallback: string) => (value && /^[a-z][a-z0-9+.-]*:/i.test(value) ? value : `${link.url}${value ?? fallback}`);
    return {
      link,
      config,
      secrets: this.s.links.openSecrets(auth),
      endpoints: {
        requestToken: at(config.requestTokenUrl, '/plugins/servlet/oauth/request-token'),
        authorize: at(config.authorizeUrl, '/plugins/servlet/oauth/authorize'),
        accessToken: at(config.accessTokenUrl, '/plugins/servlet/oauth/access-token'),
      },
    };
  }

  /**
   * Starts the dance for a signed-in user: a request token from the remote (with our callback),
   * kept sealed for this user and link, and the remote's authorize URL to send the browser to.
   */
  async startDance(linkId: string, user: PrincipalUser, returnTo: string): Promise<string> {
    const dance = await this.danceOf(linkId);
    const callback = `${this.s.edge.url(DANCE_CALLBACK_PATH)}?applicationLinkID=${encodeURIComponent(linkId)}`;
    const { consumerKey, method, secrets } = await this.signing(dance.config, dance.secrets, undefined);
    const authorization = authorizationHeader({ method: 'POST', url: dance.endpoints.requestToken, consumerKey, token: undefined, signatureMethod: method, secrets, extra: { oauth_callback: callback } });
    const answer = await this.post(dance.endpoints.requestToken, authorization, `${dance.link.name} refused to issue a request token`);
    const token = answer.get('oauth_token');
    const secret = answer.get('oauth_token_secret');
    if (!token || secret === undefined) throw new AppError('upstream_unavailable', { message: `${dance.link.name} answered the request-token call without a token.` });
    if (answer.get('oauth_callback_confirmed') !== 'true') throw new AppError('upstream_unavailable', { message: `${dance.link.name} did not confirm our callback (it speaks OAuth 1.0, not 1.0a).` });
    const now = this.s.clock.now();
    const k = this.s.keyring;
    await this.repo.savePending({
      linkId,
      userId: user.id,
      tokenSealed: k.seal(token, sealContexts.pending('token_sealed', linkId, user.id)),
      secretSealed: k.seal(secret, sealContexts.pending('secret_sealed', linkId, user.id)),
      returnTo,
      createdAt: now,
      expiresAt: now + DANCE_TTL_MS,
    });
    return appendParameters(dance.endpoints.authorize, { oauth_token: token });
  }

  /**
   * The user came back from the remote's consent page: the request token must be the one we
   * keep for this user and link; it is exchanged (with the verifier) for an access token, which
   * is stored sealed. Answers where to send the browser.
   */
  async finishDance(linkId: string, user: PrincipalUser, token: string | undefined, verifier: string | undefined, actor: Actor): Promise<string> {
    const pending = await this.repo.takePending(linkId, user.id);
    if (!pending || pending.expiresAt <= this.s.clock.now()) throw new AppError('oauth1_token_rejected', { message: 'There is no authorization in progress for this application link: start again.' });
    const k = this.s.keyring;
    const held = k.open(pending.tokenSealed, sealContexts.pending('token_sealed', linkId, user.id));
    if (!token || !constantTimeEqual(token, held)) throw new AppError('oauth1_token_rejected', { message: 'The remote sent back a different request token: start again.' });
    if (!verifier) throw new AppError('oauth1_parameter_absent', { message: 'The remote sent no oauth_verifier back.' });
    const dance = await this.danceOf(linkId);
    const secret = k.open(pending.secretSealed, sealContexts.pending('secret_sealed', linkId, user.id));
    const credentials = await this.exchange(dance.link, dance.config, dance.secrets, held, secret, { oauth_verifier: verifier });
    try {
      await this.s.store.transaction(async (repos, trx) => {
        await new OAuth1Repository(trx).saveOutgoing(this.sealed(linkId, user.id, credentials));
        await this.s.audit.record(actor, { action: 'oauth1.outgoing.authorize', target: { type: 'link', id: linkId, name: dance.link.name }, details: { user: user.username } }, repos);
      });
    } catch (error) {
      // The link or the user was deleted (here or on another instance) while the remote asked
      // for consent: the token has nobody to belong to, and nothing is stored.
      if (!isForeignKeyViolation(error)) throw error;
      if (!(await this.s.store.users.findById(user.id))) {
        this.s.revocations.user(user.id);
        throw new AppError('unauthenticated', { message: 'Your account was removed while you authorized this application link: nothing was stored.', cause: error });
      }
      this.s.revocations.link(linkId);
      throw new AppError('not_found', { message: 'This application link was removed while you authorized it: nothing was stored.', cause: error });
    }
    return pending.returnTo;
  }

  /** An access-token call: the exchange of a request token, or a renewal. */
  private async exchange(link: LinkRecord, config: Record<string, unknown>, secrets: Record<string, unknown>, token: string, tokenSecret: string, extra: Record<string, string>): Promise<TokenCredentials> {
    const dance = await this.danceOf(link.id);
    const signing = await this.signing(config, secrets, tokenSecret);
    const authorization = authorizationHeader({ method: 'POST', url: dance.endpoints.accessToken, consumerKey: signing.consumerKey, token, signatureMethod: signing.method, secrets: signing.secrets, extra });
    const answer = await this.post(dance.endpoints.accessToken, authorization, `${link.name} refused the access-token call`);
    const accessToken = answer.get('oauth_token');
    const accessSecret = answer.get('oauth_token_secret');
    if (!accessToken || accessSecret === undefined) throw new AppError('upstream_unavailable', { message: `${link.name} answered the access-token call without a token.` });
    const seconds = (name: string) => {
      const v = answer.get(name);
      return v !== undefined && /^\d+$/.test(v) ? Number(v) : null;
    };
    return {
      token: accessToken,
      secret: accessSecret,
      sessionHandle: answer.get('oauth_session_handle') ?? null,
      expiresIn: seconds('oauth_expires_in'),
      authorizationExpiresIn: seconds('oauth_authorization_expires_in'),
    };
  }

  private async post(url: string, authorization: string, refused: string): Promise<Map<string, string>> {
    let res;
    try {
      res = await undiciRequest(url, {
        method: 'POST',
        headers: { authorization, 'content-type': 'application/x-www-form-urlencoded', accept: 'text/plain, application/x-www-form-urlencoded' },
        body: '',
        headersTimeout: 15_000,
        bodyTimeout: 15_000,
      });
    } catch (error) {
      throw new AppError('upstream_unavailable', { message: `${new URL(url).host} could not be reached.`, detail: (error as Error).message });
    }
    const body = (await res.body.text()).slice(0, 100_000);
    if (res.statusCode !== 200) {
      const problem = problemOf(res.headers, body);
      const code = problem === 'permission_denied' ? 'oauth1_permission_denied' : 'upstream_unavailable';
      throw new RemoteRefusal(code, problem, { message: `${refused} (HTTP ${res.statusCode}${problem ? `, ${problem}` : ''}).` });
    }
    return parseTokenResponse(body);
  }

  /** The links this user authorized us to use for them (for their account page). */
  async heldFor(userId: string): Promise<Array<{ linkId: string; createdAt: number; expiresAt: number | null }>> {
    return (await this.repo.outgoingOf(userId)).map((t) => ({ linkId: t.linkId, createdAt: t.createdAt, expiresAt: t.expiresAt }));
  }

  async forget(linkId: string, userId: string): Promise<boolean> {
    return (await this.repo.deleteOutgoing(linkId, userId)) > 0;
  }

  /**
   * The link's outgoing 3-legged configuration went, or the link points at another remote now:
   * every user's token and dance in progress goes with it (in the caller's transaction), so
   * nothing obtained from the old remote is ever signed towards the new one.
   */
  async remoteGone(trx: Executor, linkId: string): Promise<Forgotten | undefined> {
    const repo = new OAuth1Repository(trx);
    const tokens = await repo.deleteOutgoing(linkId);
    const dances = await repo.deletePendingOf(linkId);
    return tokens + dances > 0 ? { oauth1OutgoingTokens: tokens, oauth1PendingDances: dances } : undefined;
  }
}

/** A stored token, opened, with the row it was read from (the version its writes compare with). */
interface HeldToken {
  record: OutgoingTokenRecord;
  token: string;
  secret: string;
}

/** The remote refused an access-token call; `problem` is its `oauth_problem`, when it named one. */
class RemoteRefusal extends AppError {
  constructor(
    code: ErrorCode,
    readonly problem: string | undefined,
    options: AppErrorOptions,
  ) {
    super(code, options);
  }
}

interface TokenCredentials {
  token: string;
  secret: string;
  sessionHandle: string | null;
  expiresIn: number | null;
  authorizationExpiresIn: number | null;
}
