import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import type { LightMyRequestResponse } from 'fastify';
import { getGlobalDispatcher, MockAgent, setGlobalDispatcher } from 'undici';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CONSUMER_KEY_PURPOSE } from '../../src/modules/oauth1/consumer.js';
import { oauth1Of } from '../../src/modules/oauth1/index.js';
import type { OAuth1Tables } from '../../src/modules/oauth1/tables.js';
import { withTables } from '../../src/storage/repositories/common.js';
import { SYSTEM_ACTOR } from '../../src/services/audit.js';
import { DIALECTS, json, userWithToken, type Harness } from '../helpers/harness.js';
import { CookieJar, hiddenFields, listeningHarness, signIn } from '../helpers/oauth2.js';
import { startUpstream } from '../helpers/upstream.js';

/** The provider's shortest access-token lifetime, so the consumer's clock can outrun it. */
const ACCESS_TTL_S = 3600;

/**
 * Everything a store holds, as raw bytes: the SQLite file and its WAL, or a pg_dump of the
 * test's schema (as test/integration/secrets.test.ts reads it).
 */
function rawStore(h: Harness): string {
  if (h.store.schema) {
    return execFileSync('pg_dump', ['--schema', h.store.schema, '--data-only', h.store.databaseUrl], { encoding: 'latin1', maxBuffer: 64 * 1024 * 1024 });
  }
  const file = h.store.databaseUrl.slice('sqlite:'.length);
  return [file, `${file}-wal`].filter(existsSync).map((f) => readFileSync(f).toString('latin1')).join('');
}

const local = (location: string) => {
  const url = new URL(location);
  return url.pathname + url.search;
};

/**
 * applinks as an OAuth 1.0a consumer of another applinks: two listening instances, B linked to
 * A. B registers with A by A fetching B's consumer-info (auto-configure), then calls A's host
 * through A's gateway 3-legged (after the login dance), 2-legged and 2-legged with
 * impersonation, and recovers when A revokes its token.
 */
describe.each(DIALECTS)('our OAuth 1.0a consumer against our provider on %s', (dialect) => {
  let provider: Harness;
  let consumer: Harness;
  let providerBase: string;
  let consumerBase: string;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let linkAtProvider: string;
  let linkAtConsumer: string;
  beforeEach(async () => {
    upstream = await startUpstream();
    ({ h: provider, base: providerBase } = await listeningHarness(dialect, { upstreamUrl: upstream.url, oauth1AccessTokenTtlSeconds: ACCESS_TTL_S, accessLog: true }));
    ({ h: consumer, base: consumerBase } = await listeningHarness(dialect));
    for (const h of [provider, consumer]) {
      await userWithToken(h, 'alice', { password: 'alice-password' });
      await userWithToken(h, 'bob', { password: 'bob-password' });
    }
    // At A: a link to B, whose consumer is registered from B's consumer-info document.
    const atA = json<{ id: string }>(await provider.inject({ method: 'POST', url: '/api/v1/links', headers: { authorization: provider.adminBasic }, payload: { name: 'Consumer B', url: consumerBase, applicationType: 'applinks' } }));
    linkAtProvider = atA.id;
    const configured = await provider.inject({
      method: 'POST',
      url: `/api/v1/links/${atA.id}/incoming/oauth1/auto-configure`,
      headers: { authorization: provider.adminBasic },
      payload: { allow2LO: true, executeAs: 'bob', allow2LOImpersonation: true },
    });
    expect(configured.statusCode, configured.body).toBe(200);
    const identity = json<{ consumerKey: string; publicKey: string }>(await consumer.inject({ url: '/api/v1/oauth1/consumer', headers: { authorization: consumer.adminBasic } }));
    const incoming = json<{ incoming: Array<{ config: Record<string, unknown>; warnings: string[] }> }>(configured).incoming[0]!;
    expect(incoming.config).toMatchObject({ consumerKey: identity.consumerKey, name: 'applinks', publicKey: identity.publicKey, allow3LO: true, allow2LO: true, executeAs: 'bob', allow2LOImpersonation: true });
    expect(incoming.warnings.length).toBeGreaterThan(0);
    // At B: a link to A with the three outgoing types.
    const atB = await consumer.inject({
      method: 'POST',
      url: '/api/v1/links',
      headers: { authorization: consumer.adminBasic },
      payload: { name: 'Provider A', url: providerBase, applicationType: 'applinks', outgoing: { oauth1: {}, 'oauth1-2lo': {}, 'oauth1-2lo-impersonation': {} } },
    });
    expect(atB.statusCode, atB.body).toBe(201);
    linkAtConsumer = json<{ id: string }>(atB).id;
    expect(json(atB)).toMatchObject({ primaryOutgoingType: 'oauth1-2lo-impersonation' });
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    await consumer.close();
    await provider.close();
    await upstream.close();
  });

  /** What B keeps for its link to A, per table: the users' tokens and the dances in progress. */
  const kept = async (table: 'oauth1_outgoing_tokens' | 'oauth1_outgoing_requests') =>
    withTables<OAuth1Tables>(consumer.services.store.db).selectFrom(table).select('user_id').where('link_id', '=', linkAtConsumer).execute();

  /** Runs `work` with A's access-token endpoint answering as `fail` says, seen from B's outgoing calls. */
  async function withAccessTokenEndpoint<T>(fail: (i: ReturnType<MockAgent['get']>) => void, work: () => Promise<T>): Promise<T> {
    const previous = getGlobalDispatcher();
    const agent = new MockAgent();
    agent.enableNetConnect();
    fail(agent.get(providerBase));
    setGlobalDispatcher(agent);
    try {
      return await work();
    } finally {
      setGlobalDispatcher(previous);
      await agent.close();
    }
  }

  const call = (asUser: string | null, type?: string) => consumer.services.outgoing.request('Provider A', { url: '/rest/api/2/myself', asUser, ...(type ? { type } : {}) });

  /** The user's browser: signed in at both, following the dance's redirects between them. */
  async function loginDance(username: string): Promise<LightMyRequestResponse> {
    const atB = await signIn(consumer, username, `${username}-password`);
    const atA = await signIn(provider, username, `${username}-password`);
    const start = await consumer.inject({ url: `/plugins/servlet/applinks/oauth/login-dance/authorize?applicationLinkID=${linkAtConsumer}&redirect=/applinks/account`, headers: { cookie: atB.header } });
    expect(start.statusCode, start.body).toBe(303);
    expect(String(start.headers.location).startsWith(`${providerBase}/plugins/servlet/oauth/authorize?oauth_token=`)).toBe(true);
    const page = await provider.inject({ url: local(String(start.headers.location)), headers: { cookie: atA.header } });
    expect(page.statusCode, page.body).toBe(200);
    expect(page.body).toContain('Allow applinks to act for you?');
    atA.take(page);
    const form = hiddenFields(page.body);
    form.set('approve', 'Allow');
    const decided = await provider.inject({ method: 'POST', url: '/plugins/servlet/oauth/authorize', headers: { cookie: atA.header, 'content-type': 'application/x-www-form-urlencoded' }, payload: form.toString() });
    expect(decided.statusCode).toBe(303);
    const back = String(decided.headers.location);
    expect(back.startsWith(`${consumerBase}/plugins/servlet/applinks/oauth/login-dance/access?applicationLinkID=${linkAtConsumer}&oauth_token=`)).toBe(true);
    return consumer.inject({ url: local(back), headers: { cookie: atB.header } });
  }

  it('asks for the dance, runs it, then calls 3-legged as the user through the provider’s gateway', async () => {
    const before = await call('alice', 'oauth1');
    expect(before).toMatchObject({ kind: 'authorization-required', authType: 'oauth1' });
    expect(before.kind === 'authorization-required' && before.authorizationUrl).toBe(`${consumerBase}/plugins/servlet/applinks/oauth/login-dance/authorize?applicationLinkID=${linkAtConsumer}`);

    const finished = await loginDance('alice');
    expect(finished.statusCode, finished.body).toBe(303);
    expect(finished.headers.location).toBe('/applinks/account');

    const result = await call('alice', 'oauth1');
    expect(result.kind).toBe('response');
    if (result.kind !== 'response') return;
    expect(result.status, result.body.toString()).toBe(200);
    expect(JSON.parse(result.body.toString())).toMatchObject({ name: 'alice' });
    expect(upstream.seen.at(-1)!.headers['x-applinks-auth']).toBe('oauth1');
    expect(upstream.seen.at(-1)!.headers['x-applinks-link']).toBe(linkAtProvider);
    // Bob has not authorized: his call still asks for the dance.
    expect((await call('bob', 'oauth1')).kind).toBe('authorization-required');
    // What B holds for alice is listed on her side as authorized; carol, who never authorized, sees the link to authorize.
    type Outgoing = { links: Array<{ linkId: string; authorized: boolean; authorizedAt: string | null; authorizationUrl: string }> };
    const outgoingOf = async (bearer: string) => json<Outgoing>(await consumer.inject({ url: '/api/v1/me/oauth1/outgoing', headers: { authorization: bearer } }));
    const authorizeAt = `${consumerBase}/plugins/servlet/applinks/oauth/login-dance/authorize?applicationLinkID=${linkAtConsumer}`;
    const alicesToken = await consumer.services.apiTokens.create((await consumer.services.users.findByUsername('alice'))!.id, { name: 'outgoing list', expiresAt: null }, SYSTEM_ACTOR);
    expect((await outgoingOf(`Bearer ${alicesToken.token}`)).links).toEqual([{ linkId: linkAtConsumer, linkName: 'Provider A', authorized: true, authorizedAt: expect.any(String), authorizationUrl: authorizeAt }]);
    expect((await outgoingOf((await userWithToken(consumer, 'carol')).bearer)).links).toEqual([{ linkId: linkAtConsumer, linkName: 'Provider A', authorized: false, authorizedAt: null, authorizationUrl: authorizeAt }]);

    // A revokes: B learns it from the problem, forgets the token and asks for the dance again.
    const alice = (await provider.services.users.findByUsername('alice'))!;
    await provider.services.authorizations.revoke(alice.id, `oauth1:${linkAtProvider}`, SYSTEM_ACTOR);
    expect(await call('alice', 'oauth1')).toMatchObject({ kind: 'authorization-required' });
    expect(await oauth1Of(consumer.services).consumer.heldFor(alice.id)).toEqual([]);
  });

  it('keeps its own private key and the users’ tokens from the remote sealed at rest', async () => {
    // The credentials A issues to B, as they travel: B must keep them only sealed.
    const dancer = oauth1Of(consumer.services).consumer as unknown as { exchange: (...args: unknown[]) => Promise<{ token: string; secret: string; sessionHandle: string | null }> };
    const exchange = dancer.exchange.bind(dancer);
    const obtained: Array<{ token: string; secret: string; sessionHandle: string | null }> = [];
    vi.spyOn(dancer, 'exchange').mockImplementation(async (...args) => {
      const credentials = await exchange(...args);
      obtained.push(credentials);
      return credentials;
    });
    expect((await loginDance('alice')).statusCode).toBe(303);
    expect(await call('alice', 'oauth1')).toMatchObject({ kind: 'response', status: 200 });
    expect(obtained).toHaveLength(1);
    const { token, secret, sessionHandle } = obtained[0]!;
    expect(secret.length).toBeGreaterThanOrEqual(16);

    // B's private key, in every form it could have been written in: PEM (with its line breaks, as
    // pg_dump escapes them, or without), DER, and its private JWK members. (Not PEM line by line: a line within the modulus
    // is public, and shows in the public JWK stored beside it.)
    const { record, privateKey } = await consumer.services.keys.activeKey(CONSUMER_KEY_PURPOSE, 'RS256');
    const forms: string[] = [];
    for (const type of ['pkcs8', 'pkcs1'] as const) {
      const pem = privateKey.export({ format: 'pem', type }).toString();
      forms.push(pem, pem.replaceAll('\n', '\\n'), pem.trim().split('\n').slice(1, -1).join(''), privateKey.export({ format: 'der', type }).toString('latin1'));
    }
    const jwk = privateKey.export({ format: 'jwk' });
    for (const member of [jwk.d, jwk.p, jwk.q, jwk.dp, jwk.dq, jwk.qi]) forms.push(member!, Buffer.from(member!, 'base64url').toString('base64').replace(/=+$/, ''));

    const raw = rawStore(consumer);
    // The scan sees the rows: the sealed key and the sealed token secret are there as written.
    const stored = await withTables<OAuth1Tables>(consumer.services.store.db).selectFrom('oauth1_outgoing_tokens').select('secret_sealed').where('link_id', '=', linkAtConsumer).executeTakeFirstOrThrow();
    expect(raw).toContain(stored.secret_sealed);
    expect(raw).toContain(record.privateSealed);
    for (const form of forms) expect(raw.includes(form), 'the private key in clear').toBe(false);
    for (const value of [secret, token, sessionHandle!]) expect(raw.includes(value), 'an outgoing token credential in clear').toBe(false);
  });

  it('calls 2-legged as the configured user, and with impersonation as the user it names', async () => {
    const twoLegged = await call(null, 'oauth1-2lo');
    expect(twoLegged.kind === 'response' && twoLegged.status).toBe(200);
    expect(upstream.seen.at(-1)!.headers).toMatchObject({ 'x-applinks-user': 'bob', 'x-applinks-auth': 'oauth1-2lo' });

    // The primary type (highest weight): impersonation, acting as the caller's user.
    const impersonated = await call('alice');
    expect(impersonated).toMatchObject({ kind: 'response', authType: 'oauth1-2lo-impersonation', status: 200 });
    expect(upstream.seen.at(-1)!.headers).toMatchObject({ 'x-applinks-user': 'alice', 'x-applinks-auth': 'oauth1-2lo-impersonation' });
    // Signed in the query as Atlassian's consumer does; the provider's gateway keeps it from its host.
    expect(upstream.seen.at(-1)!.url).toBe('/rest/api/2/myself');

    // For no user: impersonation is never sent without the user it names (it would reach the
    // remote as plain 2-legged, as its "execute as" user), and the primary type is the heaviest
    // one that signs without a user.
    await expect(call(null, 'oauth1-2lo-impersonation')).rejects.toMatchObject({ code: 'validation_failed', field: 'asUser' });
    const seen = upstream.seen.length;
    const forNobody = await call(null);
    expect(forNobody).toMatchObject({ kind: 'response', authType: 'oauth1-2lo', status: 200 });
    expect(upstream.seen.length).toBe(seen + 1);
    expect(upstream.seen.at(-1)!.headers).toMatchObject({ 'x-applinks-user': 'bob', 'x-applinks-auth': 'oauth1-2lo' });

    // A user the provider does not have: refused there, reported here as the remote's answer.
    await userWithToken(consumer, 'dave');
    const unknown = await call('dave');
    expect(unknown.kind === 'response' && unknown.status).toBe(401);
  });

  it('refuses to start a dance for a link without outgoing 3-legged OAuth, and a callback without one in progress', async () => {
    const jar: CookieJar = await signIn(consumer, 'alice', 'alice-password');
    const other = json<{ id: string }>(await consumer.inject({ method: 'POST', url: '/api/v1/links', headers: { authorization: consumer.adminBasic }, payload: { name: 'Other', url: providerBase } }));
    const start = await consumer.inject({ url: `/plugins/servlet/applinks/oauth/login-dance/authorize?applicationLinkID=${other.id}`, headers: { cookie: jar.header } });
    expect(start.statusCode).toBe(404);
    expect(start.body).toContain('does not use 3-legged OAuth');
    const stray = await consumer.inject({ url: `/plugins/servlet/applinks/oauth/login-dance/access?applicationLinkID=${linkAtConsumer}&oauth_token=x&oauth_verifier=y`, headers: { cookie: jar.header } });
    expect(stray.statusCode).toBe(401);
    expect(stray.body).toContain('no authorization in progress');
    const anonymous = await consumer.inject({ url: `/plugins/servlet/applinks/oauth/login-dance/authorize?applicationLinkID=${linkAtConsumer}` });
    expect(anonymous.statusCode).toBe(303);
    expect(String(anonymous.headers.location)).toMatch(/^\/applinks\/login\?next=/);
  });

  // Another instance deletes the link or the user while the remote asks for consent: the token
  // the remote then issues has nobody to belong to.
  it.each(['user', 'link'] as const)('stores nothing, and answers a page, when the %s is deleted during the access-token exchange', async (what) => {
    const alice = (await consumer.services.users.findByUsername('alice'))!;
    const dancer = oauth1Of(consumer.services).consumer as unknown as { exchange: (...args: unknown[]) => Promise<unknown> };
    const exchange = dancer.exchange.bind(dancer);
    vi.spyOn(dancer, 'exchange').mockImplementation(async (...args) => {
      const credentials = await exchange(...args);
      // Through the store, as another instance would: this instance's caches are not told.
      if (what === 'user') expect(await consumer.services.store.users.delete(alice.id)).toBe(true);
      else expect(await consumer.services.store.links.delete(linkAtConsumer)).toBe(true);
      return credentials;
    });
    const finished = await loginDance('alice');
    expect(finished.statusCode, finished.body).toBe(what === 'user' ? 401 : 404);
    expect(finished.headers.location).toBeUndefined();
    expect(finished.body).toContain('nothing was stored');
    expect(await kept('oauth1_outgoing_tokens')).toEqual([]);
    const audited = await withTables<OAuth1Tables>(consumer.services.store.db).selectFrom('audit_log').select('action').where('action', '=', 'oauth1.outgoing.authorize').execute();
    expect(audited).toEqual([]);
    expect(consumer.logs.filter((l) => (JSON.parse(l) as { level: number }).level >= 50)).toEqual([]);
  });

  it('keeps the user’s token when a renewal fails for a passing reason, and renews it once the remote answers again', async () => {
    expect((await loginDance('alice')).statusCode).toBe(303);
    const alice = (await consumer.services.users.findByUsername('alice'))!;
    consumer.clock.advance(ACCESS_TTL_S * 1000 + 1000);
    const accessToken = { path: '/plugins/servlet/oauth/access-token', method: 'POST' };

    // A remote error and a dropped connection are no answer about the token: it stays, and the caller hears 502.
    const unavailable = withAccessTokenEndpoint((a) => a.intercept(accessToken).reply(503, 'Service Unavailable'), () => call('alice', 'oauth1'));
    await expect(unavailable).rejects.toMatchObject({ code: 'upstream_unavailable', status: 502 });
    const dropped = withAccessTokenEndpoint((a) => a.intercept(accessToken).replyWithError(new Error('socket hang up')), () => call('alice', 'oauth1'));
    await expect(dropped).rejects.toMatchObject({ code: 'upstream_unavailable' });
    expect(await oauth1Of(consumer.services).consumer.heldFor(alice.id)).toHaveLength(1);

    const renewed = await call('alice', 'oauth1');
    expect(renewed).toMatchObject({ kind: 'response', status: 200 });
    expect(upstream.seen.at(-1)!.headers['x-applinks-user']).toBe('alice');
  });

  it('renews an expired token once for concurrent calls, leaving one stored token that A still honours', async () => {
    expect((await loginDance('alice')).statusCode).toBe(303);
    const alice = (await consumer.services.users.findByUsername('alice'))!;
    consumer.clock.advance(ACCESS_TTL_S * 1000 + 1000);
    const stored = oauth1Of(consumer.services).consumer.repo;
    const expired = (await stored.findOutgoing(linkAtConsumer, alice.id))!;
    const renewalsAtA = () => provider.logs.filter((l) => l.includes('"url":"/plugins/servlet/oauth/access-token"') && l.includes('"request completed"')).length;
    const before = renewalsAtA();

    const results = await Promise.all(Array.from({ length: 4 }, () => call('alice', 'oauth1')));
    expect(results.map((r) => (r.kind === 'response' ? r.status : r.kind))).toEqual([200, 200, 200, 200]);
    expect(renewalsAtA() - before).toBe(1);
    expect(await oauth1Of(consumer.services).consumer.heldFor(alice.id)).toHaveLength(1);
    // A renewed the token once: one live token there, the one B keeps.
    expect(await oauth1Of(provider.services).consumer.repo.countLive(linkAtProvider, provider.clock.now())).toBe(1);
    // A writer that read the expired token (another instance on this store) can no longer delete or overwrite the new one.
    expect(await stored.deleteOutgoingIf(expired)).toBe(false);
    expect(await stored.replaceOutgoing(expired, expired)).toBe(false);

    const after = await call('alice', 'oauth1');
    expect(after).toMatchObject({ kind: 'response', status: 200 });
  });

  it('forgets the users’ tokens and dances in progress when the outgoing configuration goes or the link moves', async () => {
    const admin = { authorization: consumer.adminBasic };
    const alice = (await consumer.services.users.findByUsername('alice'))!;
    const held = () => oauth1Of(consumer.services).consumer.heldFor(alice.id);
    const bobStarts = async () => {
      const jar = await signIn(consumer, 'bob', 'bob-password');
      const start = await consumer.inject({ url: `/plugins/servlet/applinks/oauth/login-dance/authorize?applicationLinkID=${linkAtConsumer}`, headers: { cookie: jar.header } });
      expect(start.statusCode, start.body).toBe(303);
    };

    // Removing the outgoing 3-legged configuration.
    expect((await loginDance('alice')).statusCode).toBe(303);
    await bobStarts();
    expect(await kept('oauth1_outgoing_tokens')).toHaveLength(1);
    expect(await kept('oauth1_outgoing_requests')).toHaveLength(1);
    // Another type going leaves them alone.
    expect((await consumer.inject({ method: 'DELETE', url: `/api/v1/links/${linkAtConsumer}/outgoing/oauth1-2lo`, headers: admin })).statusCode).toBe(200);
    expect(await held()).toHaveLength(1);
    const removed = await consumer.inject({ method: 'DELETE', url: `/api/v1/links/${linkAtConsumer}/outgoing/oauth1`, headers: admin });
    expect(removed.statusCode, removed.body).toBe(200);
    expect(await kept('oauth1_outgoing_tokens')).toEqual([]);
    expect(await kept('oauth1_outgoing_requests')).toEqual([]);

    // Changing the configuration: the same endpoints keep the tokens, a token endpoint on another host does not.
    const putOutgoing = (payload: Record<string, unknown>) => consumer.inject({ method: 'PUT', url: `/api/v1/links/${linkAtConsumer}/outgoing/oauth1`, headers: admin, payload });
    expect((await putOutgoing({})).statusCode).toBe(200);
    expect((await loginDance('alice')).statusCode).toBe(303);
    expect((await putOutgoing({ accessTokenUrl: '/plugins/servlet/oauth/access-token' })).statusCode).toBe(200);
    expect(await held()).toHaveLength(1);
    expect((await putOutgoing({ accessTokenUrl: 'https://elsewhere.example/plugins/servlet/oauth/access-token' })).statusCode).toBe(200);
    expect(await kept('oauth1_outgoing_tokens')).toEqual([]);

    // Re-pointing the link: the same URL written differently keeps what users authorized, a new URL does not.
    expect((await putOutgoing({})).statusCode).toBe(200);
    expect((await loginDance('alice')).statusCode).toBe(303);
    await bobStarts();
    expect((await consumer.inject({ method: 'PATCH', url: `/api/v1/links/${linkAtConsumer}`, headers: admin, payload: { name: 'Provider A', url: `${providerBase}/` } })).statusCode).toBe(200);
    expect(await held()).toHaveLength(1);
    const moved = await consumer.inject({ method: 'PATCH', url: `/api/v1/links/${linkAtConsumer}`, headers: admin, payload: { url: upstream.url } });
    expect(moved.statusCode, moved.body).toBe(200);
    expect(await kept('oauth1_outgoing_tokens')).toEqual([]);
    expect(await kept('oauth1_outgoing_requests')).toEqual([]);
    const seen = upstream.seen.length;
    expect(await call('alice', 'oauth1')).toMatchObject({ kind: 'authorization-required' });
    expect(upstream.seen.length).toBe(seen);

    // The audit log says what went with each change.
    const audit = json<{ entries: Array<{ action: string; details: Record<string, unknown> }> }>(await consumer.inject({ url: '/api/v1/audit', headers: admin }));
    expect(audit.entries.find((e) => e.action === 'link.outgoing.delete' && e.details.type === 'oauth1')?.details).toMatchObject({ forgotten: { oauth1OutgoingTokens: 1, oauth1PendingDances: 1 } });
    // (The manual clock stands still: entries of one millisecond have no order, so pick by content.)
    expect(audit.entries.find((e) => e.action === 'link.update' && (e.details.fields as string[]).join() === 'url')?.details).toMatchObject({ forgotten: { oauth1OutgoingTokens: 1, oauth1PendingDances: 1 } });
    expect(audit.entries.find((e) => e.action === 'link.update' && (e.details.fields as string[]).join() === 'name,url')?.details.forgotten).toBeUndefined();
  });
});
