import type { LightMyRequestResponse } from 'fastify';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { oauth2Of } from '../../src/modules/oauth2/index.js';
import { createHarness, DIALECTS, json, userWithToken, type Harness } from '../helpers/harness.js';
import {
  authorizeUrl,
  basicClient,
  CookieJar,
  decide,
  exchange,
  form,
  INTROSPECT,
  obtainCode,
  pkce,
  post,
  REDIRECT,
  redirectParams,
  registerClient,
  REVOKE,
  signIn,
  TOKEN,
  type RegisteredClient,
  type Tokens,
} from '../helpers/oauth2.js';

/**
 * Every error of the issue (RFC 6749 §4.1.2.1 and §5.2, RFC 6750 §3, RFC 7636 §4.4.1/§4.6),
 * provoked at least once, as a table: the request, the status, the `error`, and where it
 * applies the WWW-Authenticate challenge or the page instead of a redirect.
 */
describe.each(DIALECTS)('OAuth 2.0 errors on %s', (dialect) => {
  let h: Harness;
  let jar: CookieJar;
  let confidential: RegisteredClient;
  let other: RegisteredClient;
  let publicClient: RegisteredClient;
  let twoRedirects: RegisteredClient;
  let service: RegisteredClient;

  beforeAll(async () => {
    h = await createHarness(dialect);
    await userWithToken(h, 'alice');
    await userWithToken(h, 'robot');
    confidential = await registerClient(h, { name: 'Confidential', scopes: ['READ', 'WRITE'] });
    other = await registerClient(h, { name: 'Other' });
    publicClient = await registerClient(h, { name: 'Native', confidential: false, redirectUris: ['http://127.0.0.1/cb'] });
    twoRedirects = await registerClient(h, { name: 'Two', redirectUris: [REDIRECT, 'https://client.example/other'] });
    service = await registerClient(h, { name: 'Robot', serviceAccount: 'robot', redirectUris: [], scopes: ['READ'] });
    jar = await signIn(h, 'alice', 'alice-password');
  });
  afterAll(async () => {
    await h.close();
  });

  const get = (url: string) => h.inject({ url, headers: { cookie: jar.header } });
  const authz = (params: Record<string, string | undefined>) =>
    get(authorizeUrl({ response_type: 'code', client_id: confidential.clientId, redirect_uri: REDIRECT, state: 'st', ...params }));

  type Expect = { page: string } | { redirect: string; state?: string | null } | { status: number; error: string; challenge?: RegExp; resource?: true };
  interface Row {
    name: string;
    send: () => Promise<LightMyRequestResponse>;
    expect: Expect;
  }

  const basicFor = (c: RegisteredClient, secret = c.clientSecret ?? '') => `Basic ${Buffer.from(`${c.clientId}:${secret}`).toString('base64')}`;
  const tokenForm = (params: Record<string, string | undefined>, headers: Record<string, string> = {}) =>
    h.inject({ method: 'POST', url: TOKEN, headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, payload: form(params) });
  const code = () => obtainCode(h, jar, confidential);
  const BASIC_CHALLENGE = /^Basic realm="applinks"/;
  const BEARER_INVALID = /^Bearer realm="applinks", error="invalid_token", error_description="[^"]+"$/;

  const rows: Row[] = [
    // ---- authorization endpoint: before the redirect URI is validated, a page and never a redirect
    { name: 'authorize without client_id', send: () => get(authorizeUrl({ response_type: 'code', redirect_uri: REDIRECT })), expect: { page: 'client_id parameter is missing' } },
    { name: 'authorize with an unknown client', send: () => authz({ client_id: 'no-such-client-id' }), expect: { page: 'No application is registered' } },
    { name: 'redirect URI that differs by one character', send: () => authz({ redirect_uri: 'https://client.example/callbacK' }), expect: { page: 'not registered' } },
    { name: 'redirect URI with an extra trailing slash', send: () => authz({ redirect_uri: `${REDIRECT}/` }), expect: { page: 'not registered' } },
    { name: 'redirect URI left out when several are registered', send: () => authz({ client_id: twoRedirects.clientId, redirect_uri: undefined }), expect: { page: 'several registered' } },
    { name: 'repeated client_id', send: () => get(`${authorizeUrl({ response_type: 'code', client_id: confidential.clientId })}&client_id=${other.clientId}`), expect: { page: 'repeated' } },
    {
      name: 'loopback redirect of another path',
      send: () => get(authorizeUrl({ response_type: 'code', client_id: publicClient.clientId, redirect_uri: 'http://127.0.0.1:5000/cb2' })),
      expect: { page: 'not registered' },
    },
    // ---- authorization endpoint: errors redirected to the client with state and iss (§4.1.2.1)
    { name: 'missing response_type', send: () => authz({ response_type: undefined }), expect: { redirect: 'invalid_request' } },
    { name: 'implicit grant (response_type=token)', send: () => authz({ response_type: 'token' }), expect: { redirect: 'unsupported_response_type' } },
    { name: 'PKCE plain', send: () => authz({ code_challenge: pkce().verifier, code_challenge_method: 'plain' }), expect: { redirect: 'invalid_request' } },
    { name: 'PKCE challenge without method (means plain)', send: () => authz({ code_challenge: pkce().challenge }), expect: { redirect: 'invalid_request' } },
    {
      name: 'public client without PKCE',
      send: () => get(authorizeUrl({ response_type: 'code', client_id: publicClient.clientId, state: 'st' })),
      expect: { redirect: 'invalid_request' },
    },
    { name: 'unknown scope', send: () => authz({ scope: 'READ delete_everything' }), expect: { redirect: 'invalid_scope' } },
    { name: 'scope beyond the client registration', send: () => authz({ scope: 'ADMIN' }), expect: { redirect: 'invalid_scope' } },
    { name: 'repeated state (not echoed)', send: () => get(`${authorizeUrl({ response_type: 'code', client_id: confidential.clientId, state: 'a' })}&state=b`), expect: { redirect: 'invalid_request', state: null } },
    { name: 'user denies', send: async () => decide(h, jar, await authz({ prompt: 'consent' }), 'deny'), expect: { redirect: 'access_denied' } },
    {
      name: 'consent decision without CSRF token',
      send: () => h.inject({ method: 'POST', url: '/rest/oauth2/latest/authorize', headers: { cookie: jar.header, 'content-type': 'application/x-www-form-urlencoded' }, payload: form({ client_id: confidential.clientId, response_type: 'code', decision: 'allow' }) }),
      expect: { page: 'CSRF' },
    },
    // ---- token endpoint: client authentication (§2.3, §5.2)
    { name: 'no client authentication', send: () => tokenForm({ grant_type: 'client_credentials' }), expect: { status: 401, error: 'invalid_client', challenge: BASIC_CHALLENGE } },
    { name: 'wrong client secret (Basic)', send: () => tokenForm({ grant_type: 'client_credentials' }, { authorization: basicFor(service, 'alcs_wrong') }), expect: { status: 401, error: 'invalid_client', challenge: BASIC_CHALLENGE } },
    { name: 'wrong client secret (post)', send: () => tokenForm({ grant_type: 'client_credentials', client_id: service.clientId, client_secret: 'nope' }), expect: { status: 401, error: 'invalid_client', challenge: BASIC_CHALLENGE } },
    { name: 'unknown client', send: () => tokenForm({ grant_type: 'client_credentials' }, { authorization: basicFor({ ...service, clientId: 'unknown-client' }) }), expect: { status: 401, error: 'invalid_client' } },
    { name: 'confidential client without its secret', send: () => tokenForm({ grant_type: 'client_credentials', client_id: service.clientId }), expect: { status: 401, error: 'invalid_client' } },
    { name: 'public client sending a secret', send: () => tokenForm({ grant_type: 'refresh_token', refresh_token: 'alrt_x', client_id: publicClient.clientId, client_secret: 'x' }), expect: { status: 401, error: 'invalid_client' } },
    {
      name: 'Basic and client_secret_post together',
      send: () => tokenForm({ grant_type: 'client_credentials', client_secret: service.clientSecret! }, { authorization: basicClient(service) }),
      expect: { status: 400, error: 'invalid_request' },
    },
    { name: 'malformed Basic credentials', send: () => tokenForm({ grant_type: 'client_credentials' }, { authorization: 'Basic %%%' }), expect: { status: 401, error: 'invalid_client' } },
    // ---- token endpoint: request and grant
    { name: 'missing grant_type', send: () => post(h, TOKEN, service, {}), expect: { status: 400, error: 'invalid_request' } },
    { name: 'token endpoint with GET', send: () => h.inject({ url: `${TOKEN}?grant_type=client_credentials`, headers: { authorization: basicClient(service) } }), expect: { status: 400, error: 'invalid_request' } },
    { name: 'password grant', send: () => post(h, TOKEN, service, { grant_type: 'password', username: 'alice', password: 'alice-password' }), expect: { status: 400, error: 'unsupported_grant_type' } },
    { name: 'implicit grant at the token endpoint', send: () => post(h, TOKEN, service, { grant_type: 'implicit' }), expect: { status: 400, error: 'unsupported_grant_type' } },
    {
      name: 'JSON body',
      send: () => h.inject({ method: 'POST', url: TOKEN, headers: { authorization: basicClient(service), 'content-type': 'application/json' }, payload: { grant_type: 'client_credentials' } }),
      expect: { status: 400, error: 'invalid_request' },
    },
    {
      name: 'text/plain body (no 415: RFC 6749 has none)',
      send: () => h.inject({ method: 'POST', url: TOKEN, headers: { authorization: basicClient(service), 'content-type': 'text/plain' }, payload: 'grant_type=client_credentials' }),
      expect: { status: 400, error: 'invalid_request' },
    },
    { name: 'client_id with a NUL byte', send: () => tokenForm({ grant_type: 'client_credentials', client_id: 'robot\u0000', client_secret: 'x' }), expect: { status: 401, error: 'invalid_client' } },
    {
      name: 'repeated parameter',
      send: () => h.inject({ method: 'POST', url: TOKEN, headers: { authorization: basicClient(service), 'content-type': 'application/x-www-form-urlencoded' }, payload: 'grant_type=client_credentials&scope=READ&scope=READ' }),
      expect: { status: 400, error: 'invalid_request' },
    },
    { name: 'client_credentials for a client that is not a service account', send: () => post(h, TOKEN, confidential, { grant_type: 'client_credentials' }), expect: { status: 400, error: 'unauthorized_client' } },
    { name: 'client_credentials beyond the registered scopes', send: () => post(h, TOKEN, service, { grant_type: 'client_credentials', scope: 'WRITE' }), expect: { status: 400, error: 'invalid_scope' } },
    { name: 'client_credentials with an unknown scope', send: () => post(h, TOKEN, service, { grant_type: 'client_credentials', scope: 'openid' }), expect: { status: 400, error: 'invalid_scope' } },
    { name: 'code missing', send: () => post(h, TOKEN, confidential, { grant_type: 'authorization_code' }), expect: { status: 400, error: 'invalid_request' } },
    { name: 'unknown code', send: () => post(h, TOKEN, confidential, { grant_type: 'authorization_code', code: 'alac_doesnotexist' }), expect: { status: 400, error: 'invalid_grant' } },
    {
      name: 'code of another client',
      send: async () => {
        const c = await code();
        return post(h, TOKEN, other, { grant_type: 'authorization_code', code: c.code, redirect_uri: REDIRECT, code_verifier: c.verifier });
      },
      expect: { status: 400, error: 'invalid_grant' },
    },
    {
      name: 'expired code',
      send: async () => {
        const c = await code();
        h.clock.advance(61_000);
        return post(h, TOKEN, confidential, { grant_type: 'authorization_code', code: c.code, redirect_uri: REDIRECT, code_verifier: c.verifier });
      },
      expect: { status: 400, error: 'invalid_grant' },
    },
    {
      name: 'redirect_uri missing at the token endpoint when the request had one',
      send: async () => {
        const c = await code();
        return post(h, TOKEN, confidential, { grant_type: 'authorization_code', code: c.code, code_verifier: c.verifier });
      },
      expect: { status: 400, error: 'invalid_request' },
    },
    {
      name: 'redirect_uri differing by one character at the token endpoint',
      send: async () => {
        const c = await code();
        return post(h, TOKEN, confidential, { grant_type: 'authorization_code', code: c.code, redirect_uri: `${REDIRECT}x`, code_verifier: c.verifier });
      },
      expect: { status: 400, error: 'invalid_grant' },
    },
    {
      name: 'missing PKCE verifier',
      send: async () => {
        const c = await code();
        return post(h, TOKEN, confidential, { grant_type: 'authorization_code', code: c.code, redirect_uri: REDIRECT });
      },
      expect: { status: 400, error: 'invalid_grant' },
    },
    {
      name: 'wrong PKCE verifier',
      send: async () => {
        const c = await code();
        return post(h, TOKEN, confidential, { grant_type: 'authorization_code', code: c.code, redirect_uri: REDIRECT, code_verifier: pkce().verifier });
      },
      expect: { status: 400, error: 'invalid_grant' },
    },
    {
      name: 'PKCE verifier for a code issued without a challenge',
      send: async () => {
        const res = await authz({ state: undefined });
        const c = redirectParams(res).get('code')!;
        return post(h, TOKEN, confidential, { grant_type: 'authorization_code', code: c, redirect_uri: REDIRECT, code_verifier: pkce().verifier });
      },
      expect: { status: 400, error: 'invalid_grant' },
    },
    {
      name: 'code reuse',
      send: async () => {
        const c = await code();
        await exchange(h, confidential, c);
        return post(h, TOKEN, confidential, { grant_type: 'authorization_code', code: c.code, redirect_uri: REDIRECT, code_verifier: c.verifier });
      },
      expect: { status: 400, error: 'invalid_grant' },
    },
    { name: 'unknown refresh token', send: () => post(h, TOKEN, confidential, { grant_type: 'refresh_token', refresh_token: 'alrt_nothing' }), expect: { status: 400, error: 'invalid_grant' } },
    {
      name: 'refresh token of another client',
      send: async () => post(h, TOKEN, other, { grant_type: 'refresh_token', refresh_token: (await exchange(h, confidential, await code())).refresh_token }),
      expect: { status: 400, error: 'invalid_grant' },
    },
    {
      name: 'refresh asking for more scope than granted',
      send: async () => post(h, TOKEN, confidential, { grant_type: 'refresh_token', refresh_token: (await exchange(h, confidential, await obtainCode(h, jar, confidential, { scope: 'READ' }))).refresh_token, scope: 'WRITE' }),
      expect: { status: 400, error: 'invalid_scope' },
    },
    {
      name: 'refresh with an unregistered redirect_uri',
      send: async () => post(h, TOKEN, confidential, { grant_type: 'refresh_token', refresh_token: (await exchange(h, confidential, await code())).refresh_token, redirect_uri: 'https://evil.example/cb' }),
      expect: { status: 400, error: 'invalid_grant' },
    },
    {
      name: 'refresh token reuse',
      send: async () => {
        const t = await exchange(h, confidential, await code());
        const r1 = json<Tokens>(await post(h, TOKEN, confidential, { grant_type: 'refresh_token', refresh_token: t.refresh_token }));
        await post(h, TOKEN, confidential, { grant_type: 'refresh_token', refresh_token: r1.refresh_token });
        return post(h, TOKEN, confidential, { grant_type: 'refresh_token', refresh_token: t.refresh_token });
      },
      expect: { status: 400, error: 'invalid_grant' },
    },
    // ---- revocation and introspection
    { name: 'revoke without token', send: () => post(h, REVOKE, confidential, {}), expect: { status: 400, error: 'invalid_request' } },
    {
      name: "revoke another client's token",
      send: async () => {
        const t = await exchange(h, confidential, await code());
        const res = await post(h, REVOKE, other, { token: t.refresh_token });
        // Refused, and nothing was revoked.
        expect((await h.inject({ url: '/api/thing', headers: { authorization: `Bearer ${t.access_token}` } })).statusCode).toBe(200);
        return res;
      },
      expect: { status: 400, error: 'unauthorized_client' },
    },
    { name: 'revoke with a wrong secret', send: () => h.inject({ method: 'POST', url: REVOKE, headers: { authorization: basicFor(confidential, 'bad'), 'content-type': 'application/x-www-form-urlencoded' }, payload: 'token=alat_x' }), expect: { status: 401, error: 'invalid_client', challenge: BASIC_CHALLENGE } },
    { name: 'introspect without authentication', send: () => h.inject({ method: 'POST', url: INTROSPECT, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'token=alat_x' }), expect: { status: 401, error: 'invalid_client' } },
    // ---- resource requests (RFC 6750 §3.1)
    { name: 'unknown access token', send: () => h.inject({ url: '/api/thing', headers: { authorization: 'Bearer alat_unknown' } }), expect: { status: 401, error: 'oauth2_invalid_token', challenge: BEARER_INVALID, resource: true } },
    // A token of nobody's format, even beside a signed-in browser's cookie, is an invalid token.
    { name: 'foreign bearer token', send: () => h.inject({ url: '/api/thing', headers: { authorization: 'bearer eyJhbGciOi.x.y', cookie: jar.header } }), expect: { status: 401, error: 'oauth2_invalid_token', challenge: BEARER_INVALID, resource: true } },
    {
      name: 'Bearer without a token',
      send: () => h.inject({ url: '/api/thing', headers: { authorization: 'Bearer ' } }),
      expect: { status: 400, error: 'oauth2_invalid_request', challenge: /^Bearer realm="applinks", error="invalid_request", error_description="[^"]+"$/, resource: true },
    },
    {
      name: 'expired access token',
      send: async () => {
        const t = await exchange(h, confidential, await code());
        h.clock.advance(3_601_000);
        return h.inject({ url: '/api/thing', headers: { authorization: `Bearer ${t.access_token}` } });
      },
      expect: { status: 401, error: 'oauth2_invalid_token', challenge: BEARER_INVALID, resource: true },
    },
    {
      name: 'READ token attempting a POST',
      send: async () => {
        const t = await exchange(h, confidential, await obtainCode(h, jar, confidential, { scope: 'READ' }));
        return h.inject({ method: 'POST', url: '/api/thing', headers: { authorization: `Bearer ${t.access_token}` }, payload: { x: 1 } });
      },
      expect: { status: 403, error: 'oauth2_insufficient_scope', challenge: /^Bearer realm="applinks", error="insufficient_scope", .*scope="WRITE"$/, resource: true },
    },
  ];

  it.each(rows.map((r) => [r.name, r] as const))('%s', async (_name, row) => {
    const res = await row.send();
    const e = row.expect;
    if ('page' in e) {
      expect(res.headers.location, 'never redirected').toBeUndefined();
      expect(res.statusCode).toBeGreaterThanOrEqual(400);
      expect(res.headers['content-type']).toMatch(/text\/html/);
      expect(res.body).toContain(e.page);
    } else if ('redirect' in e) {
      const params = redirectParams(res);
      expect(String(res.headers.location).split('?')[0]).toMatch(/^(https:\/\/client\.example\/callback|http:\/\/127\.0\.0\.1\/cb)$/);
      expect(params.get('error')).toBe(e.redirect);
      expect(params.get('error_description')).toBeTruthy();
      expect(params.get('iss')).toBe('http://applinks.test');
      expect(params.get('state')).toBe(e.state === undefined ? 'st' : e.state);
      expect(params.get('code')).toBeNull();
    } else {
      expect(res.statusCode, res.body).toBe(e.status);
      const body = json(res);
      expect(body.error).toBe(e.error);
      if (!e.resource) {
        expect(res.headers['cache-control']).toBe('no-store');
        expect(typeof body.error_description).toBe('string');
        expect(String(body.error_description)).toMatch(/^[\x20-\x21\x23-\x5b\x5d-\x7e]*$/);
      }
      if (e.challenge) expect(String(res.headers['www-authenticate'])).toMatch(e.challenge);
      // RFC 6749 §5.2: invalid_client answers 401 with a challenge.
      if (e.status === 401) expect(res.headers['www-authenticate']).toBeDefined();
    }
  });

  it('shows a page, stores nothing, for a client whose stored redirect URI is not a URI (non-ASCII, from before registration refused it)', async () => {
    const odd = await registerClient(h, { name: 'Odd' });
    const auth = (await h.services.store.links.findAuth(odd.linkId, 'incoming', 'oauth2'))!;
    await h.services.store.links.upsertAuth({ ...auth, config: { ...auth.config, redirectUris: ['https://client.example/cb/€'] }, updatedAt: auth.updatedAt + 1 });
    h.services.revocations.link(odd.linkId);
    const codes = await sql<{ n: number | string }>`select count(*) as n from oauth2_codes`.execute(h.services.store.db);
    for (const extra of [{}, { redirect_uri: 'https://client.example/cb/€' }]) {
      const { challenge } = pkce();
      const res = await h.inject({ url: authorizeUrl({ response_type: 'code', client_id: odd.clientId, state: 'st', code_challenge: challenge, code_challenge_method: 'S256', ...extra }), headers: { cookie: jar.header } });
      expect(res.statusCode, res.body).toBe(400);
      expect(res.headers.location).toBeUndefined();
      expect(res.body).toMatch(/not a valid URI/);
    }
    const after = await sql<{ n: number | string }>`select count(*) as n from oauth2_codes`.execute(h.services.store.db);
    expect(Number(after.rows[0]!.n)).toBe(Number(codes.rows[0]!.n));
    // And no new registration can store one.
    const res = await h.inject({ method: 'PATCH', url: `/api/v1/oauth2/clients/${odd.clientId}`, headers: { authorization: h.adminBasic }, payload: { redirectUris: ['https://client.example/cb/ü'] } });
    expect([res.statusCode, json(res).error]).toEqual([400, 'validation_failed']);
  });

  it('sends our own failure after the redirect URI is validated back as server_error, with state and iss, without our message', async () => {
    const oauth = oauth2Of(h.services);
    const spy = vi.spyOn(oauth, 'issueCode').mockRejectedValueOnce(new Error('disk on fire'));
    try {
      const page = await authz({ prompt: 'consent' });
      const res = await decide(h, jar, page, 'allow');
      const params = redirectParams(res);
      expect(params.get('error')).toBe('server_error');
      expect(params.get('error_description')).toBeNull();
      expect(params.get('state')).toBe('st');
      expect(params.get('iss')).toBe('http://applinks.test');
      expect(String(res.headers.location)).not.toContain('fire');
    } finally {
      spy.mockRestore();
    }
  });

  it('revokes what the first redemption issued when a code is presented again', async () => {
    const c = await code();
    const first = await exchange(h, confidential, c);
    expect((await h.inject({ url: '/x', headers: { authorization: `Bearer ${first.access_token}` } })).statusCode).toBe(200);
    const again = await post(h, TOKEN, confidential, { grant_type: 'authorization_code', code: c.code, redirect_uri: REDIRECT, code_verifier: c.verifier });
    expect(json(again).error).toBe('invalid_grant');
    expect((await h.inject({ url: '/x', headers: { authorization: `Bearer ${first.access_token}` } })).statusCode).toBe(401);
    expect((await post(h, TOKEN, confidential, { grant_type: 'refresh_token', refresh_token: first.refresh_token })).statusCode).toBe(400);
  });

  it('of N concurrent code redemptions, exactly one wins (and the replays revoke it)', async () => {
    const c = await code();
    const n = 12;
    const results = await Promise.all(
      Array.from({ length: n }, () => post(h, TOKEN, confidential, { grant_type: 'authorization_code', code: c.code, redirect_uri: REDIRECT, code_verifier: c.verifier })),
    );
    const winners = results.filter((r) => r.statusCode === 200);
    expect(winners).toHaveLength(1);
    expect(results.filter((r) => r.statusCode === 400 && json(r).error === 'invalid_grant')).toHaveLength(n - 1);
    const t = json<Tokens>(winners[0]!);
    expect((await h.inject({ url: '/x', headers: { authorization: `Bearer ${t.access_token}` } })).statusCode).toBe(401);
  });

  it('lets a client retry a refresh whose response it lost, any number of times while the successor is unused, and revokes the grant on reuse', async () => {
    const t0 = await exchange(h, confidential, await code());
    const refresh = (token: string | undefined) => post(h, TOKEN, confidential, { grant_type: 'refresh_token', refresh_token: token });
    let lost = json<Tokens>(await refresh(t0.refresh_token));
    // The response was lost, and again: each retry with the same token gets a replacement.
    let t1 = lost;
    for (let attempt = 1; attempt <= 3; attempt++) {
      const retry = await refresh(t0.refresh_token);
      expect(retry.statusCode, `retry ${attempt}: ${retry.body}`).toBe(200);
      t1 = json<Tokens>(retry);
      expect(t1.refresh_token).not.toBe(lost.refresh_token);
      // The lost successor was replaced: never more than one live successor.
      expect(json(await post(h, INTROSPECT, confidential, { token: lost.refresh_token }))).toEqual({ active: false });
      expect((await h.inject({ url: '/x', headers: { authorization: `Bearer ${lost.access_token}` } })).statusCode).toBe(401);
      expect(json(await post(h, INTROSPECT, confidential, { token: t1.refresh_token }))).toMatchObject({ active: true });
      lost = t1;
    }
    // Using the successor ends the previous token's retry window; presenting it now revokes the grant.
    const t2 = json<Tokens>(await refresh(t1.refresh_token));
    const reuse = await refresh(t0.refresh_token);
    expect(json(reuse).error).toBe('invalid_grant');
    for (const t of [t1.access_token, t2.access_token]) expect((await h.inject({ url: '/x', headers: { authorization: `Bearer ${t}` } })).statusCode).toBe(401);
    expect((await refresh(t2.refresh_token)).statusCode).toBe(400);
  });

  it('answers CORS for browser-based clients on the metadata, token and revocation endpoints, never on introspection', async () => {
    const origin = { origin: 'https://spa.example' };
    for (const [url, methods] of [
      [TOKEN, 'POST, OPTIONS'],
      [REVOKE, 'POST, OPTIONS'],
      ['/.well-known/oauth-authorization-server', 'GET, HEAD, OPTIONS'],
    ] as const) {
      const pre = await h.inject({ method: 'OPTIONS', url, headers: { ...origin, 'access-control-request-method': methods.split(',')[0]!, 'access-control-request-headers': 'content-type' } });
      expect([pre.statusCode, pre.headers['access-control-allow-origin'], pre.headers.allow, pre.headers['access-control-allow-methods']], url).toEqual([204, '*', methods, methods]);
      expect(String(pre.headers['access-control-allow-headers'])).toMatch(/Content-Type/);
      // No credentials mode: these endpoints never read cookies.
      expect(pre.headers['access-control-allow-credentials']).toBeUndefined();
    }
    expect((await h.inject({ url: '/.well-known/oauth-authorization-server', headers: origin })).headers['access-control-allow-origin']).toBe('*');
    // Successes and errors alike are readable by the page.
    const issued = await post(h, TOKEN, service, { grant_type: 'client_credentials' }, origin);
    expect([issued.statusCode, issued.headers['access-control-allow-origin']]).toEqual([200, '*']);
    const refused = await tokenForm({ grant_type: 'client_credentials' }, { ...origin, authorization: basicFor(service, 'wrong') });
    expect([refused.statusCode, refused.headers['access-control-allow-origin'], refused.headers['access-control-expose-headers']]).toEqual([401, '*', 'WWW-Authenticate']);
    const revoked = await post(h, REVOKE, service, { token: json<Tokens>(issued).access_token }, origin);
    expect([revoked.statusCode, revoked.headers['access-control-allow-origin']]).toEqual([200, '*']);
    // Introspection is server to server: OPTIONS says what it takes, with no CORS grant.
    const introspectPre = await h.inject({ method: 'OPTIONS', url: INTROSPECT, headers: { ...origin, 'access-control-request-method': 'POST' } });
    expect([introspectPre.statusCode, introspectPre.headers.allow, introspectPre.headers['access-control-allow-origin']]).toEqual([204, 'POST, OPTIONS', undefined]);
    const introspected = await post(h, INTROSPECT, confidential, { token: 'alat_nothing' }, origin);
    expect([introspected.statusCode, introspected.headers['access-control-allow-origin']]).toEqual([200, undefined]);
    // Other methods still get the RFC's error, with Allow.
    const get = await h.inject({ url: TOKEN });
    expect([get.statusCode, json(get).error, get.headers.allow]).toEqual([400, 'invalid_request', 'POST, OPTIONS']);
  });

  it('presenting a replaced successor revokes the grant', async () => {
    const t0 = await exchange(h, confidential, await code());
    const refresh = (token: string | undefined) => post(h, TOKEN, confidential, { grant_type: 'refresh_token', refresh_token: token });
    const lost = json<Tokens>(await refresh(t0.refresh_token));
    const retried = json<Tokens>(await refresh(t0.refresh_token));
    expect(json(await refresh(lost.refresh_token)).error).toBe('invalid_grant');
    expect((await refresh(retried.refresh_token)).statusCode).toBe(400);
  });

  it('leaves one live successor after concurrent refreshes with the same token', async () => {
    const t0 = await exchange(h, confidential, await code());
    const results = await Promise.all(Array.from({ length: 8 }, () => post(h, TOKEN, confidential, { grant_type: 'refresh_token', refresh_token: t0.refresh_token })));
    const issued = results.filter((r) => r.statusCode === 200).map((r) => json<Tokens>(r).refresh_token!);
    expect(issued.length).toBeGreaterThanOrEqual(1);
    for (const r of results.filter((x) => x.statusCode !== 200)) expect(json(r).error).toBe('invalid_grant');
    const live = [];
    for (const token of issued) if ((json(await post(h, INTROSPECT, confidential, { token })) as { active: boolean }).active) live.push(token);
    expect(live).toHaveLength(1);
  });
});
