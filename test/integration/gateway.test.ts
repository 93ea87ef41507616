import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { SignJWT, decodeJwt, generateKeyPair } from 'jose';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertionVerifier } from '../../src/lib/index.js';
import { SYSTEM_ACTOR } from '../../src/services/audit.js';
import { createHarness, DIALECTS, json, userWithToken, type DialectName, type Harness } from '../helpers/harness.js';
import { exchange, obtainCode, registerClient, signIn } from '../helpers/oauth2.js';
import { startUpstream, type SeenRequest } from '../helpers/upstream.js';

/** A server listening on a port in front of a recording upstream, and alice with an API token. */
async function startGateway(dialect: DialectName) {
  const upstream = await startUpstream();
  const h = await createHarness(dialect, { config: { upstreamUrl: upstream.url } });
  await h.app.listen({ port: 0, host: '127.0.0.1' });
  const base = `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`;
  return { h, upstream, base, alice: await userWithToken(h, 'alice') };
}

/**
 * Credentials of `username` (made by userWithToken, so with its password) issued for an
 * application link: an API token an administrator tied to an add-in's link, and an OAuth 2.0
 * access token the user granted a client (whose registration made its own link).
 */
async function linkedCredentials(h: Harness, username: string) {
  const user = (await h.services.users.findByUsername(username))!;
  const addIn = json<{ id: string }>(await h.inject({ method: 'POST', url: '/api/v1/links', headers: { authorization: h.adminBasic }, payload: { name: `Add-in of ${username}` } }));
  const { token } = await h.services.apiTokens.create(user.id, { name: 'add-in', expiresAt: null, linkId: addIn.id }, SYSTEM_ACTOR);
  const client = await registerClient(h);
  const jar = await signIn(h, username, `${username}-password`);
  const { access_token } = await exchange(h, client, await obtainCode(h, jar, client));
  return { apiToken: { bearer: `Bearer ${token}`, linkId: addIn.id }, oauth2: { bearer: `Bearer ${access_token}`, linkId: client.linkId } };
}

// Everything that looks up a credential (API tokens) or signs with a stored key (the assertion) reads the store: per dialect.
describe.each(DIALECTS)('gateway in front of a host on %s', (dialect) => {
  let h: Harness;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let base: string;
  let alice: Awaited<ReturnType<typeof userWithToken>>;

  beforeAll(async () => ({ h, upstream, base, alice } = await startGateway(dialect)));
  afterAll(async () => {
    await h.close();
    await upstream.close();
  });

  const last = (): SeenRequest => upstream.seen[upstream.seen.length - 1]!;

  it('forwards with the identity headers and removes every client-sent X-Applinks-* header', async () => {
    const res = await request(`${base}/rest/api/2/issue/ABC-1?expand=names`, {
      headers: {
        authorization: alice.bearer,
        'x-applinks-user': 'admin',
        'X-Applinks-Scopes': 'SYSTEM_ADMIN',
        'x-applinks-anything': 'forged',
        cookie: 'applinks_session=alses_x; host_pref=1',
        'x-custom': 'kept',
      },
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers['set-cookie']).toBe('host_session=abc; Path=/');
    await res.body.text();
    const seen = last();
    expect(seen.url).toBe('/rest/api/2/issue/ABC-1?expand=names');
    expect(seen.headers['x-applinks-user']).toBe('alice');
    expect(seen.headers['x-applinks-auth']).toBe('api-token');
    expect(seen.headers['x-applinks-scopes']).toBeUndefined();
    expect(seen.headers['x-applinks-anything']).toBeUndefined();
    expect(seen.headers['x-applinks-link']).toBeUndefined();
    expect(seen.headers.authorization).toBeUndefined();
    expect(seen.headers.cookie).toBe('host_pref=1');
    expect(seen.headers['x-custom']).toBe('kept');
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen.headers['x-forwarded-proto']).toBe('http');
  });

  it('names the link a credential was issued for in X-Applinks-Link and the assertion; a personal token names none, whatever the client sends', async () => {
    const { apiToken, oauth2 } = await linkedCredentials(h, 'alice');
    expect(apiToken.linkId).not.toBe(oauth2.linkId);
    for (const [credential, auth] of [[apiToken, 'api-token'], [oauth2, 'oauth2']] as const) {
      const res = await request(`${base}/rest/api/2/issue/ABC-2`, { headers: { authorization: credential.bearer, 'x-applinks-link': 'forged-link' } });
      expect(res.statusCode).toBe(200);
      await res.body.text();
      const seen = last();
      expect([seen.headers['x-applinks-user'], seen.headers['x-applinks-auth'], seen.headers['x-applinks-link']], auth).toEqual(['alice', auth, credential.linkId]);
      expect(decodeJwt(String(seen.headers['x-applinks-assertion']))).toMatchObject({ sub: 'alice', auth, link: credential.linkId });
    }
    await (await request(`${base}/rest/api/2/issue/ABC-2`, { headers: { authorization: alice.bearer, 'x-applinks-link': apiToken.linkId } })).body.text();
    expect(last().headers['x-applinks-auth']).toBe('api-token');
    expect(last().headers['x-applinks-link']).toBeUndefined();
    expect(decodeJwt(String(last().headers['x-applinks-assertion'])).link).toBeUndefined();
  });

  it('signs an assertion of the same identity that a host verifies through the published JWKS', async () => {
    await (await request(`${base}/x`, { headers: { authorization: alice.bearer } })).body.text();
    const assertion = String(last().headers['x-applinks-assertion']);
    const verify = assertionVerifier({ applinksUrl: 'http://applinks.test', audience: upstream.url });
    // The verifier fetches keys from the public URL; point it at the listening server.
    const local = assertionVerifier({ applinksUrl: base, audience: upstream.url });
    await expect(local(assertion)).rejects.toThrow(/iss/); // the issuer is the public base URL, not this address
    const jwks = json(await h.inject({ url: '/rest/applinks/1.0/jwks.json' }));
    expect((jwks.keys as Array<{ kty: string; alg: string }>)[0]).toMatchObject({ kty: 'EC', alg: 'ES256' });
    const { createLocalJWKSet, jwtVerify } = await import('jose');
    const { payload } = await jwtVerify(assertion, createLocalJWKSet(jwks as never), { issuer: 'http://applinks.test', audience: upstream.url });
    expect(payload).toMatchObject({ sub: 'alice', auth: 'api-token', conn: 'gateway', uid: alice.user.id });
    expect(payload.exp! - payload.iat!).toBe(60);
    // A token signed by anyone else is refused.
    const { privateKey } = await generateKeyPair('ES256');
    const forged = await new SignJWT({ auth: 'api-token' }).setProtectedHeader({ alg: 'ES256', kid: 'x' }).setSubject('admin').setIssuer('http://applinks.test').setAudience(upstream.url).setIssuedAt().setExpirationTime('1m').sign(privateKey);
    await expect(verify(forged)).rejects.toThrow();
  });

  it('streams large bodies both ways without changing a byte', async () => {
    const upload = randomBytes(8 * 1024 * 1024);
    const res = await request(`${base}/upload`, { method: 'PUT', body: upload, headers: { authorization: alice.bearer, 'content-type': 'application/octet-stream' } });
    const echoed = JSON.parse(await res.body.text()) as SeenRequest;
    expect(echoed.bodyLength).toBe(upload.length);
    expect(echoed.bodySha256).toBe(createHash('sha256').update(upload).digest('hex'));
    const down = await request(`${base}/download/${20 * 1024 * 1024}`, { headers: { authorization: alice.bearer } });
    let n = 0;
    for await (const chunk of down.body) n += (chunk as Buffer).length;
    expect(n).toBe(20 * 1024 * 1024);
  });

  it('refuses a bad credential before anything reaches the host', async () => {
    const before = upstream.seen.length;
    const res = await request(`${base}/secret`, { method: 'POST', body: 'x', headers: { authorization: 'Bearer alpat_nope' } });
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toMatch(/Bearer realm="applinks", error="invalid_token"/);
    await res.body.text();
    expect(upstream.seen.length).toBe(before);
  });

  it('forwards a body sent after 100 Continue, without the Expect header the host never needs', async () => {
    const body = randomBytes(256 * 1024);
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = httpRequest(`${base}/upload`, { method: 'POST', headers: { authorization: alice.bearer, expect: '100-continue', 'content-length': body.length, 'content-type': 'application/octet-stream' } });
      req.on('continue', () => req.end(body));
      req.on('response', (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (c: string) => (text += c)).on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      });
      req.on('error', reject);
    });
    expect(status).toBe(200);
    const echoed = JSON.parse(text) as SeenRequest;
    expect(echoed.bodySha256).toBe(createHash('sha256').update(body).digest('hex'));
    expect(echoed.headers.expect).toBeUndefined();
    expect(echoed.headers['x-applinks-user']).toBe('alice');
  });
});

// How the gateway treats HTTP itself: the headers it strips from anonymous requests, the paths it keeps, the request
// targets it refuses, a host that is down. No credential is looked up and no stored row decides the outcome (the
// PROPFIND's token is never read: unknown routes answer 404 before authentication), so one dialect keeps it fast.
describe('gateway HTTP handling (store-independent, SQLite only)', () => {
  let h: Harness;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let base: string;
  let alice: Awaited<ReturnType<typeof userWithToken>>;

  beforeAll(async () => ({ h, upstream, base, alice } = await startGateway('sqlite')));
  afterAll(async () => {
    await h.close();
    await upstream.close();
  });

  const last = (): SeenRequest => upstream.seen[upstream.seen.length - 1]!;

  it('forwards anonymous requests without a user, and spoofed identity headers never pass', async () => {
    await (await request(`${base}/public`, { headers: { 'x-applinks-user': 'admin', 'x-applinks-assertion': 'forged' } })).body.text();
    const seen = last();
    expect(seen.headers['x-applinks-user']).toBeUndefined();
    expect(seen.headers['x-applinks-auth']).toBe('anonymous');
    expect(seen.headers['x-applinks-assertion']).not.toBe('forged');
  });

  it('drops underscore spellings of the identity headers and proxy headers from an untrusted client', async () => {
    const forged = {
      X_Applinks_User: 'admin',
      'X-Applinks_User': 'admin',
      X_APPLINKS_AUTH: 'api-token',
      forwarded: 'for=10.0.0.1;proto=https',
      'x-real-ip': '10.0.0.1',
      'x-forwarded-port': '443',
      'x-forwarded-prefix': '/admin',
      'x-original-uri': '/admin',
      'x-applinksish': 'kept',
    };
    await (await request(`${base}/public`, { headers: forged })).body.text();
    const seen = last();
    for (const name of Object.keys(forged).filter((n) => n !== 'x-applinksish')) expect(seen.headers[name.toLowerCase()], name).toBeUndefined();
    expect(seen.headers['x-applinksish']).toBe('kept');
    expect(seen.headers['x-applinks-auth']).toBe('anonymous');
  });

  it('keeps applinks paths to itself: unknown ones are 404 here, never forwarded', async () => {
    const before = upstream.seen.length;
    for (const path of ['/api/v1/nope', '/rest/applinks/1.0/nope', '/applinks/nope']) {
      const res = await request(`${base}${path}`);
      expect(res.statusCode, path).toBe(404);
      await res.body.text();
    }
    expect(upstream.seen.length).toBe(before);
  });

  it('refuses request targets that are not paths (asterisk and absolute forms) with 400, and owned paths answer unknown methods in the catalog shape', async () => {
    const before = upstream.seen.length;
    for (const line of ['OPTIONS * HTTP/1.1', 'GET http://evil.example/x HTTP/1.1']) {
      const raw = await rawExchange(base, `${line}\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
      expect(raw, line).toMatch(/^HTTP\/1\.1 400 /);
      expect(raw).toContain('"error":"invalid_request"');
    }
    expect(upstream.seen.length).toBe(before);
    const res = await request(`${base}/api/v1/me`, { method: 'PROPFIND', headers: { authorization: alice.bearer } });
    expect(res.statusCode).toBe(404);
    expect(await res.body.json()).toMatchObject({ error: 'not_found' });
  });

  it('answers 502 when the host is down', async () => {
    const down = await createHarness('sqlite', { config: { upstreamUrl: 'http://127.0.0.1:9' } });
    try {
      const res = await down.inject({ url: '/x' });
      expect(res.statusCode).toBe(502);
      expect(json(res).error).toBe('upstream_unavailable');
    } finally {
      await down.close();
    }
  });
});

describe.each(DIALECTS)('forward-auth on %s', (dialect) => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness(dialect, { config: { trustedProxies: '127.0.0.1' } });
  });
  afterAll(async () => h.close());

  it('answers 200 with the identity headers, or 401 with every challenge', async () => {
    const { bearer } = await userWithToken(h, 'bob');
    const ok = await h.inject({ url: '/rest/applinks/1.0/forward-auth', headers: { authorization: bearer, 'x-forwarded-uri': '/rest/api/2/myself' } });
    expect(ok.statusCode).toBe(200);
    expect(ok.headers['x-applinks-user']).toBe('bob');
    expect(ok.headers['x-applinks-auth']).toBe('api-token');
    expect(ok.headers['x-applinks-assertion']).toMatch(/^ey/);
    // Headers that do not apply are sent empty, so the proxy replaces a client's forged ones.
    expect(ok.headers['x-applinks-link']).toBe('');
    expect(ok.headers['x-applinks-scopes']).toBe('');
    expect(json(ok).connection).toBe('forward-auth');
    const anon = await h.inject({ url: '/rest/applinks/1.0/forward-auth' });
    expect(anon.statusCode).toBe(401);
    expect(anon.headers['www-authenticate']).toEqual(expect.arrayContaining([expect.stringMatching(/^Bearer realm=/), expect.stringMatching(/^Basic realm=/)]));
    const allowed = await h.inject({ url: '/rest/applinks/1.0/forward-auth?anonymous=allow' });
    expect(allowed.statusCode).toBe(200);
    expect(allowed.headers['x-applinks-user']).toBe('');
    expect(allowed.headers['x-applinks-auth']).toBe('anonymous');
    const bad = await h.inject({ url: '/rest/applinks/1.0/forward-auth', headers: { authorization: 'Bearer alpat_wrong' } });
    expect(bad.statusCode).toBe(401);
  });

  it('names the link a credential was issued for in X-Applinks-Link, and sends it empty for a personal token', async () => {
    const { bearer } = await userWithToken(h, 'carol');
    const { apiToken, oauth2 } = await linkedCredentials(h, 'carol');
    for (const [credential, auth] of [[apiToken, 'api-token'], [oauth2, 'oauth2']] as const) {
      const res = await h.inject({ url: '/rest/applinks/1.0/forward-auth', headers: { authorization: credential.bearer, 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/rest/api/2/myself', 'x-applinks-link': 'forged-link' } });
      expect(res.statusCode, res.body).toBe(200);
      expect([res.headers['x-applinks-user'], res.headers['x-applinks-auth'], res.headers['x-applinks-link']], auth).toEqual(['carol', auth, credential.linkId]);
      expect(decodeJwt(String(res.headers['x-applinks-assertion']))).toMatchObject({ sub: 'carol', auth, conn: 'forward-auth', link: credential.linkId });
      expect(json(res).link).toMatchObject({ id: credential.linkId });
    }
    const personal = await h.inject({ url: '/rest/applinks/1.0/forward-auth', headers: { authorization: bearer, 'x-applinks-link': apiToken.linkId } });
    expect([personal.statusCode, personal.headers['x-applinks-user'], personal.headers['x-applinks-link']]).toEqual([200, 'carol', '']);
  });

  // nginx's auth_request passes 401 and 403 and turns every other status into a 500 of its own.
  it('answers a malformed credential 401 with the protocol’s challenge, never a status nginx turns into a 500', async () => {
    const empty = await h.inject({ url: '/rest/applinks/1.0/forward-auth', headers: { authorization: 'Bearer ' } });
    expect(empty.statusCode).toBe(401);
    expect(empty.headers['x-applinks-status']).toBe('400');
    expect(empty.headers['www-authenticate']).toMatch(/^Bearer .*error="invalid_request"/);
    expect(empty.headers['x-applinks-user']).toBeUndefined();
    // Through the gateway the protocol's own status stays.
    expect((await h.inject({ url: '/rest/api/2/myself', headers: { authorization: 'Bearer ' } })).statusCode).toBe(400);
    const unreadable = await h.inject({ url: '/rest/applinks/1.0/forward-auth', headers: { authorization: 'OAuth oauth_consumer_key="a", oauth_consumer_key="b"' } });
    expect(unreadable.statusCode).toBe(401);
    expect(unreadable.headers['x-applinks-status']).toBe('400');
    expect(unreadable.headers['www-authenticate']).toMatch(/^OAuth realm=.*oauth_problem="parameter_rejected"/);
    expect(unreadable.body).toContain('oauth_problem=parameter_rejected');
    const unknownScheme = await h.inject({ url: '/rest/applinks/1.0/forward-auth', headers: { authorization: 'Negotiate abc' } });
    expect(unknownScheme.statusCode).toBe(401);
    expect(unknownScheme.headers['www-authenticate']).toEqual(expect.arrayContaining([expect.stringMatching(/^Bearer realm=/), expect.stringMatching(/^Basic realm=/)]));
  });
});

// A pure function of the request and the edge configuration: no server, no store.
describe('forward-auth: the original request', () => {
  it('believes X-Forwarded-* and X-Original-* only from trusted proxies', async () => {
    const { originalRequest } = await import('../../src/gateway/forward-auth.js');
    const { Edge } = await import('../../src/auth/edge.js');
    const fake = (remote: string, headers: Record<string, string>) => ({ method: 'GET', url: '/rest/applinks/1.0/forward-auth', headers, socket: { remoteAddress: remote } }) as never;
    const trusted = new Edge({ baseUrl: 'http://127.0.0.1:8080', baseUrlExplicit: false, trustedProxies: ['10.0.0.0/8'] });
    expect(originalRequest(trusted, fake('10.1.2.3', { 'x-forwarded-method': 'post', 'x-forwarded-uri': '/a?b=1', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'jira.example.com', host: 'internal:8080' }))).toEqual({
      method: 'POST',
      methodKnown: true,
      url: 'https://jira.example.com/a?b=1',
    });
    expect(originalRequest(trusted, fake('10.1.2.3', { 'x-original-uri': '/nginx/path', host: 'jira.example.com' }))).toEqual({ method: 'GET', methodKnown: false, url: 'http://jira.example.com/nginx/path' });
    expect(originalRequest(trusted, fake('192.168.1.9', { 'x-forwarded-method': 'POST', 'x-forwarded-uri': '/a', 'x-forwarded-host': 'evil.example', host: 'jira.example.com' }))).toEqual({
      method: 'GET',
      methodKnown: false,
      url: 'http://jira.example.com/rest/applinks/1.0/forward-auth',
    });
    const explicit = new Edge({ baseUrl: 'https://jira.example.com/ctx', baseUrlExplicit: true, trustedProxies: ['10.0.0.0/8'] });
    expect(originalRequest(explicit, fake('10.1.2.3', { 'x-forwarded-uri': '/rest/x', 'x-forwarded-host': 'other.example', 'x-forwarded-proto': 'http' }))).toEqual({ method: 'GET', methodKnown: false, url: 'https://jira.example.com/ctx/rest/x' });
  });
});

/** Sends `text` as it is on a new connection and answers everything the server wrote until it closed. */
async function rawExchange(base: string, text: string): Promise<string> {
  const { hostname, port } = new URL(base);
  return new Promise<string>((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.end(text));
    let out = '';
    socket.setEncoding('latin1').on('data', (c: string) => (out += c)).on('end', () => resolve(out)).on('error', reject);
  });
}
