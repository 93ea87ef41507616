import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHarness, DIALECTS, json, userWithToken, type Harness } from '../helpers/harness.js';
import {
  authorizeUrl,
  CookieJar,
  decide,
  exchange,
  hiddenFields,
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
  type Tokens,
} from '../helpers/oauth2.js';

describe.each(DIALECTS)('OAuth 2.0 authorization server on %s', (dialect) => {
  let h: Harness;
  beforeEach(async () => {
    h = await createHarness(dialect);
  });
  afterEach(async () => {
    await h.close();
  });

  it('publishes RFC 8414 metadata at the root and under the Data Center path', async () => {
    for (const url of ['/.well-known/oauth-authorization-server', '/rest/oauth2/latest/.well-known/oauth-authorization-server']) {
      const res = await h.inject({ url });
      expect(res.statusCode).toBe(200);
      expect(json(res)).toMatchObject({
        issuer: 'http://applinks.test',
        authorization_endpoint: 'http://applinks.test/rest/oauth2/latest/authorize',
        token_endpoint: 'http://applinks.test/rest/oauth2/latest/token',
        code_challenge_methods_supported: ['S256'],
        authorization_response_iss_parameter_supported: true,
      });
    }
    // Unknown paths under the owned prefix are ours, never the host's.
    expect((await h.inject({ url: '/rest/oauth2/latest/nothing' })).statusCode).toBe(404);
    // An issuer with a path has its metadata at the well-known path followed by it (RFC 8414 §3.1).
    const prefixed = await createHarness(dialect, { config: { baseUrl: 'https://apps.example.com/applinks' } });
    try {
      const res = await prefixed.inject({ url: '/.well-known/oauth-authorization-server/applinks' });
      expect(res.statusCode).toBe(200);
      expect(json(res)).toMatchObject({ issuer: 'https://apps.example.com/applinks', token_endpoint: 'https://apps.example.com/applinks/rest/oauth2/latest/token' });
    } finally {
      await prefixed.close();
    }
  });

  it('runs the code flow with PKCE and consent, then refresh, introspection, revocation and a bearer request', async () => {
    const client = await registerClient(h, { name: 'Acme Reports' });
    expect(client.clientSecret).toMatch(/^alcs_/);
    await userWithToken(h, 'alice');
    const { verifier, challenge } = pkce();
    const url = authorizeUrl({ response_type: 'code', client_id: client.clientId, redirect_uri: REDIRECT, scope: 'READ WRITE', state: 'xyz 1', code_challenge: challenge, code_challenge_method: 'S256' });

    // Not signed in: to the sign-in page, coming back to the same request.
    const anonymous = await h.inject({ url });
    expect(anonymous.statusCode).toBe(303);
    const next = new URL(String(anonymous.headers.location), 'http://x').searchParams.get('next')!;
    expect(new URL(next, 'http://x').searchParams.get('client_id')).toBe(client.clientId);

    const jar = await signIn(h, 'alice', 'alice-password');
    const consent = await h.inject({ url: next, headers: { cookie: jar.header } });
    expect(consent.statusCode).toBe(200);
    expect(consent.headers['x-frame-options']).toBe('DENY');
    expect(consent.body).toContain('Allow Acme Reports to act for you?');
    expect(consent.body).toContain('data-scope="READ"');
    expect(consent.body).toContain('data-scope="WRITE"');
    expect(consent.body).toContain('client.example');

    const allowed = await decide(h, jar, consent, 'allow');
    const back = redirectParams(allowed);
    expect(String(allowed.headers.location).startsWith(`${REDIRECT}?`)).toBe(true);
    expect(back.get('state')).toBe('xyz 1');
    expect(back.get('iss')).toBe('http://applinks.test');
    const code = back.get('code')!;

    const tokenRes = await post(h, TOKEN, client, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier });
    expect(tokenRes.statusCode).toBe(200);
    expect(tokenRes.headers['cache-control']).toBe('no-store');
    expect(tokenRes.headers.pragma).toBe('no-cache');
    const tokens = json<Tokens>(tokenRes);
    expect(tokens).toMatchObject({ token_type: 'Bearer', expires_in: 3600, scope: 'READ WRITE' });
    expect(tokens.access_token).toMatch(/^alat_[A-Za-z0-9_-]{43}$/);
    expect(tokens.refresh_token).toMatch(/^alrt_[A-Za-z0-9_-]{43}$/);

    const me = json(await h.inject({ url: '/some/host/path', headers: { authorization: `Bearer ${tokens.access_token}` } }));
    expect(me).toMatchObject({ authenticated: true, authType: 'oauth2', user: { username: 'alice' }, link: { id: client.linkId }, scopes: ['READ', 'WRITE'] });

    const introspected = json(await post(h, INTROSPECT, client, { token: tokens.access_token }));
    expect(introspected).toMatchObject({ active: true, client_id: client.clientId, username: 'alice', scope: 'READ WRITE', token_type: 'Bearer', iss: 'http://applinks.test' });

    const refreshed = await post(h, TOKEN, client, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token });
    expect(refreshed.statusCode).toBe(200);
    const second = json<Tokens>(refreshed);
    expect(second.refresh_token).not.toBe(tokens.refresh_token);

    // Revoking an access token alone ends it on the next request (it was cached by the calls
    // above); the grant's other access token lives on.
    expect((await post(h, REVOKE, client, { token: tokens.access_token, token_type_hint: 'access_token' })).statusCode).toBe(200);
    expect((await h.inject({ url: '/x', headers: { authorization: `Bearer ${tokens.access_token}` } })).statusCode).toBe(401);
    expect((await h.inject({ url: '/x', headers: { authorization: `Bearer ${second.access_token}` } })).statusCode).toBe(200);

    // Revoking the refresh token revokes the grant: both access tokens die.
    const revoked = await post(h, REVOKE, client, { token: second.refresh_token, token_type_hint: 'refresh_token' });
    expect(revoked.statusCode).toBe(200);
    for (const t of [tokens.access_token, second.access_token]) {
      const after = await h.inject({ url: '/x', headers: { authorization: `Bearer ${t}` } });
      expect(after.statusCode).toBe(401);
      expect(after.headers['www-authenticate']).toMatch(/^Bearer realm="applinks", error="invalid_token"/);
    }
    expect(json(await post(h, INTROSPECT, client, { token: second.access_token }))).toEqual({ active: false });
  });

  it('remembers consent per user and client until revoked; prompt=consent asks again; Deny answers access_denied', async () => {
    const client = await registerClient(h);
    await userWithToken(h, 'bob');
    const jar = await signIn(h, 'bob', 'bob-password');
    await obtainCode(h, jar, client, { scope: 'WRITE' });

    // Remembered: straight back with a code, for the same or fewer scopes.
    const again = await h.inject({ url: authorizeUrl({ response_type: 'code', client_id: client.clientId, scope: 'READ', code_challenge: pkce().challenge, code_challenge_method: 'S256' }), headers: { cookie: jar.header } });
    expect(redirectParams(again).get('code')).toMatch(/^alac_/);

    const forced = await h.inject({ url: authorizeUrl({ response_type: 'code', client_id: client.clientId, prompt: 'consent', state: 's' }), headers: { cookie: jar.header } });
    expect(forced.statusCode).toBe(200);
    const denied = redirectParams(await decide(h, jar, forced, 'deny'));
    expect(denied.get('error')).toBe('access_denied');
    expect(denied.get('state')).toBe('s');
    expect(denied.get('iss')).toBe('http://applinks.test');

    // The authorized-applications list shows it; revoking it brings the consent page back.
    const bob = await h.services.users.findByUsername('bob');
    const list = await h.services.authorizations.list(bob!.id);
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({ type: 'oauth2', scopes: ['READ', 'WRITE'], application: { linkId: client.linkId } });
    const csrfPage = await h.inject({ url: '/applinks/account', headers: { cookie: jar.header } });
    expect(csrfPage.body).toContain(list[0]!.application.name);
    expect(await h.services.authorizations.revoke(bob!.id, list[0]!.id, { id: bob!.id, name: 'bob', address: null })).toBe(true);
    const asked = await h.inject({ url: authorizeUrl({ response_type: 'code', client_id: client.clientId }), headers: { cookie: jar.header } });
    expect(asked.statusCode).toBe(200);
    expect(asked.body).toContain('Allow');
  });

  it('remembers consent for what was allowed only: not wider scopes, not another client, not another user', async () => {
    const x = await registerClient(h, { name: 'App X' });
    const y = await registerClient(h, { name: 'App Y' });
    await userWithToken(h, 'alice');
    await userWithToken(h, 'bob');
    const alice = await signIn(h, 'alice', 'alice-password');
    const bob = await signIn(h, 'bob', 'bob-password');
    const ask = (jar: typeof alice, client: typeof x, scope: string) =>
      h.inject({ url: authorizeUrl({ response_type: 'code', client_id: client.clientId, scope, code_challenge: pkce().challenge, code_challenge_method: 'S256' }), headers: { cookie: jar.header } });
    const consentAsked = (res: Awaited<ReturnType<typeof ask>>, name: string, why: string) => {
      expect(res.statusCode, `${why}: ${String(res.headers.location)}`).toBe(200);
      expect(res.body).toContain(`Allow ${name} to act for you?`);
    };

    const readPage = await ask(alice, x, 'READ');
    consentAsked(readPage, 'App X', 'first request');
    expect(redirectParams(await decide(h, alice, readPage, 'allow')).get('code')).toMatch(/^alac_/);
    // Remembered for READ (the control: the requests below differ in one thing each)...
    expect(redirectParams(await ask(alice, x, 'READ')).get('code')).toMatch(/^alac_/);
    // ...but WRITE is more than alice allowed X: she is asked again, for WRITE.
    const writePage = await ask(alice, x, 'READ WRITE');
    consentAsked(writePage, 'App X', 'wider scopes');
    expect(writePage.body).toContain('data-scope="WRITE"');
    // Per client: alice allowed X, not Y.
    consentAsked(await ask(alice, y, 'READ'), 'App Y', 'another client');
    // Per user: bob allowed nothing.
    consentAsked(await ask(bob, x, 'READ'), 'App X', 'another user');
  });

  it('keeps prompt=consent through the sign-in redirect: a signed-out user with remembered consent is asked again', async () => {
    const client = await registerClient(h, { name: 'Prompted App' });
    await userWithToken(h, 'olga');
    await obtainCode(h, await signIn(h, 'olga', 'olga-password'), client, { scope: 'READ' });
    const url = authorizeUrl({ response_type: 'code', client_id: client.clientId, redirect_uri: REDIRECT, scope: 'READ', state: 'p1', code_challenge: pkce().challenge, code_challenge_method: 'S256' });
    // The control: signed in, the remembered consent answers at once.
    const remembered = await signIn(h, 'olga', 'olga-password');
    expect(redirectParams(await h.inject({ url, headers: { cookie: remembered.header } })).get('code')).toMatch(/^alac_/);

    // A browser without a session: to the sign-in page, then back to the request, prompt included.
    const anonymous = await h.inject({ url: `${url}&prompt=consent` });
    expect(anonymous.statusCode).toBe(303);
    const jar = new CookieJar();
    const loginPage = await h.inject({ url: String(anonymous.headers.location) });
    expect(loginPage.statusCode).toBe(200);
    jar.take(loginPage);
    const login = hiddenFields(loginPage.body);
    login.set('username', 'olga');
    login.set('password', 'olga-password');
    const signedIn = await h.inject({ method: 'POST', url: '/applinks/login', headers: { cookie: jar.header, 'content-type': 'application/x-www-form-urlencoded' }, payload: login.toString() });
    expect(signedIn.statusCode, signedIn.body).toBe(303);
    jar.take(signedIn);
    const next = String(signedIn.headers.location);
    expect(next.startsWith('/rest/oauth2/latest/authorize?')).toBe(true);
    const page = await h.inject({ url: next, headers: { cookie: jar.header } });
    expect(page.statusCode, String(page.headers.location)).toBe(200);
    expect(page.body).toContain('Allow Prompted App to act for you?');
    const back = redirectParams(await decide(h, jar, page, 'allow'));
    expect(back.get('code')).toMatch(/^alac_/);
    expect(back.get('state')).toBe('p1');
  });

  it('names each scope in words on the consent page', async () => {
    const client = await registerClient(h, { name: 'Worded App', scopes: ['ADMIN'] });
    await userWithToken(h, 'wendy');
    const words = {
      READ: 'See everything you can see: read your data and the data you have access to.',
      WRITE: 'Create, change and delete what you can change, as you.',
      ADMIN: 'Perform the administration you are allowed to do (projects, spaces, settings you administer), but never set passwords, create API tokens or grant administrator rights.',
    };
    const item = (scope: keyof typeof words) => `<li data-scope="${scope}"><strong>${scope}</strong>: ${words[scope]}</li>`;
    const pageFor = async (username: string, password: string, scope: string) =>
      (await h.inject({ url: authorizeUrl({ response_type: 'code', client_id: client.clientId, scope }), headers: { cookie: (await signIn(h, username, password)).header } })).body;

    const user = await pageFor('wendy', 'wendy-password', 'WRITE');
    expect(user).toContain(item('READ'));
    expect(user).toContain(item('WRITE'));
    expect(user).not.toContain(words.ADMIN);
    const admin = await pageFor('admin', 'admin-password-1', 'ADMIN');
    for (const scope of ['READ', 'WRITE', 'ADMIN'] as const) expect(admin).toContain(item(scope));
  });

  it('always asks again for a public client: its client_id and loopback redirect prove nothing (RFC 8252 §8.6)', async () => {
    const client = await registerClient(h, { confidential: false, redirectUris: ['http://127.0.0.1/cb'] });
    await userWithToken(h, 'nina');
    const jar = await signIn(h, 'nina', 'nina-password');
    const ask = (port: number) => h.inject({ url: authorizeUrl({ response_type: 'code', client_id: client.clientId, redirect_uri: `http://127.0.0.1:${port}/cb`, code_challenge: pkce().challenge, code_challenge_method: 'S256' }), headers: { cookie: jar.header } });
    const first = await ask(4567);
    expect(first.statusCode).toBe(200);
    expect(redirectParams(await decide(h, jar, first, 'allow')).get('code')).toMatch(/^alac_/);
    // Another program on the same machine reuses the client_id with a port of its own: the user decides again.
    const again = await ask(6789);
    expect(again.statusCode, String(again.headers.location)).toBe(200);
    expect(again.body).toContain('Allow');
    // The consent is still recorded: the user sees (and can revoke) the application.
    expect(await h.services.authorizations.list((await h.services.users.findByUsername('nina'))!.id)).toHaveLength(1);
  });

  it('revokes the user’s tokens from the authorized-applications API', async () => {
    const client = await registerClient(h);
    const { bearer } = await userWithToken(h, 'carol');
    const jar = await signIn(h, 'carol', 'carol-password');
    const tokens = await exchange(h, client, await obtainCode(h, jar, client));
    const list = json<{ authorizations: Array<{ id: string; type: string }> }>(await h.inject({ url: '/api/v1/me/authorizations', headers: { authorization: bearer } }));
    const mine = list.authorizations.find((a) => a.type === 'oauth2')!;
    // An OAuth token cannot revoke authorizations (it is scoped); the user's own credential can.
    expect((await h.inject({ method: 'DELETE', url: `/api/v1/me/authorizations/${mine.id}`, headers: { authorization: `Bearer ${tokens.access_token}` } })).statusCode).toBe(403);
    expect((await h.inject({ method: 'DELETE', url: `/api/v1/me/authorizations/${mine.id}`, headers: { authorization: bearer } })).statusCode).toBe(204);
    expect((await h.inject({ url: '/x', headers: { authorization: `Bearer ${tokens.access_token}` } })).statusCode).toBe(401);
    expect((await post(h, TOKEN, client, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token })).statusCode).toBe(400);
  });

  it('lets a READ token use only safe methods on the host and forwards the scopes', async () => {
    const client = await registerClient(h);
    await userWithToken(h, 'dave');
    const jar = await signIn(h, 'dave', 'dave-password');
    const tokens = await exchange(h, client, await obtainCode(h, jar, client, { scope: 'READ' }));
    expect(tokens.scope).toBe('READ');
    const auth = { authorization: `Bearer ${tokens.access_token}` };
    expect((await h.inject({ method: 'GET', url: '/issues', headers: auth })).statusCode).toBe(200);
    expect((await h.inject({ method: 'HEAD', url: '/issues', headers: auth })).statusCode).toBe(200);
    const write = await h.inject({ method: 'POST', url: '/issues', headers: auth, payload: { title: 'x' } });
    expect(write.statusCode).toBe(403);
    expect(json(write).error).toBe('oauth2_insufficient_scope');
    expect(write.headers['www-authenticate']).toMatch(/^Bearer realm="applinks", error="insufficient_scope", error_description="[^"]+", scope="WRITE"$/);
    // Forward-auth without a trusted proxy naming the method (nginx asks with GET whatever the
    // client did): the method is unknown, so a READ token is refused.
    const unknown = await h.inject({ method: 'GET', url: '/rest/applinks/1.0/forward-auth', headers: { ...auth, 'x-original-method': 'GET' } });
    expect(unknown.statusCode).toBe(403);
    expect(unknown.headers['www-authenticate']).toMatch(/error="insufficient_scope"/);
  });

  it('judges a READ token at forward-auth by the method a trusted proxy names', async () => {
    const proxied = await createHarness(dialect, { config: { trustedProxies: '127.0.0.1' } });
    try {
      const client = await registerClient(proxied);
      await userWithToken(proxied, 'dora');
      const jar = await signIn(proxied, 'dora', 'dora-password');
      const tokens = await exchange(proxied, client, await obtainCode(proxied, jar, client, { scope: 'READ' }));
      const ask = (method: string) =>
        proxied.inject({ method: 'GET', url: '/rest/applinks/1.0/forward-auth', headers: { authorization: `Bearer ${tokens.access_token}`, 'x-original-method': method, 'x-original-uri': '/issues' } });
      const get = await ask('GET');
      expect(get.statusCode).toBe(200);
      expect(get.headers['x-applinks-scopes']).toBe('READ');
      expect(get.headers['x-applinks-auth']).toBe('oauth2');
      const postRes = await ask('POST');
      expect(postRes.statusCode).toBe(403);
      expect(json(postRes).error).toBe('oauth2_insufficient_scope');
    } finally {
      await proxied.close();
    }
  });

  it("keeps scoped tokens away from the user's credentials in applinks' own API", async () => {
    const client = await registerClient(h);
    const { bearer, user } = await userWithToken(h, 'lena');
    const jar = await signIn(h, 'lena', 'lena-password');
    const read = await exchange(h, client, await obtainCode(h, jar, client, { scope: 'READ' }));
    const write = await exchange(h, client, await obtainCode(h, jar, client, { scope: 'WRITE' }));
    const [apiToken] = await h.services.apiTokens.list(user.id);
    expect((await h.inject({ url: '/api/v1/me/tokens', headers: { authorization: `Bearer ${read.access_token}` } })).statusCode).toBe(200);
    for (const t of [read, write]) {
      const res = await h.inject({ method: 'DELETE', url: `/api/v1/me/tokens/${apiToken!.id}`, headers: { authorization: `Bearer ${t.access_token}` } });
      expect(res.statusCode).toBe(403);
    }
    const readPost = await h.inject({ method: 'POST', url: '/api/v1/me/tokens', headers: { authorization: `Bearer ${read.access_token}` }, payload: { name: 'x' } });
    expect(json(readPost)).toMatchObject({ error: 'forbidden' });
    expect((await h.inject({ url: '/x', headers: { authorization: bearer } })).statusCode).toBe(200);
  });

  it('caps scopes at what the user may do: ADMIN for an administrator only', async () => {
    const client = await registerClient(h, { scopes: ['SYSTEM_ADMIN'] });
    await userWithToken(h, 'erin');
    const jar = await signIn(h, 'erin', 'erin-password');
    const url = authorizeUrl({ response_type: 'code', client_id: client.clientId, scope: 'ADMIN' });
    const page = await h.inject({ url, headers: { cookie: jar.header } });
    expect(page.body).toContain('you are not an administrator');
    expect(page.body).not.toContain('data-scope="ADMIN"');
    const code = redirectParams(await decide(h, jar, page, 'allow')).get('code')!;
    const erin = json<Tokens>(await post(h, TOKEN, client, { grant_type: 'authorization_code', code }));
    expect(erin.scope).toBe('WRITE');
    // The admin API refuses it: not an administrator, and not granted ADMIN.
    expect((await h.inject({ url: '/api/v1/users', headers: { authorization: `Bearer ${erin.access_token}` } })).statusCode).toBe(403);

    const adminJar = await signIn(h, 'admin', 'admin-password-1');
    const adminCode = redirectParams(await decide(h, adminJar, await h.inject({ url, headers: { cookie: adminJar.header } }), 'allow')).get('code')!;
    const admin = json<Tokens>(await post(h, TOKEN, client, { grant_type: 'authorization_code', code: adminCode }));
    expect(admin.scope).toBe('ADMIN');
    expect((await h.inject({ url: '/api/v1/users', headers: { authorization: `Bearer ${admin.access_token}` } })).statusCode).toBe(200);
  });

  it('never lets an ADMIN token mint permanent credentials, and takes ADMIN away when the user is demoted', async () => {
    const client = await registerClient(h, { scopes: ['ADMIN'] });
    const { user: paul } = await userWithToken(h, 'paul', { isAdmin: true });
    const { user: victim } = await userWithToken(h, 'victim');
    const jar = await signIn(h, 'paul', 'paul-password');
    const t = await exchange(h, client, await obtainCode(h, jar, client, { scope: 'ADMIN' }));
    expect(t.scope).toBe('ADMIN');
    const as = { authorization: `Bearer ${t.access_token}` };
    // Administration it may do...
    expect((await h.inject({ url: '/api/v1/users', headers: as })).statusCode).toBe(200);
    expect((await h.inject({ method: 'PATCH', url: `/api/v1/users/${victim.id}`, headers: as, payload: { displayName: 'V' } })).statusCode).toBe(200);
    // ...but no passwords, API tokens, administrator rights, clients or link authentication.
    const refused = [
      await h.inject({ method: 'POST', url: `/api/v1/users/${victim.id}/tokens`, headers: as, payload: { name: 'backdoor' } }),
      await h.inject({ method: 'PATCH', url: `/api/v1/users/${victim.id}`, headers: as, payload: { password: 'a-new-password-1' } }),
      await h.inject({ method: 'PATCH', url: `/api/v1/users/${victim.id}`, headers: as, payload: { admin: true } }),
      await h.inject({ method: 'POST', url: '/api/v1/users', headers: as, payload: { username: 'mallory', password: 'mallory-password-1' } }),
      await h.inject({ method: 'POST', url: '/api/v1/oauth2/clients', headers: as, payload: { name: 'Backdoor', redirectUris: [], serviceAccount: 'paul' } }),
      await h.inject({ method: 'POST', url: `/api/v1/oauth2/clients/${client.clientId}/secret`, headers: as, payload: {} }),
      await h.inject({ method: 'PUT', url: `/api/v1/links/${client.linkId}/incoming/oauth1`, headers: as, payload: { consumerKey: 'k', name: 'n', sharedSecret: 'a-shared-secret-of-some-length' } }),
      await h.inject({ method: 'POST', url: '/api/v1/links', headers: as, payload: { name: 'L', incoming: { oauth1: { consumerKey: 'k2', name: 'n', sharedSecret: 'a-shared-secret-of-some-length' } } } }),
    ];
    for (const res of refused) {
      expect(res.statusCode, res.body).toBe(403);
      expect(json(res).error).toBe('forbidden');
    }
    expect(await h.services.apiTokens.list(victim.id)).toHaveLength(1);
    expect(await h.services.users.findByUsername('mallory')).toBeUndefined();
    // Demoted: the same token loses ADMIN on the very next request, and its refresh too.
    expect((await h.inject({ method: 'PATCH', url: `/api/v1/users/${paul.id}`, headers: { authorization: h.adminBasic }, payload: { admin: false } })).statusCode).toBe(200);
    expect((await h.inject({ url: '/api/v1/users', headers: as })).statusCode).toBe(403);
    expect(json(await h.inject({ url: '/x', headers: as }))).toMatchObject({ scopes: ['READ', 'WRITE'] });
    const refreshed = json<Tokens>(await post(h, TOKEN, client, { grant_type: 'refresh_token', refresh_token: t.refresh_token }));
    expect(refreshed.scope).toBe('WRITE');
    expect(json(await post(h, INTROSPECT, client, { token: t.access_token }))).toMatchObject({ active: true, scope: 'WRITE' });
  });

  it('refreshes no wider than the client is now allowed, and checks redirect_uri against the grant', async () => {
    const client = await registerClient(h, { redirectUris: [REDIRECT, 'https://client.example/other'] });
    await userWithToken(h, 'quinn');
    const jar = await signIn(h, 'quinn', 'quinn-password');
    const t = await exchange(h, client, await obtainCode(h, jar, client, { scope: 'WRITE' }));
    const other = await post(h, TOKEN, client, { grant_type: 'refresh_token', refresh_token: t.refresh_token, redirect_uri: 'https://client.example/other' });
    expect(other.statusCode).toBe(400);
    expect(json(other).error).toBe('invalid_grant');
    expect((await h.inject({ method: 'PATCH', url: `/api/v1/oauth2/clients/${client.clientId}`, headers: { authorization: h.adminBasic }, payload: { scopes: ['READ'] } })).statusCode).toBe(200);
    const narrowed = await post(h, TOKEN, client, { grant_type: 'refresh_token', refresh_token: t.refresh_token, redirect_uri: REDIRECT });
    expect(narrowed.statusCode, narrowed.body).toBe(200);
    expect(json<Tokens>(narrowed).scope).toBe('READ');
  });

  it('refuses an expired refresh token with invalid_grant', async () => {
    const client = await registerClient(h);
    await userWithToken(h, 'rita');
    const jar = await signIn(h, 'rita', 'rita-password');
    const t = await exchange(h, client, await obtainCode(h, jar, client));
    h.clock.advance(h.config.oauth2RefreshTokenTtlSeconds * 1000 + 1000);
    const res = await post(h, TOKEN, client, { grant_type: 'refresh_token', refresh_token: t.refresh_token });
    expect(res.statusCode).toBe(400);
    expect(json(res)).toMatchObject({ error: 'invalid_grant', error_description: 'The refresh token has expired.' });
  });

  it('gives tokens the lifetimes configured, not the defaults', async () => {
    const short = await createHarness(dialect, { config: { oauth2AccessTokenTtlSeconds: 600, oauth2RefreshTokenTtlSeconds: 7200 } });
    try {
      const client = await registerClient(short);
      await userWithToken(short, 'tina');
      const t = await exchange(short, client, await obtainCode(short, await signIn(short, 'tina', 'tina-password'), client));
      expect(t.expires_in).toBe(600);
      const lifetime = async (token: string) => {
        const i = json<{ active: boolean; exp: number; iat: number }>(await post(short, INTROSPECT, client, { token }));
        expect(i.active).toBe(true);
        return i.exp - i.iat;
      };
      expect(await lifetime(t.access_token)).toBe(600);
      expect(await lifetime(t.refresh_token!)).toBe(7200);
      // Past 600 s the access token is dead; the refresh token, within its 7200 s, still rotates.
      short.clock.advance(601_000);
      expect((await short.inject({ url: '/x', headers: { authorization: `Bearer ${t.access_token}` } })).statusCode).toBe(401);
      const refreshed = await post(short, TOKEN, client, { grant_type: 'refresh_token', refresh_token: t.refresh_token });
      expect(refreshed.statusCode, refreshed.body).toBe(200);
      const t2 = json<Tokens>(refreshed);
      expect(t2.expires_in).toBe(600);
      expect(await lifetime(t2.refresh_token!)).toBe(7200);
      // The new refresh token lives 7200 s from its issue: one second more and it is refused.
      short.clock.advance(7_201_000);
      const expired = await post(short, TOKEN, client, { grant_type: 'refresh_token', refresh_token: t2.refresh_token });
      expect(expired.statusCode).toBe(400);
      expect(json(expired)).toMatchObject({ error: 'invalid_grant', error_description: 'The refresh token has expired.' });
      // client_credentials tokens follow the access-token lifetime too.
      await userWithToken(short, 'robot');
      const service = await registerClient(short, { serviceAccount: 'robot', redirectUris: [], scopes: ['READ'] });
      expect(json<Tokens>(await post(short, TOKEN, service, { grant_type: 'client_credentials' })).expires_in).toBe(600);
    } finally {
      await short.close();
    }
  });

  it('issues client_credentials tokens to service accounts only, acting as the chosen user', async () => {
    await userWithToken(h, 'robot');
    const service = await registerClient(h, { serviceAccount: 'robot', redirectUris: [], scopes: ['READ'] });
    const res = await post(h, TOKEN, service, { grant_type: 'client_credentials' });
    expect(res.statusCode).toBe(200);
    const t = json<Tokens>(res);
    expect(t.refresh_token).toBeUndefined();
    expect(t.scope).toBe('READ');
    expect(json(await h.inject({ url: '/x', headers: { authorization: `Bearer ${t.access_token}` } }))).toMatchObject({ authType: 'oauth2', user: { username: 'robot' } });
    expect((await post(h, TOKEN, service, { grant_type: 'client_credentials', scope: 'WRITE' })).statusCode).toBe(400);

    const ordinary = await registerClient(h);
    const refused = await post(h, TOKEN, ordinary, { grant_type: 'client_credentials' });
    expect(refused.statusCode).toBe(400);
    expect(json(refused).error).toBe('unauthorized_client');
  });

  it('lets a public client use PKCE without a secret, and refuses it introspection', async () => {
    const client = await registerClient(h, { confidential: false, redirectUris: ['http://127.0.0.1/cb'] });
    expect(client.clientSecret).toBeNull();
    await userWithToken(h, 'frank');
    const jar = await signIn(h, 'frank', 'frank-password');
    // No PKCE: refused (RFC 7636 §4.4.1), back to the client since the redirect URI is valid.
    const noPkce = await h.inject({ url: authorizeUrl({ response_type: 'code', client_id: client.clientId, redirect_uri: 'http://127.0.0.1:4567/cb' }), headers: { cookie: jar.header } });
    expect(redirectParams(noPkce).get('error')).toBe('invalid_request');
    expect(String(noPkce.headers.location).startsWith('http://127.0.0.1:4567/cb?')).toBe(true);
    const { verifier, challenge } = pkce();
    const page = await h.inject({ url: authorizeUrl({ response_type: 'code', client_id: client.clientId, redirect_uri: 'http://127.0.0.1:4567/cb', code_challenge: challenge, code_challenge_method: 'S256' }), headers: { cookie: jar.header } });
    const code = redirectParams(await decide(h, jar, page, 'allow')).get('code')!;
    const res = await post(h, TOKEN, client, { grant_type: 'authorization_code', code, redirect_uri: 'http://127.0.0.1:4567/cb', code_verifier: verifier });
    expect(res.statusCode, res.body).toBe(200);
    const tokens = json<Tokens>(res);
    const intro = await post(h, INTROSPECT, client, { token: tokens.access_token });
    expect(intro.statusCode).toBe(401);
    expect(json(intro).error).toBe('invalid_client');
    // A public client may revoke its own tokens.
    expect((await post(h, REVOKE, client, { token: tokens.refresh_token })).statusCode).toBe(200);
    expect((await h.inject({ url: '/x', headers: { authorization: `Bearer ${tokens.access_token}` } })).statusCode).toBe(401);
  });

  it('introspects for the host with an administrator API token, and only own tokens for a client', async () => {
    const a = await registerClient(h);
    const b = await registerClient(h);
    const { bearer: userBearer } = await userWithToken(h, 'gina');
    const jar = await signIn(h, 'gina', 'gina-password');
    const tokens = await exchange(h, a, await obtainCode(h, jar, a));
    expect(json(await post(h, INTROSPECT, b, { token: tokens.access_token }))).toEqual({ active: false });
    expect(json(await post(h, INTROSPECT, a, { token: tokens.refresh_token }))).toMatchObject({ active: true, client_id: a.clientId });
    const { token: adminToken } = await h.services.apiTokens.create((await h.services.users.findByUsername('admin'))!.id, { name: 'host', expiresAt: null }, { id: null, name: 't', address: null });
    const host = await post(h, INTROSPECT, null, { token: tokens.access_token }, { authorization: `Bearer ${adminToken}` });
    expect(json(host)).toMatchObject({ active: true, username: 'gina', client_id: a.clientId, applinks_link_id: a.linkId });
    const notAdmin = await post(h, INTROSPECT, null, { token: tokens.access_token }, { authorization: userBearer });
    expect(notAdmin.statusCode).toBe(403);
    expect(notAdmin.headers['www-authenticate']).toMatch(/error="insufficient_scope"/);
    const garbage = await post(h, INTROSPECT, null, { token: tokens.access_token }, { authorization: 'Bearer alpat_nope' });
    expect(garbage.statusCode).toBe(401);
    expect(json(garbage).error).toBe('invalid_token');
    expect(json(await post(h, INTROSPECT, a, { token: 'not-a-token' }))).toEqual({ active: false });
  });

  it('revokes at once when the link, the client or the user goes', async () => {
    const users = ['hank', 'ivy', 'jack'];
    for (const u of users) await userWithToken(h, u);
    const issue = async (u: string) => {
      const client = await registerClient(h);
      const jar = await signIn(h, u, `${u}-password`);
      const tokens = await exchange(h, client, await obtainCode(h, jar, client));
      expect((await h.inject({ url: '/x', headers: { authorization: `Bearer ${tokens.access_token}` } })).statusCode).toBe(200);
      return { client, tokens };
    };
    const admin = { authorization: h.adminBasic };
    // The access token is refused; the refresh is invalid_client when the client went with it,
    // invalid_grant when only the grant did.
    const dead = async (t: Tokens, client: { clientId: string; clientSecret: string | null; linkId: string }, refreshError: 'invalid_client' | 'invalid_grant') => {
      expect((await h.inject({ url: '/x', headers: { authorization: `Bearer ${t.access_token}` } })).statusCode).toBe(401);
      const refresh = await post(h, TOKEN, client, { grant_type: 'refresh_token', refresh_token: t.refresh_token });
      expect(refresh.statusCode).toBe(refreshError === 'invalid_client' ? 401 : 400);
      expect(json(refresh).error).toBe(refreshError);
    };

    const viaLink = await issue('hank');
    expect((await h.inject({ method: 'DELETE', url: `/api/v1/links/${viaLink.client.linkId}`, headers: admin })).statusCode).toBe(204);
    await dead(viaLink.tokens, viaLink.client, 'invalid_client');

    const viaClient = await issue('ivy');
    expect((await h.inject({ method: 'DELETE', url: `/api/v1/oauth2/clients/${viaClient.client.clientId}`, headers: admin })).statusCode).toBe(204);
    await dead(viaClient.tokens, viaClient.client, 'invalid_client');
    // The link stays; only its OAuth 2.0 client went.
    expect((await h.inject({ url: `/api/v1/links/${viaClient.client.linkId}`, headers: admin })).statusCode).toBe(200);

    const viaUser = await issue('jack');
    const jack = await h.services.users.findByUsername('jack');
    expect((await h.inject({ method: 'PATCH', url: `/api/v1/users/${jack!.id}`, headers: admin, payload: { disabled: true } })).statusCode).toBe(200);
    await dead(viaUser.tokens, viaUser.client, 'invalid_grant');
    // Revoked, not suspended: enabling the user again brings none of it back.
    expect((await h.inject({ method: 'PATCH', url: `/api/v1/users/${jack!.id}`, headers: admin, payload: { disabled: false } })).statusCode).toBe(200);
    await dead(viaUser.tokens, viaUser.client, 'invalid_grant');
    expect(await h.services.authorizations.list(jack!.id)).toEqual([]);
  });

  it('rotates client secrets with a grace period during which both work', async () => {
    await userWithToken(h, 'robot');
    const client = await registerClient(h, { serviceAccount: 'robot', redirectUris: [] });
    const rotated = await h.inject({ method: 'POST', url: `/api/v1/oauth2/clients/${client.clientId}/secret`, headers: { authorization: h.adminBasic }, payload: { graceSeconds: 60 } });
    expect(rotated.statusCode).toBe(200);
    const body = json<{ clientSecret: string; client: { secrets: Array<{ expiresAt: string | null }> } }>(rotated);
    expect(body.client.secrets).toHaveLength(2);
    expect(rotated.body.split(body.clientSecret).length).toBe(2);
    const fresh = { ...client, clientSecret: body.clientSecret };
    expect((await post(h, TOKEN, client, { grant_type: 'client_credentials' })).statusCode).toBe(200);
    expect((await post(h, TOKEN, fresh, { grant_type: 'client_credentials' })).statusCode).toBe(200);
    h.clock.advance(61_000);
    const old = await post(h, TOKEN, client, { grant_type: 'client_credentials' });
    expect(old.statusCode).toBe(401);
    expect(json(old).error).toBe('invalid_client');
    expect((await post(h, TOKEN, fresh, { grant_type: 'client_credentials' })).statusCode).toBe(200);
    // Nothing secret in the listing or the audit log.
    const listing = await h.inject({ url: '/api/v1/oauth2/clients', headers: { authorization: h.adminBasic } });
    const audit = await h.inject({ url: '/api/v1/audit', headers: { authorization: h.adminBasic } });
    for (const secret of [client.clientSecret!, body.clientSecret]) {
      expect(listing.body).not.toContain(secret);
      expect(audit.body).not.toContain(secret);
    }
    expect(audit.body).toContain('oauth2.client.secret.rotate');
  });

  it('documents the client routes in OpenAPI', async () => {
    const doc = json<{ paths: Record<string, unknown> }>(await h.inject({ url: '/api/v1/openapi.json' }));
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/api/v1/oauth2/clients', '/api/v1/oauth2/clients/{clientId}', '/api/v1/oauth2/clients/{clientId}/secret', '/api/v1/me/oauth2/clients']));
  });

  it('serves the consent page under the authorization endpoint only with the session cookie', async () => {
    const client = await registerClient(h);
    const { bearer } = await userWithToken(h, 'kim');
    // An API token is no browser session: sign in first.
    const res = await h.inject({ url: authorizeUrl({ response_type: 'code', client_id: client.clientId }), headers: { authorization: bearer } });
    expect(res.statusCode).toBe(303);
    expect(String(res.headers.location)).toMatch(/^\/applinks\/login\?next=/);
  });
});
