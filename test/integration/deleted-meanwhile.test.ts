import type { LightMyRequestResponse } from 'fastify';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { hashToken } from '../../src/crypto/tokens.js';
import { oauth1Of } from '../../src/modules/oauth1/index.js';
import { OAuth1Repository } from '../../src/modules/oauth1/repository.js';
import { oauth2Of } from '../../src/modules/oauth2/index.js';
import { ClientManager } from '../../src/modules/oauth2/management.js';
import { LinkService } from '../../src/services/links.js';
import { KyselyLinkRepository } from '../../src/storage/repositories/links.js';
import { OAuth2Repository } from '../../src/modules/oauth2/repository.js';
import { createHarness, DIALECTS, json, userWithToken, type Harness } from '../helpers/harness.js';
import { ACCESS_TOKEN, AUTHORIZE as OAUTH1_AUTHORIZE, CALLBACK, dance, formOf, problemOf, registerConsumer, REQUEST_TOKEN, signedInject, type TestConsumer } from '../helpers/oauth1.js';
import { authorizeUrl, decide, exchange, hiddenFields, obtainCode, pkce, post, REDIRECT, registerClient, signIn, TOKEN, type CookieJar, type RegisteredClient } from '../helpers/oauth2.js';

/**
 * Races with a deletion. The link, client, session and user a request works with come from
 * caches that live up to APPLINKS_AUTH_CACHE_TTL_MS: another instance (or a request on this one
 * that has not reached the caches yet) may delete the link or the user between the page being
 * shown and the decision posted, or between the reads of a token request and its writes. The
 * store then refuses the rows (foreign key). Each case answers the protocol's own 4xx, never a
 * 500 or a redirect to a client that is gone, and writes nothing.
 *
 * "Deleted on another instance" is a deletion through the store directly: this instance's caches
 * still hold what was deleted, exactly as another instance's deletion leaves them. A deletion
 * that commits in the middle of a token request (after its reads, before its writes) is
 * reproduced by answering the reads with the rows as they were read before it.
 */
describe.each(DIALECTS)('deleted while in use, on %s', (dialect) => {
  let h: Harness;
  let jar: CookieJar;
  let aliceId: string;
  beforeEach(async () => {
    h = await createHarness(dialect, { config: { oauth2DeveloperApps: true } });
    aliceId = (await userWithToken(h, 'alice', { password: 'alice-password' })).user.id;
    jar = await signIn(h, 'alice', 'alice-password');
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    await h.close();
  });

  const count = async (table: string, where = sql`1 = 1`): Promise<number> => {
    const r = await sql<{ n: number | string }>`select count(*) as n from ${sql.table(table)} where ${where}`.execute(h.services.store.db);
    return Number(r.rows[0]!.n);
  };
  const audited = (action: string) => count('audit_log', sql`action = ${action}`);
  // As another instance deletes them: the caches of this one are not told.
  const deleteLinkElsewhere = async (linkId: string) => expect(await h.services.store.links.delete(linkId)).toBe(true);
  const deleteUserElsewhere = async (userId: string) => expect(await h.services.store.users.delete(userId)).toBe(true);
  const noErrorLogged = () => expect(h.logs.filter((l) => (JSON.parse(l) as { level: number }).level >= 50)).toEqual([]);

  /** A page, not a redirect: the client is not sent anything. */
  const expectPage = (res: LightMyRequestResponse, status: number, text: RegExp) => {
    expect(res.statusCode, res.body).toBe(status);
    expect(res.headers.location).toBeUndefined();
    expect(String(res.headers['content-type'])).toMatch(/^text\/html/);
    expect(res.body).toMatch(text);
  };

  // ------------------------------------------------------------------ OAuth 2.0

  describe('OAuth 2.0', () => {
    const consentPage = async (client: RegisteredClient, extra: Record<string, string> = {}) => {
      const { challenge } = pkce();
      const page = await h.inject({
        url: authorizeUrl({ response_type: 'code', client_id: client.clientId, redirect_uri: REDIRECT, state: 'st', code_challenge: challenge, code_challenge_method: 'S256', ...extra }),
        headers: { cookie: jar.header },
      });
      expect(page.statusCode, page.body).toBe(200);
      return page;
    };
    const nothingIssued = async () => {
      expect(await count('oauth2_codes')).toBe(0);
      expect(await count('oauth2_consents')).toBe(0);
      expect(await count('oauth2_grants')).toBe(0);
      expect(await count('oauth2_tokens')).toBe(0);
      expect(await audited('oauth2.consent')).toBe(0);
    };

    it('shows a page, never redirects, when the client is deleted between the consent page and Allow', async () => {
      const client = await registerClient(h);
      const page = await consentPage(client);
      await deleteLinkElsewhere(client.linkId);
      const res = await decide(h, jar, page, 'allow');
      expectPage(res, 400, /is no longer available: it was removed while you were deciding/);
      await nothingIssued();
      // The caches of this instance were told: the next request does not find the client at all.
      expectPage(await h.inject({ url: authorizeUrl({ response_type: 'code', client_id: client.clientId, redirect_uri: REDIRECT }), headers: { cookie: jar.header } }), 400, /No application is registered/);
      noErrorLogged();
    });

    it('shows a page when the user is deleted between the consent page and Allow', async () => {
      const client = await registerClient(h);
      const page = await consentPage(client);
      await deleteUserElsewhere(aliceId);
      const res = await decide(h, jar, page, 'allow');
      expectPage(res, 401, /Your account was removed while you were deciding/);
      await nothingIssued();
      noErrorLogged();
    });

    it('shows a page when the client is deleted while a remembered consent issues a code', async () => {
      const client = await registerClient(h);
      await obtainCode(h, jar, client);
      const consent = await oauth2Of(h.services).repo.findConsent(aliceId, client.linkId);
      expect(consent).toBeDefined();
      await deleteLinkElsewhere(client.linkId);
      // The consent was read just before the deletion committed.
      vi.spyOn(OAuth2Repository.prototype, 'findConsent').mockResolvedValueOnce(consent);
      const { challenge } = pkce();
      const res = await h.inject({
        url: authorizeUrl({ response_type: 'code', client_id: client.clientId, redirect_uri: REDIRECT, state: 'st', code_challenge: challenge, code_challenge_method: 'S256' }),
        headers: { cookie: jar.header },
      });
      expectPage(res, 400, /is no longer available/);
      expect(await count('oauth2_codes')).toBe(0);
      noErrorLogged();
    });

    /** The code as read by the token request, then the deletion, then the request's writes. */
    const exchangeAfterDeletion = async (client: RegisteredClient, remove: () => Promise<void>) => {
      const code = await obtainCode(h, jar, client);
      const record = await oauth2Of(h.services).repo.findCode(hashToken(code.code));
      expect(record).toBeDefined();
      await remove();
      vi.spyOn(OAuth2Repository.prototype, 'findCode').mockResolvedValueOnce(record);
      vi.spyOn(OAuth2Repository.prototype, 'consumeCode').mockResolvedValueOnce(true);
      return post(h, TOKEN, client, { grant_type: 'authorization_code', code: code.code, redirect_uri: REDIRECT, code_verifier: code.verifier });
    };

    it('answers invalid_grant when the user is deleted during a code exchange', async () => {
      const client = await registerClient(h);
      const res = await exchangeAfterDeletion(client, () => deleteUserElsewhere(aliceId));
      expect([res.statusCode, json(res).error], res.body).toEqual([400, 'invalid_grant']);
      expect(await count('oauth2_grants')).toBe(0);
      expect(await count('oauth2_tokens')).toBe(0);
      noErrorLogged();
    });

    it('answers invalid_client when the client is deleted during a code exchange', async () => {
      // A public client: a confidential one would already fail to authenticate (its secrets went with the link).
      const client = await registerClient(h, { confidential: false });
      const res = await exchangeAfterDeletion(client, () => deleteLinkElsewhere(client.linkId));
      expect([res.statusCode, json(res).error], res.body).toEqual([401, 'invalid_client']);
      expect(res.headers['www-authenticate']).toBeDefined();
      expect(await count('oauth2_grants')).toBe(0);
      expect(await count('oauth2_tokens')).toBe(0);
      noErrorLogged();
    });

    /** The refresh token and its grant as read by the token request, then the deletion, then the rotation. */
    const refreshAfterDeletion = async (client: RegisteredClient, remove: () => Promise<void>) => {
      const tokens = await exchange(h, client, await obtainCode(h, jar, client));
      const repo = oauth2Of(h.services).repo;
      const token = await repo.findToken(hashToken(tokens.refresh_token!));
      const grant = await repo.findGrant(token!.grantId!);
      expect(grant).toBeDefined();
      await remove();
      vi.spyOn(OAuth2Repository.prototype, 'findToken').mockResolvedValueOnce(token);
      vi.spyOn(OAuth2Repository.prototype, 'findGrant').mockResolvedValueOnce(grant);
      vi.spyOn(OAuth2Repository.prototype, 'advanceGrant').mockResolvedValueOnce(true);
      return post(h, TOKEN, client, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token });
    };

    it('answers invalid_grant when the user is deleted during a refresh', async () => {
      const client = await registerClient(h);
      const res = await refreshAfterDeletion(client, () => deleteUserElsewhere(aliceId));
      expect([res.statusCode, json(res).error], res.body).toEqual([400, 'invalid_grant']);
      expect(await count('oauth2_grants')).toBe(0);
      expect(await count('oauth2_tokens')).toBe(0);
      noErrorLogged();
    });

    it('answers invalid_client when the client is deleted during a refresh', async () => {
      const client = await registerClient(h, { confidential: false });
      const res = await refreshAfterDeletion(client, () => deleteLinkElsewhere(client.linkId));
      expect([res.statusCode, json(res).error], res.body).toEqual([401, 'invalid_client']);
      expect(await count('oauth2_grants')).toBe(0);
      expect(await count('oauth2_tokens')).toBe(0);
      noErrorLogged();
    });

    it('answers invalid_grant, not "already used", for a code taken along with its deleted user', async () => {
      const client = await registerClient(h);
      const code = await obtainCode(h, jar, client);
      const record = await oauth2Of(h.services).repo.findCode(hashToken(code.code));
      await deleteUserElsewhere(aliceId);
      // Read before the deletion; the deletion took the code along before it could be consumed.
      vi.spyOn(OAuth2Repository.prototype, 'findCode').mockResolvedValueOnce(record);
      const res = await post(h, TOKEN, client, { grant_type: 'authorization_code', code: code.code, redirect_uri: REDIRECT, code_verifier: code.verifier });
      expect([res.statusCode, json(res).error, json(res).error_description], res.body).toEqual([400, 'invalid_grant', 'The authorization code is no longer valid.']);
      expect(await count('oauth2_tokens')).toBe(0);
      expect(await audited('oauth2.grant.revoke')).toBe(0);
    });

    describe('client_credentials', () => {
      /** A service account's client whose first token warmed this instance's caches (client, secret, user). */
      const serviceClient = async () => {
        const robot = (await userWithToken(h, 'robot')).user;
        const client = await registerClient(h, { serviceAccount: 'robot', redirectUris: [] });
        expect((await post(h, TOKEN, client, { grant_type: 'client_credentials' })).statusCode).toBe(200);
        return { robot, client };
      };

      it('answers invalid_client when the client is deleted on another instance', async () => {
        const { client } = await serviceClient();
        await deleteLinkElsewhere(client.linkId);
        const res = await post(h, TOKEN, client, { grant_type: 'client_credentials' });
        expect([res.statusCode, json(res).error], res.body).toEqual([401, 'invalid_client']);
        expect(res.headers['www-authenticate']).toBeDefined();
        expect(await count('oauth2_tokens')).toBe(0);
        noErrorLogged();
      });

      it('answers unauthorized_client, as for a service account seen deleted, when it is deleted on another instance', async () => {
        const { robot, client } = await serviceClient();
        await deleteUserElsewhere(robot.id);
        const res = await post(h, TOKEN, client, { grant_type: 'client_credentials' });
        expect([res.statusCode, json(res).error], res.body).toEqual([400, 'unauthorized_client']);
        expect(await count('oauth2_tokens')).toBe(0);
        noErrorLogged();
      });
    });

    describe('registering and changing clients', () => {
      const nothingRegistered = async () => {
        expect(await count('link_auth')).toBe(0);
        expect(await count('oauth2_client_secrets')).toBe(0);
        expect(await count('oauth2_client_owners')).toBe(0);
        expect(await audited('oauth2.client.create')).toBe(0);
      };

      it('asks a developer deleted while registering an application to sign in again; nothing is registered', async () => {
        const { user, bearer } = await userWithToken(h, 'dev');
        // Deleted on another instance after this request read the user, before it wrote.
        vi.spyOn(ClientManager.prototype, 'count').mockImplementationOnce(async () => {
          await deleteUserElsewhere(user.id);
          return 0;
        });
        const res = await h.inject({ method: 'POST', url: '/api/v1/me/oauth2/clients', headers: { authorization: bearer }, payload: { name: 'Mine', redirectUris: ['https://mine.example/cb'] } });
        expect([res.statusCode, json(res).error], res.body).toEqual([401, 'unauthenticated']);
        expect(await count('links')).toBe(0);
        await nothingRegistered();
        noErrorLogged();
      });

      /** Deletes the link, or gives it a client, when the admin API has read it and before it writes. */
      const betweenReadsAndWrites = (onRead: number, change: () => Promise<void>) => {
        const links = h.services.store.links;
        const findAuth = links.findAuth.bind(links);
        let reads = 0;
        vi.spyOn(links, 'findAuth').mockImplementation(async (...args) => {
          const found = await findAuth(...args);
          if (++reads === onRead) await change();
          return found;
        });
      };

      it('answers not_found when the link is deleted while a client is registered on it; nothing is written', async () => {
        const link = json<{ id: string }>(await h.inject({ method: 'POST', url: '/api/v1/links', headers: { authorization: h.adminBasic }, payload: { name: 'Existing' } }));
        // The second read is the link service's, just before its transaction.
        betweenReadsAndWrites(2, () => deleteLinkElsewhere(link.id));
        const res = await h.inject({ method: 'POST', url: '/api/v1/oauth2/clients', headers: { authorization: h.adminBasic }, payload: { name: 'On it', linkId: link.id, redirectUris: [REDIRECT] } });
        expect([res.statusCode, json(res).error], res.body).toEqual([404, 'not_found']);
        await nothingRegistered();
        noErrorLogged();
      });

      it('answers conflict, and keeps the first, when two clients are registered on one link at once', async () => {
        const link = json<{ id: string }>(await h.inject({ method: 'POST', url: '/api/v1/links', headers: { authorization: h.adminBasic }, payload: { name: 'Existing' } }));
        let first: RegisteredClient | undefined;
        // Both requests read the link without a client; the other one commits first.
        betweenReadsAndWrites(2, async () => {
          vi.mocked(h.services.store.links.findAuth).mockRestore();
          first = await registerClient(h, { linkId: link.id });
        });
        const res = await h.inject({ method: 'POST', url: '/api/v1/oauth2/clients', headers: { authorization: h.adminBasic }, payload: { name: 'Second', linkId: link.id, redirectUris: [REDIRECT] } });
        expect([res.statusCode, json(res).error], res.body).toEqual([409, 'conflict']);
        expect(json(res).message).toMatch(/configuration meanwhile/);
        // The first client is whole: its configuration, and its secret alone.
        expect((await h.services.store.links.findAuth(link.id, 'incoming', 'oauth2'))?.lookupKey).toBe(first!.clientId);
        expect(await count('oauth2_client_secrets')).toBe(1);
        expect(await audited('oauth2.client.create')).toBe(1);
        expect((await post(h, TOKEN, first!, { grant_type: 'client_credentials' })).statusCode).not.toBe(401);
        noErrorLogged();
      });

      /** Runs `change` as another instance would, after the admin API read the configuration and before it writes. */
      const beforeTheWrite = (change: () => Promise<void>) => {
        const prepare = (LinkService.prototype as unknown as { prepareAuth: (...args: unknown[]) => Promise<unknown> }).prepareAuth;
        vi.spyOn(LinkService.prototype as unknown as { prepareAuth: typeof prepare }, 'prepareAuth').mockImplementationOnce(async function (this: LinkService, ...args: unknown[]) {
          const prepared = await prepare.apply(this, args);
          await change();
          return prepared;
        });
      };
      const clientConfig = async (linkId: string) => (await h.services.store.links.findAuth(linkId, 'incoming', 'oauth2'))!;

      it('answers conflict, and keeps the other change, when a client is changed on another instance while it is updated', async () => {
        const client = await registerClient(h, { scopes: ['READ', 'WRITE'] });
        beforeTheWrite(async () => {
          const read = await clientConfig(client.linkId);
          await h.services.store.links.upsertAuth({ ...read, config: { ...read.config, scopes: ['READ'] }, updatedAt: read.updatedAt + 1 });
        });
        const res = await h.inject({ method: 'PATCH', url: `/api/v1/oauth2/clients/${client.clientId}`, headers: { authorization: h.adminBasic }, payload: { redirectUris: ['https://elsewhere.example/cb'] } });
        expect([res.statusCode, json(res).error], res.body).toEqual([409, 'conflict']);
        expect(json(res).message).toMatch(/changed or removed meanwhile/);
        const now = await clientConfig(client.linkId);
        expect(now.config).toMatchObject({ scopes: ['READ'], redirectUris: [REDIRECT] });
        expect(await audited('link.incoming.set')).toBe(0);
        noErrorLogged();
      });

      it('answers conflict, and re-creates nothing, when a client is removed on another instance while it is updated', async () => {
        const client = await registerClient(h);
        beforeTheWrite(async () => {
          expect(await h.services.store.links.deleteAuth(client.linkId, 'incoming', 'oauth2')).toBe(true);
        });
        const res = await h.inject({ method: 'PATCH', url: `/api/v1/oauth2/clients/${client.clientId}`, headers: { authorization: h.adminBasic }, payload: { name: 'Renamed' } });
        expect([res.statusCode, json(res).error], res.body).toEqual([409, 'conflict']);
        expect(await count('link_auth')).toBe(0);
        noErrorLogged();
      });

      it('answers not_found when the link is deleted on another instance while a client is updated', async () => {
        const client = await registerClient(h);
        beforeTheWrite(() => deleteLinkElsewhere(client.linkId));
        const res = await h.inject({ method: 'PATCH', url: `/api/v1/oauth2/clients/${client.clientId}`, headers: { authorization: h.adminBasic }, payload: { scopes: ['READ'] } });
        expect([res.statusCode, json(res).error], res.body).toEqual([404, 'not_found']);
        expect(await count('link_auth')).toBe(0);
        noErrorLogged();
      });

      it('refuses to name a service account deleted on another instance while the client is updated', async () => {
        const robot = (await userWithToken(h, 'robot')).user;
        const client = await registerClient(h);
        beforeTheWrite(() => deleteUserElsewhere(robot.id));
        const res = await h.inject({ method: 'PATCH', url: `/api/v1/oauth2/clients/${client.clientId}`, headers: { authorization: h.adminBasic }, payload: { serviceAccount: 'robot' } });
        expect([res.statusCode, json(res).error], res.body).toEqual([400, 'validation_failed']);
        expect((await clientConfig(client.linkId)).config).toMatchObject({ serviceAccountUserId: null });
        noErrorLogged();
      });

      it('registers no client naming a service account deleted on another instance meanwhile', async () => {
        const robot = (await userWithToken(h, 'robot')).user;
        beforeTheWrite(() => deleteUserElsewhere(robot.id));
        const res = await h.inject({ method: 'POST', url: '/api/v1/oauth2/clients', headers: { authorization: h.adminBasic }, payload: { name: 'Robot', redirectUris: [], serviceAccount: 'robot' } });
        expect([res.statusCode, json(res).error], res.body).toEqual([400, 'validation_failed']);
        expect(await count('links')).toBe(0);
        await nothingRegistered();
        noErrorLogged();
      });

      describe('deleting a service account', () => {
        /** The user is deleted after `change` committed elsewhere, though the deletion read the configurations before it. */
        const deleteUserAfter = async (userId: string, change: () => Promise<void>) => {
          const asRead = await h.services.store.links.listAllAuth();
          await change();
          vi.spyOn(KyselyLinkRepository.prototype, 'listAllAuth').mockResolvedValueOnce(asRead);
          return h.inject({ method: 'DELETE', url: `/api/v1/users/${userId}`, headers: { authorization: h.adminBasic } });
        };

        it('deletes the user when the client’s link is deleted on another instance meanwhile', async () => {
          const robot = (await userWithToken(h, 'robot')).user;
          const client = await registerClient(h, { serviceAccount: 'robot', redirectUris: [] });
          const res = await deleteUserAfter(robot.id, () => deleteLinkElsewhere(client.linkId));
          expect(res.statusCode, res.body).toBe(204);
          expect(await h.services.store.users.findById(robot.id)).toBeUndefined();
          expect(await count('link_auth')).toBe(0);
          noErrorLogged();
        });

        it('keeps a change made to the client on another instance meanwhile, and no longer names the user', async () => {
          const robot = (await userWithToken(h, 'robot')).user;
          const client = await registerClient(h, { serviceAccount: 'robot', redirectUris: [], scopes: ['READ', 'WRITE'] });
          const res = await deleteUserAfter(robot.id, async () => {
            const read = await clientConfig(client.linkId);
            await h.services.store.links.upsertAuth({ ...read, config: { ...read.config, scopes: ['READ'] }, updatedAt: read.updatedAt + 1 });
          });
          expect(res.statusCode, res.body).toBe(204);
          expect((await clientConfig(client.linkId)).config).toMatchObject({ scopes: ['READ'], serviceAccountUserId: null });
          noErrorLogged();
        });

        it('leaves a client alone that no longer names the user when it is deleted', async () => {
          const robot = (await userWithToken(h, 'robot')).user;
          await userWithToken(h, 'other-robot');
          const client = await registerClient(h, { serviceAccount: 'robot', redirectUris: [] });
          const other = (await h.services.store.users.findByUsername('other-robot'))!;
          const res = await deleteUserAfter(robot.id, async () => {
            const read = await clientConfig(client.linkId);
            await h.services.store.links.upsertAuth({ ...read, config: { ...read.config, serviceAccountUserId: other.id }, updatedAt: read.updatedAt + 1 });
          });
          expect(res.statusCode, res.body).toBe(204);
          expect((await clientConfig(client.linkId)).config).toMatchObject({ serviceAccountUserId: other.id });
          noErrorLogged();
        });
      });

      it('answers not_found, and stores no secret, when a client is removed while its secret is rotated', async () => {
        const client = await registerClient(h, { name: 'Keeps its link' });
        const rotate = () => h.inject({ method: 'POST', url: `/api/v1/oauth2/clients/${client.clientId}/secret`, headers: { authorization: h.adminBasic }, payload: { graceSeconds: 0 } });
        expect((await rotate()).statusCode).toBe(200);
        // Removed on another instance with its link kept: this instance still caches the client.
        await h.services.store.transaction(async (repos, trx) => {
          expect(await repos.links.deleteAuth(client.linkId, 'incoming', 'oauth2')).toBe(true);
          await new OAuth2Repository(trx).deleteSecrets(client.linkId);
        });
        const res = await rotate();
        expect([res.statusCode, json(res).error], res.body).toEqual([404, 'not_found']);
        // No secret outlives the client, to vouch for the next one registered on this link.
        expect(await count('oauth2_client_secrets')).toBe(0);
        expect(await audited('oauth2.client.secret.rotate')).toBe(1);
        noErrorLogged();
      });

      it('answers not_found when the link is deleted while a secret is rotated', async () => {
        const client = await registerClient(h); // and cached by this instance
        await deleteLinkElsewhere(client.linkId);
        const res = await h.inject({ method: 'POST', url: `/api/v1/oauth2/clients/${client.clientId}/secret`, headers: { authorization: h.adminBasic }, payload: {} });
        expect([res.statusCode, json(res).error], res.body).toEqual([404, 'not_found']);
        expect(await count('oauth2_client_secrets')).toBe(0);
        noErrorLogged();
      });
    });
  });

  // ------------------------------------------------------------------ OAuth 1.0a

  describe('OAuth 1.0a provider', () => {
    let consumer: TestConsumer;
    beforeEach(async () => {
      consumer = await registerConsumer(h);
    });

    const requestToken = async () => {
      const rt = await signedInject(h, consumer, { method: 'POST', path: REQUEST_TOKEN, oauth: { oauth_callback: CALLBACK } });
      expect(rt.statusCode, rt.body).toBe(200);
      const f = formOf(rt);
      return { key: f.oauth_token!, secret: f.oauth_token_secret! };
    };
    const authorizePage = async (token: string) => {
      const page = await h.inject({ url: `${OAUTH1_AUTHORIZE}?oauth_token=${encodeURIComponent(token)}`, headers: { cookie: jar.header } });
      expect(page.statusCode, page.body).toBe(200);
      jar.take(page);
      return page;
    };
    const postDecision = (page: LightMyRequestResponse, decision: 'allow' | 'deny') => {
      const form = hiddenFields(page.body);
      if (decision === 'allow') form.set('approve', 'Allow');
      else form.set('deny', 'Deny');
      return h.inject({ method: 'POST', url: OAUTH1_AUTHORIZE, headers: { cookie: jar.header, 'content-type': 'application/x-www-form-urlencoded' }, payload: form.toString() });
    };
    const expectRejected = (res: LightMyRequestResponse, advice: RegExp) => {
      expect([res.statusCode, problemOf(res)], res.body).toEqual([401, 'token_rejected']);
      expect(String(res.headers['www-authenticate'])).toContain('oauth_problem="token_rejected"');
      expect(formOf(res).oauth_problem_advice).toMatch(advice);
    };

    it('answers consumer_key_unknown when the link is deleted on another instance before a request token is issued', async () => {
      await requestToken(); // this instance now caches the consumer
      await deleteLinkElsewhere(consumer.linkId);
      const res = await signedInject(h, consumer, { method: 'POST', path: REQUEST_TOKEN, oauth: { oauth_callback: CALLBACK } });
      expect([res.statusCode, problemOf(res)], res.body).toEqual([401, 'consumer_key_unknown']);
      expect(await count('oauth1_request_tokens')).toBe(0);
      noErrorLogged();
    });

    for (const decision of ['allow', 'deny'] as const) {
      it(`shows a page when the user is deleted between the authorize page and ${decision === 'allow' ? 'Allow' : 'Deny'}; the token stays undecided`, async () => {
        const token = await requestToken();
        const page = await authorizePage(token.key);
        await deleteUserElsewhere(aliceId);
        const res = await postDecision(page, decision);
        expectPage(res, 401, /Your account was removed while you were deciding/);
        const record = await oauth1Of(h.services).provider.repo.findRequestToken(hashToken(token.key));
        expect([record?.state, record?.userId, record?.verifierHash]).toEqual(['pending', null, null]);
        expect(await audited('oauth1.consent')).toBe(0);
        noErrorLogged();
      });
    }

    it('shows a page when the link is deleted between the authorize page and Allow', async () => {
      const token = await requestToken();
      const page = await authorizePage(token.key);
      await deleteLinkElsewhere(consumer.linkId);
      const res = await postDecision(page, 'allow');
      expectPage(res, 401, /unknown or was already used/);
      expect(await count('oauth1_request_tokens')).toBe(0);
      expect(await audited('oauth1.consent')).toBe(0);
      noErrorLogged();
    });

    /** An authorized request token as read by the access-token request, then the deletion, then its writes. */
    const exchangeAfterDeletion = async (remove: () => Promise<void>) => {
      const token = await requestToken();
      const decided = await postDecision(await authorizePage(token.key), 'allow');
      const verifier = new URL(String(decided.headers.location)).searchParams.get('oauth_verifier')!;
      const record = await oauth1Of(h.services).provider.repo.findRequestToken(hashToken(token.key));
      expect(record?.state).toBe('authorized');
      await remove();
      vi.spyOn(OAuth1Repository.prototype, 'findRequestToken').mockResolvedValueOnce(record);
      vi.spyOn(OAuth1Repository.prototype, 'consumeRequestToken').mockResolvedValueOnce(true);
      return signedInject(h, consumer, { method: 'POST', path: ACCESS_TOKEN, token, oauth: { oauth_verifier: verifier } });
    };

    it('answers token_rejected when the user is deleted during the access-token exchange', async () => {
      const res = await exchangeAfterDeletion(() => deleteUserElsewhere(aliceId));
      expectRejected(res, /user who authorized this token was removed/);
      expect(await count('oauth1_access_tokens')).toBe(0);
      noErrorLogged();
    });

    it('answers token_rejected when the link is deleted during the access-token exchange', async () => {
      const res = await exchangeAfterDeletion(() => deleteLinkElsewhere(consumer.linkId));
      expectRejected(res, /application link of this consumer was removed/);
      expect(await count('oauth1_access_tokens')).toBe(0);
      noErrorLogged();
    });

    it('answers token_rejected when the user is deleted during a renewal', async () => {
      const { access, body } = await dance(h, consumer, jar);
      expect(access).toBeDefined();
      const record = await oauth1Of(h.services).provider.repo.findAccessToken(hashToken(access!.key));
      await deleteUserElsewhere(aliceId);
      vi.spyOn(OAuth1Repository.prototype, 'findAccessToken').mockResolvedValueOnce(record);
      vi.spyOn(OAuth1Repository.prototype, 'revokeAccessToken').mockResolvedValueOnce(true);
      const res = await signedInject(h, consumer, { method: 'POST', path: ACCESS_TOKEN, token: access!, oauth: { oauth_session_handle: body.oauth_session_handle! } });
      expectRejected(res, /user who authorized this token was removed/);
      expect(await count('oauth1_access_tokens')).toBe(0);
      noErrorLogged();
    });
  });
});
