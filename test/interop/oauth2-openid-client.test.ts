import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import * as oauth from 'oauth4webapi';
import * as client from 'openid-client';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DIALECTS, userWithToken, type Harness } from '../helpers/harness.js';
import { callbackServer, echoUpstream } from '../helpers/net.js';
import { listeningHarness } from '../helpers/oauth2.js';

/**
 * Clients nobody here wrote: openid-client (confidential, client_secret_basic) and oauth4webapi
 * (public, PKCE only) drive the authorization code flow against a listening server, with the
 * sign-in and the consent clicked in headless Chromium; then refresh, introspection, a bearer
 * request through the gateway to a node:http host, and revocation.
 */
let browser: Browser;
beforeAll(async () => {
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-background-networking', '--disable-gpu'] });
});
afterAll(async () => {
  await browser?.close();
});

/** oauth4webapi parses our RFC 6750 challenge and throws it: check status, scheme and error. */
async function expectChallenge(request: Promise<Response>, status: number, error: string): Promise<oauth.WWWAuthenticateChallenge> {
  const failure = await request.then(
    (res) => new Error(`expected a ${status} challenge, got ${res.status}`),
    (e: unknown) => e,
  );
  expect(failure).toBeInstanceOf(oauth.WWWAuthenticateChallengeError);
  const e = failure as oauth.WWWAuthenticateChallengeError;
  expect(e.status).toBe(status);
  expect(e.cause[0]).toMatchObject({ scheme: 'bearer', parameters: { realm: 'applinks', error } });
  return e.cause[0]!;
}

describe.each(DIALECTS)('OAuth 2.0 with openid-client, oauth4webapi and Chromium on %s', (dialect) => {
  let h: Harness;
  let base: string;
  let upstream: Awaited<ReturnType<typeof echoUpstream>>;
  let callback: Awaited<ReturnType<typeof callbackServer>>;

  beforeEach(async () => {
    upstream = await echoUpstream();
    callback = await callbackServer();
    ({ h, base } = await listeningHarness(dialect, { upstreamUrl: upstream.url }));
    await userWithToken(h, 'alice', { password: 'alice-password' });
  });
  afterEach(async () => {
    await h.close();
    await upstream.close();
    await callback.close();
  });

  /** The user in the browser: signs in when asked, then clicks Allow on the consent page. */
  async function consentInBrowser(authorizationUrl: URL, expectedApp: string): Promise<URL> {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const arrived = callback.next();
      await page.goto(authorizationUrl.href);
      await page.waitForSelector('#username');
      await page.fill('#username', 'alice');
      await page.fill('#password', 'alice-password');
      await page.click('button[type=submit]');
      await page.waitForSelector('#allow');
      expect(await page.textContent('h1')).toBe(`Allow ${expectedApp} to act for you?`);
      expect(await page.locator('#scopes li').count()).toBeGreaterThan(0);
      await page.click('#allow');
      return await arrived;
    } finally {
      await context.close();
    }
  }

  it('openid-client: confidential client, code + PKCE, refresh, introspect, gateway, revoke', async () => {
    const registered = await h.inject({
      method: 'POST',
      url: '/api/v1/oauth2/clients',
      headers: { authorization: h.adminBasic },
      payload: { name: 'Reporting Tool', redirectUris: ['http://127.0.0.1/callback'], scopes: ['READ', 'WRITE'] },
    });
    const { clientId, clientSecret } = JSON.parse(registered.body) as { clientId: string; clientSecret: string };
    const redirectUri = `http://127.0.0.1:${callback.port}/callback`;

    const config = await client.discovery(new URL(base), clientId, undefined, client.ClientSecretBasic(clientSecret), { algorithm: 'oauth2', execute: [client.allowInsecureRequests] });
    expect(config.serverMetadata().issuer).toBe(base);
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const authorizationUrl = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: 'READ WRITE',
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
    });
    const callbackUrl = await consentInBrowser(authorizationUrl, 'Reporting Tool');
    expect(callbackUrl.searchParams.get('iss')).toBe(base);

    // openid-client checks state and the RFC 9207 iss, then redeems the code with the verifier.
    const tokens = await client.authorizationCodeGrant(config, callbackUrl, { pkceCodeVerifier: verifier, expectedState: state });
    expect(tokens.token_type.toLowerCase()).toBe('bearer');
    expect(tokens.scope).toBe('READ WRITE');
    expect(tokens.expiresIn()).toBeGreaterThan(3590);

    // A second redemption of the same callback fails: codes are single use.
    await expect(client.authorizationCodeGrant(config, callbackUrl, { pkceCodeVerifier: verifier, expectedState: state })).rejects.toMatchObject({ error: 'invalid_grant' });
    await expectChallenge(client.fetchProtectedResource(config, tokens.access_token, new URL(`${base}/after-replay`), 'GET'), 401, 'invalid_token');

    // Start again (the replay revoked the first grant); consent is remembered, so the browser comes straight back.
    const verifier2 = client.randomPKCECodeVerifier();
    const state2 = client.randomState();
    const url2 = client.buildAuthorizationUrl(config, { redirect_uri: redirectUri, scope: 'READ WRITE', code_challenge: await client.calculatePKCECodeChallenge(verifier2), code_challenge_method: 'S256', state: state2 });
    const context = await browser.newContext();
    const page = await context.newPage();
    const arrived = callback.next();
    await page.goto(url2.href);
    await page.fill('#username', 'alice');
    await page.fill('#password', 'alice-password');
    await page.click('button[type=submit]');
    const second = await client.authorizationCodeGrant(config, await arrived, { pkceCodeVerifier: verifier2, expectedState: state2 });
    await context.close();

    const refreshed = await client.refreshTokenGrant(config, second.refresh_token!);
    expect(refreshed.refresh_token).not.toBe(second.refresh_token);
    const introspection = await client.tokenIntrospection(config, refreshed.access_token);
    expect(introspection).toMatchObject({ active: true, client_id: clientId, username: 'alice', scope: 'READ WRITE', token_type: 'Bearer' });

    // Through the gateway to the host, with the identity headers and without the token.
    const res = await client.fetchProtectedResource(config, refreshed.access_token, new URL(`${base}/rest/api/2/issue/ABC-1`), 'POST', JSON.stringify({ fields: {} }), new Headers({ 'content-type': 'application/json' }));
    expect(res.status).toBe(200);
    const seen = upstream.seen.at(-1)!;
    expect(seen).toMatchObject({ method: 'POST', url: '/rest/api/2/issue/ABC-1', body: '{"fields":{}}' });
    expect(seen.headers['x-applinks-user']).toBe('alice');
    expect(seen.headers['x-applinks-auth']).toBe('oauth2');
    expect(seen.headers['x-applinks-scopes']).toBe('READ WRITE');
    expect(seen.headers['x-applinks-link']).toBeTruthy();
    expect(seen.headers.authorization).toBeUndefined();

    await client.tokenRevocation(config, refreshed.refresh_token!, { token_type_hint: 'refresh_token' });
    expect(await client.tokenIntrospection(config, refreshed.access_token)).toEqual({ active: false });
    await expectChallenge(client.fetchProtectedResource(config, refreshed.access_token, new URL(`${base}/rest/api/2/myself`), 'GET'), 401, 'invalid_token');
    await expect(client.refreshTokenGrant(config, refreshed.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('oauth4webapi: public native client on a loopback redirect with any port, READ scope limited to safe methods', async () => {
    const registered = await h.inject({
      method: 'POST',
      url: '/api/v1/oauth2/clients',
      headers: { authorization: h.adminBasic },
      payload: { name: 'Desktop App', confidential: false, redirectUris: ['http://127.0.0.1/cb'], scopes: ['READ', 'WRITE'] },
    });
    const { clientId } = JSON.parse(registered.body) as { clientId: string };
    const issuer = new URL(base);
    const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', [oauth.allowInsecureRequests]: true }));
    const c: oauth.Client = { client_id: clientId };
    const auth = oauth.None();
    const redirectUri = `http://127.0.0.1:${callback.port}/cb`;
    const verifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const url = new URL(as.authorization_endpoint!);
    url.search = new URLSearchParams({
      client_id: clientId,
      redirect_uri: redirectUri,
      response_type: 'code',
      scope: 'READ',
      state,
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    }).toString();

    const params = oauth.validateAuthResponse(as, c, await consentInBrowser(url, 'Desktop App'), state);
    const response = await oauth.authorizationCodeGrantRequest(as, c, auth, params, redirectUri, verifier, { [oauth.allowInsecureRequests]: true });
    const tokens = await oauth.processAuthorizationCodeResponse(as, c, response);
    expect(tokens.scope).toBe('READ');

    const get = await oauth.protectedResourceRequest(tokens.access_token, 'GET', new URL(`${base}/wiki/page`), undefined, undefined, { [oauth.allowInsecureRequests]: true });
    expect(get.status).toBe(200);
    expect(upstream.seen.at(-1)!.headers['x-applinks-scopes']).toBe('READ');
    const before = upstream.seen.length;
    const challenge = await expectChallenge(
      oauth.protectedResourceRequest(tokens.access_token, 'POST', new URL(`${base}/wiki/page`), new Headers({ 'content-type': 'text/plain' }), 'edit', { [oauth.allowInsecureRequests]: true }),
      403,
      'insufficient_scope',
    );
    expect(challenge.parameters.scope).toBe('WRITE');
    expect(upstream.seen.length).toBe(before);

    const refreshed = await oauth.processRefreshTokenResponse(as, c, await oauth.refreshTokenGrantRequest(as, c, auth, tokens.refresh_token!, { [oauth.allowInsecureRequests]: true }));
    await oauth.processRevocationResponse(await oauth.revocationRequest(as, c, auth, refreshed.refresh_token!, { [oauth.allowInsecureRequests]: true }));
    await expectChallenge(oauth.protectedResourceRequest(refreshed.access_token, 'GET', new URL(`${base}/wiki/page`), undefined, undefined, { [oauth.allowInsecureRequests]: true }), 401, 'invalid_token');
  });
  it('oauth4webapi in the browser: a single-page app on another origin does the whole flow through CORS', async () => {
    const registered = await h.inject({
      method: 'POST',
      url: '/api/v1/oauth2/clients',
      headers: { authorization: h.adminBasic },
      payload: { name: 'Board SPA', confidential: false, redirectUris: ['http://127.0.0.1/app'], scopes: ['READ'] },
    });
    const { clientId } = JSON.parse(registered.body) as { clientId: string };
    const spa = await spaServer(base, clientId);
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(`${spa.url}/app`);
      await page.waitForSelector('#username');
      await page.fill('#username', 'alice');
      await page.fill('#password', 'alice-password');
      await page.click('button[type=submit]');
      await page.waitForSelector('#allow');
      await page.click('#allow');
      await page.waitForSelector('body[data-done]');
      const result = JSON.parse((await page.textContent('#out')) ?? '{}') as Record<string, unknown>;
      expect(result).toMatchObject({ ok: true, scope: 'READ', reuse: 'invalid_grant', introspection: 'blocked' });
      // The page's origin is another port of the same host: the browser enforced CORS on every call.
      expect(new URL(spa.url).origin).not.toBe(new URL(base).origin);
      // Revoking from the page ended the whole grant, the access token of the refresh too.
      await expectChallenge(oauth.protectedResourceRequest(String(result.access), 'GET', new URL(`${base}/wiki/page`), undefined, undefined, { [oauth.allowInsecureRequests]: true }), 401, 'invalid_token');
    } finally {
      await context.close();
      await spa.close();
    }
  });
});

/**
 * A single-page app on its own origin: oauth4webapi's browser build, and a page that discovers
 * the server, sends the user to consent with PKCE, then exchanges the code, refreshes, revokes
 * and tries the revoked token again with fetch from the page; it also tries introspection, which
 * grants no CORS, to show the browser enforces it. It writes what happened into #out.
 */
async function spaServer(issuer: string, clientId: string): Promise<{ url: string; close(): Promise<void> }> {
  const library = await readFile(fileURLToPath(import.meta.resolve('oauth4webapi')));
  const html = `<!doctype html><title>Board</title><pre id="out">working</pre>
<script type="module">
import * as oauth from '/oauth4webapi.js';
const insecure = { [oauth.allowInsecureRequests]: true };
const done = (result) => { document.getElementById('out').textContent = JSON.stringify(result); document.body.dataset.done = '1'; };
try {
  const issuer = new URL(${JSON.stringify(issuer)});
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }));
  const client = { client_id: ${JSON.stringify(clientId)} };
  const redirectUri = location.origin + '/app';
  if (!new URLSearchParams(location.search).has('code')) {
    const verifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    sessionStorage.setItem('pkce', JSON.stringify({ verifier, state }));
    const url = new URL(as.authorization_endpoint);
    url.search = new URLSearchParams({ client_id: client.client_id, redirect_uri: redirectUri, response_type: 'code', scope: 'READ', state,
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' }).toString();
    location.assign(url.href);
  } else {
    const { verifier, state } = JSON.parse(sessionStorage.getItem('pkce'));
    const params = oauth.validateAuthResponse(as, client, new URL(location.href), state);
    const tokens = await oauth.processAuthorizationCodeResponse(as, client,
      await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, redirectUri, verifier, insecure));
    const refreshed = await oauth.processRefreshTokenResponse(as, client, await oauth.refreshTokenGrantRequest(as, client, oauth.None(), tokens.refresh_token, insecure));
    await oauth.processRevocationResponse(await oauth.revocationRequest(as, client, oauth.None(), tokens.refresh_token, insecure));
    let reuse = 'accepted';
    try {
      await oauth.processRefreshTokenResponse(as, client, await oauth.refreshTokenGrantRequest(as, client, oauth.None(), tokens.refresh_token, insecure));
    } catch (e) { reuse = e.error ?? String(e); }
    let introspection = 'readable';
    try {
      await fetch(as.introspection_endpoint, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'token=x' });
    } catch { introspection = 'blocked'; }
    done({ ok: true, scope: refreshed.scope, access: refreshed.access_token, reuse, introspection });
  }
} catch (e) { done({ ok: false, error: String(e), cause: String(e.cause ?? '') }); }
</script>`;
  const server = createServer((req, res) => {
    if (req.url === '/oauth4webapi.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      res.end(library);
    } else if (req.url?.startsWith('/app')) {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(html);
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}
