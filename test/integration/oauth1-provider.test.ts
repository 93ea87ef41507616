import { Readable } from 'node:stream';
import { createPublicKey, randomBytes } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { authorizationHeader } from '../../src/protocols/oauth1/client.js';
import { createHarness, DIALECTS, json, userWithToken, type Harness } from '../helpers/harness.js';
import { ACCESS_TOKEN, AUTHORIZE, authHeader, CALLBACK, consumerKeyPair, dance, formOf, problemOf, registerConsumer, REQUEST_TOKEN, signedInject, xmlAsPythonReadsIt, type TestConsumer } from '../helpers/oauth1.js';
import { CookieJar, hiddenFields, signIn } from '../helpers/oauth2.js';
import { startUpstream } from '../helpers/upstream.js';

const REALM = 'OAuth realm="http%3A%2F%2Fapplinks.test"';
const FIVE_YEARS = 157_680_000;

/** The problem a response reports, checked the way Jira renders it: status, header, body. */
function expectProblem(res: LightMyRequestResponse, problem: string, status: number): Record<string, string> {
  expect(res.statusCode, res.body).toBe(status);
  const header = String(res.headers['www-authenticate']);
  expect(header.startsWith(`${REALM}, oauth_problem="${problem}"`), header).toBe(true);
  expect(String(res.headers['content-type'])).toBe('application/x-www-form-urlencoded;charset=UTF-8');
  const body = formOf(res);
  expect(body.oauth_problem).toBe(problem);
  return body;
}

/** A hand-built OAuth header (for requests a correct client would never send). */
function rawHeader(params: Record<string, string>): string {
  return `OAuth ${Object.entries(params)
    .map(([k, v]) => `${k}="${encodeURIComponent(v)}"`)
    .join(', ')}`;
}

describe.each(DIALECTS)('OAuth 1.0a provider on %s', (dialect) => {
  let h: Harness;
  let jar: CookieJar;
  let rsa: TestConsumer;
  beforeEach(async () => {
    h = await createHarness(dialect);
    await userWithToken(h, 'alice', { password: 'alice-password' });
    rsa = await registerConsumer(h);
    jar = await signIn(h, 'alice', 'alice-password');
  });
  afterEach(async () => h.close());

  const myself = (c: TestConsumer, token?: { key: string; secret: string }, extra: Partial<Parameters<typeof signedInject>[2]> = {}) =>
    signedInject(h, c, { path: '/rest/api/2/myself', ...(token ? { token } : {}), ...extra });

  it('runs the 3-legged dance with Jira’s formats and then authenticates signed requests as the user', async () => {
    const rt = await signedInject(h, rsa, { method: 'POST', path: REQUEST_TOKEN, oauth: { oauth_callback: CALLBACK } });
    expect(rt.statusCode, rt.body).toBe(200);
    expect(rt.headers['content-type']).toBe('text/plain;charset=UTF-8');
    expect(rt.headers['cache-control']).toBe('no-store');
    expect(rt.body).toMatch(/^oauth_token=alort_[\w-]+&oauth_token_secret=[\w-]+&oauth_callback_confirmed=true$/);

    const token = formOf(rt).oauth_token!;
    const page = await h.inject({ url: `${AUTHORIZE}?oauth_token=${token}`, headers: { cookie: jar.header } });
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('<h1>Allow Outlook add-in to act for you?</h1>');
    expect(page.body).toContain('addin.example');
    // The lifetime in words, from configuration (5 years by default).
    expect(page.body).toContain('for up to 5 years.');
    expect(page.body).toMatch(/<button type="submit" name="approve" value="Allow" id="allow">Allow<\/button>/);
    expect(page.body).toMatch(/<button type="submit" name="deny" value="Deny" id="deny" class="secondary">Deny<\/button>/);
    expect(page.headers['x-frame-options']).toBe('DENY');

    const d = await dance(h, rsa, jar);
    expect(d.verifier).toMatch(/^[A-Za-z0-9]{6}$/);
    expect(d.accessResponse.statusCode, d.accessResponse.body).toBe(200);
    expect(Object.keys(d.body)).toEqual(['oauth_token', 'oauth_token_secret', 'oauth_expires_in', 'oauth_session_handle', 'oauth_authorization_expires_in']);
    expect(d.body).toMatchObject({ oauth_expires_in: String(FIVE_YEARS), oauth_authorization_expires_in: String(FIVE_YEARS + 2_592_000) });
    expect(d.body.oauth_token).toMatch(/^aloat_/);

    const res = await myself(rsa, d.access);
    expect(res.statusCode, res.body).toBe(200);
    expect(json(res)).toMatchObject({ authenticated: true, user: { username: 'alice' }, authType: 'oauth1', link: { id: rsa.linkId }, connection: 'gateway', warnings: [] });

    // The request token was single use.
    const again = await signedInject(h, rsa, { method: 'POST', path: ACCESS_TOKEN, token: d.requestToken, oauth: { oauth_verifier: d.verifier } });
    expectProblem(again, 'token_rejected', 401);
  });

  it('forwards to the host with the identity headers, form bodies intact, over the header, query and body transports', async () => {
    const upstream = await startUpstream();
    const g = await createHarness(dialect, { config: { upstreamUrl: upstream.url } });
    try {
      await userWithToken(g, 'alice', { password: 'alice-password' });
      const c = await registerConsumer(g, { method: 'HMAC-SHA1' });
      const d = await dance(g, c, await signIn(g, 'alice', 'alice-password'));
      const viaHeader = await signedInject(g, c, { method: 'POST', path: '/rest/api/2/issue?notify=false', token: d.access, form: { summary: 'a b+c', project: 'X' } });
      expect(viaHeader.statusCode, viaHeader.body).toBe(200);
      const seen = upstream.seen.at(-1)!;
      expect(seen.headers['x-applinks-user']).toBe('alice');
      expect(seen.headers['x-applinks-auth']).toBe('oauth1');
      expect(seen.headers['x-applinks-link']).toBe(c.linkId);
      expect(seen.headers.authorization).toBeUndefined();
      expect(seen.url).toBe('/rest/api/2/issue?notify=false');
      expect(seen.bodyLength).toBe(Buffer.byteLength('summary=a+b%2Bc&project=X'));

      // The protocol parameters in the query instead of the header (RFC 5849 §3.5.3).
      const header = authHeader(c, { path: '/rest/api/2/myself', token: d.access, now: g.clock.now() });
      const params = new URLSearchParams(header.slice(6).split(', ').map((p) => p.split('=').map((x, i) => (i === 1 ? decodeURIComponent(x.slice(1, -1)) : x)) as [string, string]));
      const viaQuery = await g.inject({ url: `/rest/api/2/myself?${params.toString()}` });
      expect(viaQuery.statusCode, viaQuery.body).toBe(200);
      expect(json(viaQuery)).toMatchObject({ name: 'alice' });
      // The credentials stop at the gateway, as a consumed Authorization header does.
      expect(upstream.seen.at(-1)!.url).toBe('/rest/api/2/myself');

      // And in a form-encoded body (§3.5.2), with no Authorization header at all.
      const body = new URLSearchParams({ comment: 'hello' });
      const signed = authHeader(c, { method: 'POST', path: '/rest/api/2/comment', token: d.access, form: { comment: 'hello' }, now: g.clock.now() });
      for (const part of signed.slice(6).split(', ')) {
        const [k, v] = part.split('=');
        body.append(k!, decodeURIComponent(v!.slice(1, -1)));
      }
      const viaBody = await g.inject({ method: 'POST', url: '/rest/api/2/comment', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: body.toString() });
      expect(viaBody.statusCode, viaBody.body).toBe(200);
      expect(upstream.seen.at(-1)!.headers['x-applinks-user']).toBe('alice');
      expect(upstream.seen.at(-1)!.bodyLength).toBe(Buffer.byteLength('comment=hello'));

      // The same, streamed without a Content-Length (chunked), as some HTTP clients send forms.
      const chunkedBody = new URLSearchParams({ comment: 'hello' });
      const signedAgain = authHeader(c, { method: 'POST', path: '/rest/api/2/comment', token: d.access, form: { comment: 'hello' }, now: g.clock.now() });
      for (const part of signedAgain.slice(6).split(', ')) {
        const [k, v] = part.split('=');
        chunkedBody.append(k!, decodeURIComponent(v!.slice(1, -1)));
      }
      const viaChunks = await g.inject({
        method: 'POST',
        url: '/rest/api/2/comment',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'transfer-encoding': 'chunked' },
        payload: Readable.from([Buffer.from(chunkedBody.toString())]),
      });
      expect(viaChunks.statusCode, viaChunks.body).toBe(200);
      expect(upstream.seen.at(-1)!.headers['x-applinks-user']).toBe('alice');
      expect(upstream.seen.at(-1)!.bodyLength).toBe(Buffer.byteLength('comment=hello'));

      // An anonymous form post is not OAuth's: it reaches the host unauthenticated.
      const anonymous = await g.inject({ method: 'POST', url: '/rest/api/2/comment', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'comment=hi' });
      expect(anonymous.statusCode).toBe(200);
      expect(upstream.seen.at(-1)!.headers['x-applinks-user']).toBeUndefined();
    } finally {
      await g.close();
      await upstream.close();
    }
  });

  it('shows the verifier for oob, redirects a denial, and answers permission_unknown before the decision', async () => {
    // oob: the verifier is shown, and exchanging it works.
    const rt = formOf(await signedInject(h, rsa, { method: 'POST', path: REQUEST_TOKEN, oauth: { oauth_callback: 'oob' } }));
    const requestToken = { key: rt.oauth_token!, secret: rt.oauth_token_secret! };
    const early = await signedInject(h, rsa, { method: 'POST', path: ACCESS_TOKEN, token: requestToken, oauth: { oauth_verifier: 'abcdef' } });
    expectProblem(early, 'permission_unknown', 401);
    const page = await h.inject({ url: `${AUTHORIZE}?oauth_token=${rt.oauth_token}`, headers: { cookie: jar.header } });
    expect(page.body).toContain('you will be shown a code');
    jar.take(page);
    const form = hiddenFields(page.body);
    form.set('approve', 'Allow');
    const shown = await h.inject({ method: 'POST', url: AUTHORIZE, headers: { cookie: jar.header, 'content-type': 'application/x-www-form-urlencoded' }, payload: form.toString() });
    expect(shown.statusCode).toBe(200);
    const verifier = /<code class="secret" id="verifier">([A-Za-z0-9]{6})<\/code>/.exec(shown.body)![1]!;
    const wrong = await signedInject(h, rsa, { method: 'POST', path: ACCESS_TOKEN, token: requestToken, oauth: { oauth_verifier: verifier === 'AAAAAA' ? 'BBBBBB' : 'AAAAAA' } });
    expectProblem(wrong, 'token_rejected', 401);
    const missing = await signedInject(h, rsa, { method: 'POST', path: ACCESS_TOKEN, token: requestToken });
    expect(expectProblem(missing, 'parameter_absent', 400).oauth_parameters_absent).toBe('oauth_verifier');
    expect((await signedInject(h, rsa, { method: 'POST', path: ACCESS_TOKEN, token: requestToken, oauth: { oauth_verifier: verifier } })).statusCode).toBe(200);

    // Deny: back to the callback marked denied; the exchange is permission_denied.
    const denied = await dance(h, rsa, jar, 'deny');
    expect(denied.verifier).toBe('denied');
    expectProblem(denied.accessResponse, 'permission_denied', 401);
  });

  it('sends a visitor to sign in first and protects the decision with CSRF', async () => {
    const rt = formOf(await signedInject(h, rsa, { method: 'POST', path: REQUEST_TOKEN, oauth: { oauth_callback: CALLBACK } }));
    const anonymous = await h.inject({ url: `${AUTHORIZE}?oauth_token=${rt.oauth_token}` });
    expect(anonymous.statusCode).toBe(303);
    expect(anonymous.headers.location).toBe(`/applinks/login?next=${encodeURIComponent(`${AUTHORIZE}?oauth_token=${rt.oauth_token}`)}`);
    const forged = await h.inject({ method: 'POST', url: AUTHORIZE, headers: { cookie: jar.header, 'content-type': 'application/x-www-form-urlencoded' }, payload: `oauth_token=${rt.oauth_token}&approve=Allow` });
    expect(forged.statusCode).toBe(403);
    expect(forged.headers.location).toBeUndefined();
    // Unknown and expired tokens get a page, never a redirect.
    const unknown = await h.inject({ url: `${AUTHORIZE}?oauth_token=alort_nope`, headers: { cookie: jar.header } });
    expect(unknown.statusCode).toBe(401);
    expect(unknown.body).toContain('unknown or was already used');
    h.clock.advance(601_000);
    const expired = await h.inject({ url: `${AUTHORIZE}?oauth_token=${rt.oauth_token}`, headers: { cookie: jar.header } });
    expect(expired.body).toContain('has expired');
    expect(expired.headers.location).toBeUndefined();
    const late = await signedInject(h, rsa, { method: 'POST', path: ACCESS_TOKEN, token: { key: rt.oauth_token!, secret: rt.oauth_token_secret! }, oauth: { oauth_verifier: 'abcdef' } });
    expectProblem(late, 'token_expired', 401);
  });

  /** The consent page for a request token, then Allow, as the jar's user: answers the decision's response. */
  async function allow(on: Harness, cookies: CookieJar, token: string, query = ''): Promise<LightMyRequestResponse> {
    const page = await on.inject({ url: `${AUTHORIZE}?oauth_token=${encodeURIComponent(token)}${query}`, headers: { cookie: cookies.header } });
    expect(page.statusCode, page.body).toBe(200);
    cookies.take(page);
    const form = hiddenFields(page.body);
    form.set('approve', 'Allow');
    return on.inject({ method: 'POST', url: AUTHORIZE, headers: { cookie: cookies.header, 'content-type': 'application/x-www-form-urlencoded' }, payload: form.toString() });
  }
  const shownVerifier = (res: LightMyRequestResponse) => {
    expect(res.statusCode, res.body).toBe(200);
    return /<code class="secret" id="verifier">([A-Za-z0-9]{6})<\/code>/.exec(res.body)![1]!;
  };

  it('refuses OAuth 1.0 (no oauth_callback) unless the dangerous switch is on; then its tokens are exchanged without a verifier', async () => {
    // By default only 1.0a: the request-token call must name a callback (or oob).
    expect(expectProblem(await signedInject(h, rsa, { method: 'POST', path: REQUEST_TOKEN }), 'parameter_absent', 400).oauth_parameters_absent).toBe('oauth_callback');

    const legacy = await createHarness(dialect, { config: { oauth1DangerouslyAllowOAuth10: true } });
    try {
      await userWithToken(legacy, 'alice', { password: 'alice-password' });
      const cookies = await signIn(legacy, 'alice', 'alice-password');
      const c = await registerConsumer(legacy);
      const rt = await signedInject(legacy, c, { method: 'POST', path: REQUEST_TOKEN });
      expect(rt.statusCode, rt.body).toBe(200);
      // A 1.0 token: no oauth_callback_confirmed (Jira flags such a token version 1.0).
      expect(rt.body).toMatch(/^oauth_token=alort_[\w-]+&oauth_token_secret=[\w-]+$/);
      const token = { key: formOf(rt).oauth_token!, secret: formOf(rt).oauth_token_secret! };
      expectProblem(await signedInject(legacy, c, { method: 'POST', path: ACCESS_TOKEN, token }), 'permission_unknown', 401);
      // No callback anywhere (none registered for this consumer): the verifier is shown, and the client need not send it.
      const verifier = shownVerifier(await allow(legacy, cookies, token.key));
      expectProblem(await signedInject(legacy, c, { method: 'POST', path: ACCESS_TOKEN, token, oauth: { oauth_verifier: verifier === 'AAAAAA' ? 'BBBBBB' : 'AAAAAA' } }), 'token_rejected', 401);
      const at = await signedInject(legacy, c, { method: 'POST', path: ACCESS_TOKEN, token });
      expect(at.statusCode, at.body).toBe(200);
      expect(Object.keys(formOf(at))).toEqual(['oauth_token', 'oauth_token_secret', 'oauth_expires_in', 'oauth_session_handle', 'oauth_authorization_expires_in']);
      const access = { key: formOf(at).oauth_token!, secret: formOf(at).oauth_token_secret! };
      expect(json(await signedInject(legacy, c, { path: '/rest/api/2/myself', token: access }))).toMatchObject({ user: { username: 'alice' }, authType: 'oauth1' });

      // A 1.0 client may name its callback at the authorize step instead; the page posts it back.
      const named = formOf(await signedInject(legacy, c, { method: 'POST', path: REQUEST_TOKEN }));
      const sent = await allow(legacy, cookies, named.oauth_token!, `&oauth_callback=${encodeURIComponent('https://addin.example/named?x=1')}`);
      expect(sent.statusCode, sent.body).toBe(303);
      const back = new URL(String(sent.headers.location));
      expect(back.origin + back.pathname).toBe('https://addin.example/named');
      expect([...back.searchParams.keys()]).toEqual(['x', 'oauth_token', 'oauth_verifier']);
      expect(back.searchParams.get('oauth_token')).toBe(named.oauth_token);
    } finally {
      await legacy.close();
    }
  });

  it('sends a 1.0 user back to the consumer’s registered callback when the request named none, but shows oob’s verifier', async () => {
    const legacy = await createHarness(dialect, { config: { oauth1DangerouslyAllowOAuth10: true } });
    try {
      await userWithToken(legacy, 'alice', { password: 'alice-password' });
      const cookies = await signIn(legacy, 'alice', 'alice-password');
      const registered = 'https://addin.example/registered?from=registration';
      const c = await registerConsumer(legacy, { config: { callback: registered } });
      const rt = formOf(await signedInject(legacy, c, { method: 'POST', path: REQUEST_TOKEN }));
      const page = await legacy.inject({ url: `${AUTHORIZE}?oauth_token=${rt.oauth_token}`, headers: { cookie: cookies.header } });
      expect(page.body).toContain('your browser returns to <strong>addin.example</strong>');
      const decided = await allow(legacy, cookies, rt.oauth_token!);
      expect(decided.statusCode, decided.body).toBe(303);
      const back = new URL(String(decided.headers.location));
      expect(`${back.origin}${back.pathname}?from=${back.searchParams.get('from')}`).toBe(registered);
      expect(back.searchParams.get('oauth_token')).toBe(rt.oauth_token);
      const verifier = back.searchParams.get('oauth_verifier')!;
      expect(verifier).toMatch(/^[A-Za-z0-9]{6}$/);
      // A 1.0 client may still send the verifier it was brought.
      const token = { key: rt.oauth_token!, secret: rt.oauth_token_secret! };
      expect((await signedInject(legacy, c, { method: 'POST', path: ACCESS_TOKEN, token, oauth: { oauth_verifier: verifier } })).statusCode).toBe(200);

      // oob said "no callback": the registered one is not used then.
      const oob = formOf(await signedInject(legacy, c, { method: 'POST', path: REQUEST_TOKEN, oauth: { oauth_callback: 'oob' } }));
      shownVerifier(await allow(legacy, cookies, oob.oauth_token!));
    } finally {
      await legacy.close();
    }
  });

  it('refuses to exchange another consumer’s request token, and leaves it to its own consumer', async () => {
    // The same RSA key pair, another consumer key: only the key tells them apart.
    const other = await registerConsumer(h);
    const rt = formOf(await signedInject(h, rsa, { method: 'POST', path: REQUEST_TOKEN, oauth: { oauth_callback: 'oob' } }));
    const verifier = shownVerifier(await allow(h, jar, rt.oauth_token!));
    const token = { key: rt.oauth_token!, secret: rt.oauth_token_secret! };
    expectProblem(await signedInject(h, other, { method: 'POST', path: ACCESS_TOKEN, token, oauth: { oauth_verifier: verifier } }), 'token_rejected', 401);
    const own = await signedInject(h, rsa, { method: 'POST', path: ACCESS_TOKEN, token, oauth: { oauth_verifier: verifier } });
    expect(own.statusCode, own.body).toBe(200);
  });

  it('revokes what a consumer was issued when a PUT gives its link a new consumer key; the same key keeps it', async () => {
    const put = (config: Record<string, unknown>) =>
      h.inject({ method: 'PUT', url: `/api/v1/links/${rsa.linkId}/incoming/oauth1`, headers: { authorization: h.adminBasic }, payload: { name: 'Outlook add-in', publicKey: consumerKeyPair().publicPem, ...config } });
    const d = await dance(h, rsa, jar);
    const pending = formOf(await signedInject(h, rsa, { method: 'POST', path: REQUEST_TOKEN, oauth: { oauth_callback: 'oob' } }));
    // The same key with another name: still the same consumer.
    expect((await put({ consumerKey: rsa.key, name: 'Renamed add-in' })).statusCode).toBe(200);
    expect((await myself(rsa, d.access)).statusCode).toBe(200);

    const renamed: TestConsumer = { ...rsa, key: `${rsa.key}-new` };
    const changed = await put({ consumerKey: renamed.key });
    expect(changed.statusCode, changed.body).toBe(200);
    expectProblem(await myself(rsa, d.access), 'consumer_key_unknown', 401);
    expectProblem(await myself(renamed, d.access), 'token_rejected', 401);
    expect(json<{ authorizations: unknown[] }>(await h.inject({ url: '/api/v1/me/authorizations', headers: { cookie: jar.header } })).authorizations).toEqual([]);
    // Given its old key back, the link does not bring back what the old consumer held: those tokens
    // are gone. (The key was just refused as unknown: this instance knows it again at once.)
    expect((await put({ consumerKey: rsa.key })).statusCode).toBe(200);
    expectProblem(await myself(rsa, d.access), 'token_rejected', 401);
    const requestToken = { key: pending.oauth_token!, secret: pending.oauth_token_secret! };
    expectProblem(await signedInject(h, rsa, { method: 'POST', path: ACCESS_TOKEN, token: requestToken, oauth: { oauth_verifier: 'abcdef' } }), 'token_rejected', 401);
    // And the new consumer starts from nothing.
    expect((await dance(h, rsa, jar)).accessResponse.statusCode).toBe(200);
  });

  it('knows a consumer key as soon as it is registered, even one it refused as unknown a moment before', async () => {
    const early: TestConsumer = { ...rsa, key: `consumer-${randomBytes(4).toString('hex')}` };
    const empty = { key: '', secret: '' };
    expectProblem(await myself(early, empty), 'consumer_key_unknown', 401);
    const created = await h.inject({
      method: 'POST',
      url: '/api/v1/links',
      headers: { authorization: h.adminBasic },
      payload: { name: 'Registered late', incoming: { oauth1: { consumerKey: early.key, name: 'Late add-in', publicKey: consumerKeyPair().publicPem, allow2LO: true, executeAs: 'alice' } } },
    });
    expect(created.statusCode, created.body).toBe(201);
    expect(json(await myself(early, empty))).toMatchObject({ user: { username: 'alice' }, authType: 'oauth1-2lo' });
  });

  it('holds oauth_timestamp to a configured window (oauth1TimestampWindowSeconds), not Jira’s 300 s', async () => {
    const narrow = await createHarness(dialect, { config: { oauth1TimestampWindowSeconds: 60 } });
    try {
      await userWithToken(narrow, 'alice');
      const c = await registerConsumer(narrow, { method: 'HMAC-SHA1', config: { allow3LO: false, allow2LO: true, executeAs: 'alice' } });
      // On a whole second, so the acceptable range is exactly ±60 s (net.oauth rounds half up).
      narrow.clock.set(Math.floor(narrow.clock.now() / 1000) * 1000);
      const now = narrow.clock.now() / 1000;
      const signedAt = (offset: number) => signedInject(narrow, c, { path: '/rest/api/2/myself', token: { key: '', secret: '' }, now: (now + offset) * 1000 });
      for (const offset of [-60, 60]) {
        const res = await signedAt(offset);
        expect(res.statusCode, `${offset}: ${res.body}`).toBe(200);
      }
      for (const offset of [-61, 61, -300, 300]) {
        const res = await signedAt(offset);
        expect(expectProblem(res, 'timestamp_refused', 400).oauth_acceptable_timestamps, String(offset)).toBe(`${now - 60}-${now + 60}`);
        expect(String(res.headers['www-authenticate'])).toContain(`oauth_acceptable_timestamps="${now - 60}-${now + 60}"`);
      }
    } finally {
      await narrow.close();
    }
  });

  it('keeps one live token per user and consumer, renews with the session handle, and expires tokens', async () => {
    const first = await dance(h, rsa, jar);
    const second = await dance(h, rsa, jar);
    expectProblem(await myself(rsa, first.access), 'token_revoked', 401);
    expect((await myself(rsa, second.access)).statusCode).toBe(200);

    const renew = (token: { key: string; secret: string }, handle?: string) =>
      signedInject(h, rsa, { method: 'POST', path: ACCESS_TOKEN, token, ...(handle !== undefined ? { oauth: { oauth_session_handle: handle } } : {}) });
    expect(expectProblem(await renew(second.access!), 'parameter_absent', 400).oauth_parameters_absent).toBe('oauth_session_handle');
    expectProblem(await renew(second.access!, 'alosh_wrong'), 'token_rejected', 401);

    // Past the access token's lifetime but within the session: expired, and renewable.
    h.clock.advance(FIVE_YEARS * 1000 + 1000);
    expectProblem(await myself(rsa, second.access), 'token_expired', 401);
    const renewed = await renew(second.access!, second.body.oauth_session_handle);
    expect(renewed.statusCode, renewed.body).toBe(200);
    const next = formOf(renewed);
    expect(next.oauth_session_handle).toBe(second.body.oauth_session_handle);
    // Renewing renews the session too (Atlassian's session lives its time to live from its last renewal).
    expect(Number(next.oauth_expires_in)).toBe(FIVE_YEARS);
    expect(Number(next.oauth_authorization_expires_in)).toBe(FIVE_YEARS + 2_592_000);
    expect((await myself(rsa, { key: next.oauth_token!, secret: next.oauth_token_secret! })).statusCode).toBe(200);
    expectProblem(await renew(second.access!, second.body.oauth_session_handle), 'token_revoked', 401);

    // Past the session, counted from the last renewal: the authorization is over.
    h.clock.advance((FIVE_YEARS + 2_592_000) * 1000 + 1000);
    expectProblem(await renew({ key: next.oauth_token!, secret: next.oauth_token_secret! }, next.oauth_session_handle), 'permission_denied', 401);
  });

  it('refuses an oauth_callback that is not made of URI characters, before anything is stored', async () => {
    for (const callback of ['https://consumer.example/cb/€', 'https://consumer.example/cb?x=ü']) {
      const res = await signedInject(h, rsa, { method: 'POST', path: REQUEST_TOKEN, oauth: { oauth_callback: callback } });
      expect(expectProblem(res, 'parameter_rejected', 400).oauth_parameters_rejected).toBe('oauth_callback');
    }
    // Percent-encoded, it is a URI, and is sent back as given.
    const ok = await signedInject(h, rsa, { method: 'POST', path: REQUEST_TOKEN, oauth: { oauth_callback: 'https://consumer.example/cb/%E2%82%AC' } });
    expect(ok.statusCode, ok.body).toBe(200);
  });

  it('acts 2-legged as the configured user, anonymously, or as the named user when impersonation is allowed', async () => {
    await userWithToken(h, 'bob', { password: 'bob-password' });
    const asAlice = await registerConsumer(h, { method: 'HMAC-SHA1', config: { allow3LO: false, allow2LO: true, executeAs: 'alice' } });
    const empty = { key: '', secret: '' };
    expect(json(await myself(asAlice, empty))).toMatchObject({ user: { username: 'alice' }, authType: 'oauth1-2lo', link: { id: asAlice.linkId } });
    // node-oauth drops an empty oauth_token: accepted as 2-legged too (our extension).
    expect(json(await myself(asAlice))).toMatchObject({ user: { username: 'alice' }, authType: 'oauth1-2lo' });
    // A blank requestor names nobody: plain 2-legged, not a refused impersonation.
    expect(json(await signedInject(h, asAlice, { path: '/rest/api/2/myself?xoauth_requestor_id=', token: empty }))).toMatchObject({ user: { username: 'alice' }, authType: 'oauth1-2lo' });
    expect(json(await signedInject(h, asAlice, { path: '/rest/api/2/myself?user_id=', token: empty }))).toMatchObject({ user: { username: 'alice' }, authType: 'oauth1-2lo' });
    // Impersonation is off for this consumer, and 3LO is off.
    expectProblem(await signedInject(h, asAlice, { path: '/rest/api/2/myself?xoauth_requestor_id=bob' }), 'permission_denied', 401);
    expectProblem(await signedInject(h, asAlice, { method: 'POST', path: REQUEST_TOKEN, oauth: { oauth_callback: CALLBACK } }), 'permission_denied', 401);

    const nobody = await registerConsumer(h, { method: 'HMAC-SHA1', config: { allow2LO: true } });
    expect(json(await myself(nobody, empty))).toMatchObject({ authenticated: false, user: null, authType: 'oauth1-2lo', link: { id: nobody.linkId } });

    const off = await registerConsumer(h);
    expectProblem(await myself(off, empty), 'permission_denied', 401);

    const impersonating = await registerConsumer(h, { config: { allow2LOImpersonation: true } });
    const asBob = await signedInject(h, impersonating, { path: '/rest/api/2/myself?xoauth_requestor_id=bob' });
    expect(json(asBob)).toMatchObject({ user: { username: 'bob' }, authType: 'oauth1-2lo-impersonation', warnings: [{ code: 'impersonation' }] });
    expect(json(await signedInject(h, impersonating, { path: '/rest/api/2/myself?user_id=alice' }))).toMatchObject({ user: { username: 'alice' }, authType: 'oauth1-2lo-impersonation' });
    expectProblem(await signedInject(h, impersonating, { path: '/rest/api/2/myself?xoauth_requestor_id=nobody' }), 'permission_denied', 401);
    expectProblem(await signedInject(h, impersonating, { path: '/rest/api/2/myself?user_id=alice&user_id=bob' }), 'parameter_rejected', 400);
    const bob = await h.services.users.findByUsername('bob');
    await h.inject({ method: 'PATCH', url: `/api/v1/users/${bob!.id}`, headers: { authorization: h.adminBasic }, payload: { disabled: true } });
    expectProblem(await signedInject(h, impersonating, { path: '/rest/api/2/myself?xoauth_requestor_id=bob' }), 'permission_denied', 401);
    // Without a user named, impersonation alone is not 2-legged access.
    expectProblem(await myself(impersonating, empty), 'permission_denied', 401);
  });

  it('provokes every problem code with Jira’s status and rendering', async () => {
    const hmac = await registerConsumer(h, { method: 'HMAC-SHA1' });
    // On a whole second, so the acceptable range is exactly ±300 s (net.oauth rounds half up).
    h.clock.set(Math.floor(h.clock.now() / 1000) * 1000);
    const now = h.clock.now() / 1000;
    const base = { oauth_consumer_key: rsa.key, oauth_signature_method: 'RSA-SHA1', oauth_signature: 'x', oauth_timestamp: String(now), oauth_nonce: 'n' };
    const raw = (params: Record<string, string>, url = '/rest/api/2/myself') => h.inject({ url, headers: { authorization: rawHeader(params) } });

    expect(expectProblem(await raw({ ...base, oauth_version: '2.0' }), 'version_rejected', 400).oauth_acceptable_versions).toBe('1.0-1.0');
    const { oauth_nonce: _n, oauth_timestamp: _t, ...noNonce } = base;
    expect(expectProblem(await raw(noNonce), 'parameter_absent', 400).oauth_parameters_absent).toBe('oauth_timestamp&oauth_nonce');
    expect(expectProblem(await raw(base, '/rest/api/2/myself?oauth_nonce=again'), 'parameter_rejected', 400).oauth_parameters_rejected).toBe('oauth_nonce');
    expectProblem(await h.inject({ url: '/x', headers: { authorization: 'OAuth oauth_consumer_key="unterminated' } }), 'parameter_rejected', 400);
    const stale = await raw({ ...base, oauth_timestamp: String(now - 301) });
    expect(expectProblem(stale, 'timestamp_refused', 400).oauth_acceptable_timestamps).toBe(`${now - 300}-${now + 300}`);
    expect(String(stale.headers['www-authenticate'])).toContain(`oauth_acceptable_timestamps="${now - 300}-${now + 300}"`);
    expectProblem(await raw({ ...base, oauth_consumer_key: 'nobody' }), 'consumer_key_unknown', 401);
    expectProblem(await raw({ ...base, oauth_signature_method: 'HMAC-SHA1' }), 'signature_method_rejected', 400);
    expectProblem(await raw({ ...base, oauth_signature_method: 'MD5' }), 'signature_method_rejected', 400);
    // PLAINTEXT only over https.
    expectProblem(await raw({ ...base, oauth_consumer_key: hmac.key, oauth_signature_method: 'PLAINTEXT' }), 'signature_method_rejected', 400);
    const bad = expectProblem(await raw({ ...base, oauth_token: '' }), 'signature_invalid', 401);
    expect(bad.oauth_signature_base_string).toBeUndefined();

    // A correctly signed request, then the same request again.
    const d = await dance(h, rsa, jar);
    const header = authHeader(rsa, { path: '/rest/api/2/myself', token: d.access, now: h.clock.now() });
    expect((await h.inject({ url: '/rest/api/2/myself', headers: { authorization: header } })).statusCode).toBe(200);
    expectProblem(await h.inject({ url: '/rest/api/2/myself', headers: { authorization: header } }), 'nonce_used', 401);
    // Tampered: the same header on another URL.
    expectProblem(await h.inject({ url: '/rest/api/2/other', headers: { authorization: authHeader(rsa, { path: '/rest/api/2/myself', token: d.access, now: h.clock.now() }) } }), 'signature_invalid', 401);
    // Tokens: unknown, a request token on a resource, another consumer's token.
    expectProblem(await myself(rsa, { key: 'aloat_unknown', secret: 'x' }), 'token_rejected', 401);
    expectProblem(await myself(rsa, { key: d.requestToken.key, secret: d.requestToken.secret }), 'token_rejected', 401);
    const other = await registerConsumer(h);
    expectProblem(await myself(other, d.access), 'token_rejected', 401);
    // A request-token call with a bad callback.
    const badCallback = await signedInject(h, rsa, { method: 'POST', path: REQUEST_TOKEN, oauth: { oauth_callback: 'javascript:alert(1)' } });
    expect(expectProblem(badCallback, 'parameter_rejected', 400).oauth_parameters_rejected).toBe('oauth_callback');
    const noCallback = await signedInject(h, rsa, { method: 'POST', path: REQUEST_TOKEN });
    expect(expectProblem(noCallback, 'parameter_absent', 400).oauth_parameters_absent).toBe('oauth_callback');
    // A body that is not form-encoded carries no parameters (RFC 5849 §3.5.2): it is not read,
    // whatever it holds, and the signed request is answered as without it.
    for (const [type, payload] of [['application/json', '{bad'], ['application/octet-stream', 'x'], [undefined, 'x']] as const) {
      const headers: Record<string, string> = { authorization: authHeader(rsa, { method: 'POST', path: REQUEST_TOKEN, oauth: { oauth_callback: 'oob' }, now: h.clock.now() }) };
      if (type) headers['content-type'] = type;
      const res = await h.inject({ method: 'POST', url: REQUEST_TOKEN, headers, payload });
      expect([res.statusCode, formOf(res).oauth_callback_confirmed], type).toEqual([200, 'true']);
    }
    // GET (and OPTIONS) on the token endpoints.
    for (const method of ['GET', 'OPTIONS'] as const) {
      const get = await h.inject({ method, url: REQUEST_TOKEN });
      expect(get.statusCode).toBe(405);
      expect(get.headers.allow).toBe('POST');
    }
    // Nothing of this was a server error.
    expect(h.logs.filter((l) => /"level":50/.test(l))).toEqual([]);
  });

  it('accepts PLAINTEXT from a shared-secret consumer over https, and HMAC-SHA256 and RSA-SHA256', async () => {
    const tls = await createHarness(dialect, { config: { baseUrl: 'https://applinks.test' } });
    try {
      const hmac = await registerConsumer(tls, { method: 'HMAC-SHA1', config: { allow2LO: true } });
      const at = Math.floor(tls.clock.now() / 1000);
      const plaintext = authorizationHeader({ method: 'GET', url: 'https://applinks.test/x', consumerKey: hmac.key, token: '', signatureMethod: 'PLAINTEXT', secrets: { consumerSecret: hmac.secret! }, timestamp: at });
      expect(json(await tls.inject({ url: '/x', headers: { authorization: plaintext } }))).toMatchObject({ authType: 'oauth1-2lo' });
      // The https base URL does not make a plain-http request from elsewhere https: the secret went in clear.
      const direct = authorizationHeader({ method: 'GET', url: 'https://applinks.test/x', consumerKey: hmac.key, token: '', signatureMethod: 'PLAINTEXT', secrets: { consumerSecret: hmac.secret! }, timestamp: at });
      expect(problemOf(await tls.inject({ url: '/x', remoteAddress: '192.0.2.7', headers: { authorization: direct } }))).toBe('signature_method_rejected');
      const wrong = authorizationHeader({ method: 'GET', url: 'https://applinks.test/x', consumerKey: hmac.key, token: '', signatureMethod: 'PLAINTEXT', secrets: { consumerSecret: 'not-the-secret' }, timestamp: at });
      expect(problemOf(await tls.inject({ url: '/x', headers: { authorization: wrong } }))).toBe('signature_invalid');
      const sha256 = authorizationHeader({ method: 'GET', url: 'https://applinks.test/x', consumerKey: hmac.key, token: '', signatureMethod: 'HMAC-SHA256', secrets: { consumerSecret: hmac.secret! }, timestamp: at });
      expect(json(await tls.inject({ url: '/x', headers: { authorization: sha256 } }))).toMatchObject({ authType: 'oauth1-2lo' });
      const rsa256 = await registerConsumer(tls, { config: { allow2LO: true } });
      const signed = authorizationHeader({ method: 'GET', url: 'https://applinks.test/x', consumerKey: rsa256.key, token: '', signatureMethod: 'RSA-SHA256', secrets: { rsaKey: rsa256.privateKey! }, timestamp: at });
      expect(json(await tls.inject({ url: '/x', headers: { authorization: signed } }))).toMatchObject({ authType: 'oauth1-2lo', warnings: [] });
    } finally {
      await tls.close();
    }
  });

  it('echoes the base string with signature_invalid only when the debug switch is on', async () => {
    const debug = await createHarness(dialect, { config: { oauth1DebugSignatures: true } });
    try {
      const c = await registerConsumer(debug);
      const header = authHeader(c, { path: '/signed', now: debug.clock.now(), token: { key: '', secret: '' } });
      const res = await debug.inject({ url: '/unsigned', headers: { authorization: header } });
      expect(formOf(res).oauth_signature_base_string).toMatch(/^GET&http%3A%2F%2Fapplinks.test%2Funsigned&/);
    } finally {
      await debug.close();
    }
  });

  it('revokes at once: by the user, per link, per user, by deleting the link or the consumer, by disabling the user', async () => {
    const alice = (await h.services.users.findByUsername('alice'))!;
    const listed = json<{ authorizations: Array<Record<string, unknown>> }>(await h.inject({ url: '/api/v1/me/authorizations', headers: { cookie: jar.header } }));
    expect(listed.authorizations).toEqual([]);
    let d = await dance(h, rsa, jar);
    expect((await myself(rsa, d.access)).statusCode).toBe(200);
    const mine = json<{ authorizations: Array<{ id: string; type: string; application: { name: string }; lastUsedAt: string | null }> }>(
      await h.inject({ url: '/api/v1/me/authorizations', headers: { cookie: jar.header } }),
    ).authorizations;
    expect(mine).toMatchObject([{ id: `oauth1:${rsa.linkId}`, type: 'oauth1', application: { name: 'Outlook add-in' } }]);
    expect(mine[0]!.lastUsedAt).not.toBeNull();
    // The account page lists it with a revoke button: in its row, a form posting to its revocation with the CSRF token.
    const account = await h.inject({ url: '/applinks/account', headers: { cookie: jar.header } });
    const row = [...account.body.matchAll(/<tr>(?:(?!<\/tr>)[\s\S])*<\/tr>/g)].map((m) => m[0]).find((r) => r.includes('Outlook add-in'));
    expect(row, account.body).toBeDefined();
    const form = /<form class="inline" method="post" action="([^"]+)">(.*?)<\/form>/.exec(row!);
    expect(form?.[1]).toBe(`/applinks/account/authorizations/oauth1:${rsa.linkId}/revoke`);
    expect(form![2]).toMatch(/^<input type="hidden" name="csrf_token" value="[^"]+"><button class="danger" type="submit" aria-label="Revoke Outlook add-in">Revoke<\/button>$/);

    // The user revokes (API, with the session's CSRF header: use an API token instead).
    const { bearer } = await userWithToken(h, 'carol', { password: 'carol-password' });
    const carolJar = await signIn(h, 'carol', 'carol-password');
    const carolDance = await dance(h, rsa, carolJar);
    expect((await h.inject({ method: 'DELETE', url: `/api/v1/me/authorizations/oauth1:${rsa.linkId}`, headers: { authorization: bearer } })).statusCode).toBe(204);
    expectProblem(await myself(rsa, carolDance.access), 'token_revoked', 401);
    expect((await myself(rsa, d.access)).statusCode).toBe(200);

    // An administrator revokes one user's authorization.
    expect((await h.inject({ method: 'DELETE', url: `/api/v1/users/${alice.id}/authorizations/oauth1:${rsa.linkId}`, headers: { authorization: h.adminBasic } })).statusCode).toBe(204);
    expectProblem(await myself(rsa, d.access), 'token_revoked', 401);

    // ... or everything issued through the link, which stays.
    d = await dance(h, rsa, jar);
    const perLink = await h.inject({ method: 'DELETE', url: `/api/v1/links/${rsa.linkId}/authorizations`, headers: { authorization: h.adminBasic } });
    expect(json(perLink)).toEqual({ revoked: 1 });
    expectProblem(await myself(rsa, d.access), 'token_revoked', 401);

    // Disabling the user revokes their token at once: enabling them again brings it not back.
    d = await dance(h, rsa, jar);
    await h.inject({ method: 'PATCH', url: `/api/v1/users/${alice.id}`, headers: { authorization: h.adminBasic }, payload: { disabled: true } });
    expectProblem(await myself(rsa, d.access), 'token_revoked', 401);
    await h.inject({ method: 'PATCH', url: `/api/v1/users/${alice.id}`, headers: { authorization: h.adminBasic }, payload: { disabled: false } });
    expectProblem(await myself(rsa, d.access), 'token_revoked', 401);
    jar = await signIn(h, 'alice', 'alice-password');

    // An administrator revokes everything a user authorized, in one call.
    d = await dance(h, rsa, jar);
    const all = await h.inject({ method: 'DELETE', url: `/api/v1/users/${alice.id}/authorizations`, headers: { authorization: h.adminBasic } });
    expect(json(all)).toEqual({ revoked: 1 });
    expectProblem(await myself(rsa, d.access), 'token_revoked', 401);
    expect((await h.inject({ method: 'DELETE', url: '/api/v1/users/00000000-0000-0000-0000-000000000000/authorizations', headers: { authorization: h.adminBasic } })).statusCode).toBe(404);

    // Removing the consumer, or deleting the link: the consumer is unknown on the next request.
    d = await dance(h, rsa, jar);
    expect((await h.inject({ method: 'DELETE', url: `/api/v1/links/${rsa.linkId}/incoming/oauth1`, headers: { authorization: h.adminBasic } })).statusCode).toBe(200);
    expectProblem(await myself(rsa, d.access), 'consumer_key_unknown', 401);
    const again = await registerConsumer(h);
    d = await dance(h, again, jar);
    expect((await myself(again, d.access)).statusCode).toBe(200);
    expect((await h.inject({ method: 'DELETE', url: `/api/v1/links/${again.linkId}`, headers: { authorization: h.adminBasic } })).statusCode).toBe(204);
    expectProblem(await myself(again, d.access), 'consumer_key_unknown', 401);
  });

  it('verifies signatures over the URL the client saw: a base URL with a port and a path, or a trusted proxy', async () => {
    // Behind a proxy that removes /ctx, on a non-default port: the client signed the public URL.
    const ctx = await createHarness(dialect, { config: { baseUrl: 'https://jira.example.com:8443/ctx' } });
    try {
      await userWithToken(ctx, 'alice');
      const c = await registerConsumer(ctx, { method: 'HMAC-SHA1', config: { allow3LO: false, allow2LO: true, executeAs: 'alice' } });
      const token = { key: '', secret: '' };
      const signedPublic = authHeader(c, { base: 'https://jira.example.com:8443/ctx', path: '/rest/api/2/myself?expand=groups', token, now: ctx.clock.now() });
      const ok = await ctx.inject({ url: '/rest/api/2/myself?expand=groups', headers: { authorization: signedPublic } });
      expect(ok.statusCode, ok.body).toBe(200);
      expect(json(ok)).toMatchObject({ user: { username: 'alice' }, authType: 'oauth1-2lo' });
      // Signed for the internal address instead: refused.
      const signedInternal = authHeader(c, { base: 'http://127.0.0.1:8080', path: '/rest/api/2/myself?expand=groups', token, now: ctx.clock.now() });
      expect(problemOf(await ctx.inject({ url: '/rest/api/2/myself?expand=groups', headers: { authorization: signedInternal } }))).toBe('signature_invalid');
    } finally {
      await ctx.close();
    }

    // No base URL configured: scheme and host from a trusted proxy's X-Forwarded-*, default port dropped.
    const proxied = await createHarness(dialect, { config: { baseUrl: undefined, trustedProxies: '127.0.0.1' } });
    try {
      await userWithToken(proxied, 'alice');
      const c = await registerConsumer(proxied, { method: 'HMAC-SHA1', config: { allow3LO: false, allow2LO: true, executeAs: 'alice' } });
      const token = { key: '', secret: '' };
      const forwarded = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'jira.example.com:443' };
      const signed = authHeader(c, { base: 'https://jira.example.com', path: '/issues', token, now: proxied.clock.now() });
      const ok = await proxied.inject({ url: '/issues', headers: { authorization: signed, ...forwarded } });
      expect(ok.statusCode, ok.body).toBe(200);
      // The same headers from an untrusted peer are not believed.
      const again = authHeader(c, { base: 'https://jira.example.com', path: '/issues', token, now: proxied.clock.now() });
      const untrusted = await proxied.inject({ url: '/issues', remoteAddress: '192.0.2.7', headers: { authorization: again, ...forwarded } });
      expect(problemOf(untrusted)).toBe('signature_invalid');
      // A proxy on another port that says so apart (nginx: Host $host, X-Forwarded-Port), and one
      // that terminates TLS and names only the scheme.
      const onPort = authHeader(c, { base: 'https://jira.example.com:8443', path: '/issues', token, now: proxied.clock.now() });
      const ported = await proxied.inject({ url: '/issues', headers: { authorization: onPort, host: 'jira.example.com', 'x-forwarded-proto': 'https', 'x-forwarded-port': '8443' } });
      expect(ported.statusCode, ported.body).toBe(200);
      const tls = authHeader(c, { base: 'https://jira.example.com', path: '/issues', token, now: proxied.clock.now() });
      const terminated = await proxied.inject({ url: '/issues', headers: { authorization: tls, host: 'jira.example.com', 'x-forwarded-proto': 'https' } });
      expect(terminated.statusCode, terminated.body).toBe(200);
    } finally {
      await proxied.close();
    }
  });

  it('validates consumer registrations and warns about impersonation', async () => {
    const create = (oauth1: Record<string, unknown>) =>
      h.inject({ method: 'POST', url: '/api/v1/links', headers: { authorization: h.adminBasic }, payload: { name: `L ${randomBytes(3).toString('hex')}`, incoming: { oauth1 } } });
    const { generateKeyPairSync } = await import('node:crypto');
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'pem', type: 'spki' }).toString();
    const cases: Array<[Record<string, unknown>, string, RegExp]> = [
      [{ consumerKey: 'k1', publicKey: small }, 'incoming.oauth1.publicKey', /1024 bits; at least 2048 are required/],
      [{ consumerKey: 'k2', publicKey: 'not a key' }, 'incoming.oauth1.publicKey', /does not parse/],
      [{ consumerKey: 'k3' }, 'incoming.oauth1.publicKey', /either/],
      [{ consumerKey: 'k4', publicKey: consumerKeyPair().publicPem, sharedSecret: 'a-long-enough-secret' }, 'incoming.oauth1.publicKey', /not both/],
      [{ consumerKey: 'k5', sharedSecret: 'short' }, 'incoming.oauth1.sharedSecret', /16/],
      [{ consumerKey: 'k6', sharedSecret: 'a-long-enough-secret', executeAs: 'ghost' }, 'incoming.oauth1.executeAs', /no user "ghost"/],
      [{ consumerKey: 'k7', sharedSecret: 'a-long-enough-secret', callback: 'ftp://x' }, 'incoming.oauth1.callback', /http/],
      [{ consumerKey: 'has space', sharedSecret: 'a-long-enough-secret' }, 'incoming.oauth1.consumerKey', /pattern/],
      [{ consumerKey: 'k8', sharedSecret: 'a-long-enough-secret', twoLOAllowed: true }, 'incoming.oauth1.twoLOAllowed', /./],
    ];
    for (const [config, field, message] of cases) {
      const res = await create(config);
      expect(res.statusCode, JSON.stringify(config)).toBe(400);
      expect(json(res)).toMatchObject({ error: 'validation_failed', field });
      expect(json<{ message: string }>(res).message).toMatch(message);
    }
    const dup = await create({ consumerKey: rsa.key, sharedSecret: 'a-long-enough-secret' });
    expect(dup.statusCode).toBe(409);

    const ok = await create({ consumerKey: 'imp', sharedSecret: 'a-long-enough-secret', allow2LOImpersonation: true });
    expect(ok.statusCode, ok.body).toBe(201);
    const view = json<{ incoming: Array<{ type: string; config: Record<string, unknown>; secretsSet: string[]; warnings: string[] }> }>(ok);
    expect(view.incoming[0]).toMatchObject({ type: 'oauth1', secretsSet: ['sharedSecret'], config: { consumerKey: 'imp', allow3LO: true, allow2LO: false, allow2LOImpersonation: true } });
    expect(view.incoming[0]!.config.sharedSecret).toBeUndefined();
    expect(ok.body).not.toContain('a-long-enough-secret');
    expect(view.incoming[0]!.warnings.join(' ')).toMatch(/only when both applications share one user base/);

    // A consumer moves from a shared secret to an RSA key (and our outgoing side likewise) in one
    // PUT: the secret it no longer uses goes, instead of clashing with the key.
    const linkId = json<{ id: string }>(ok).id;
    const put = (side: string, config: Record<string, unknown>) => h.inject({ method: 'PUT', url: `/api/v1/links/${linkId}/${side}/oauth1`, headers: { authorization: h.adminBasic }, payload: config });
    const toRsa = await put('incoming', { consumerKey: 'imp', publicKey: consumerKeyPair().publicPem });
    expect(toRsa.statusCode, toRsa.body).toBe(200);
    expect(json<{ incoming: Array<{ secretsSet: string[] }> }>(toRsa).incoming[0]!.secretsSet).toEqual([]);
    const hmacOut = await put('outgoing', { signatureMethod: 'HMAC-SHA1', consumerKey: 'us-there', sharedSecret: 'a-long-enough-secret' });
    expect(hmacOut.statusCode, hmacOut.body).toBe(200);
    // Omitted, the secret is kept while the method still needs it...
    expect((await put('outgoing', { signatureMethod: 'HMAC-SHA1', consumerKey: 'us-there' })).statusCode).toBe(200);
    const rsaOut = await put('outgoing', { signatureMethod: 'RSA-SHA1' });
    expect(rsaOut.statusCode, rsaOut.body).toBe(200);
    expect(json<{ outgoing: Array<{ secretsSet: string[]; config: Record<string, unknown> }> }>(rsaOut).outgoing[0]).toMatchObject({ secretsSet: [], config: { signatureMethod: 'RSA-SHA1' } });
    // ...and once dropped it is gone: HMAC again needs it anew.
    expect(json(await put('outgoing', { signatureMethod: 'HMAC-SHA1', consumerKey: 'us-there' }))).toMatchObject({ error: 'validation_failed', field: 'outgoing.oauth1.sharedSecret' });
  });

  it('serves our consumer-info document to anyone, as Atlassian’s servlet does: key, name, public key, description, callback', async () => {
    const identity = json<{ consumerKey: string; name: string; description: string; publicKey: string; callbackUrl: string }>(
      await h.inject({ url: '/api/v1/oauth1/consumer', headers: { authorization: h.adminBasic } }),
    );
    // No credentials at all: a remote administrator's server fetches it to register us.
    const res = await h.inject({ url: '/plugins/servlet/oauth/consumer-info' });
    expect(res.statusCode, res.body).toBe(200);
    expect(String(res.headers['content-type']).toLowerCase().replace(/\s/g, '')).toBe('application/xml;charset=utf-8');
    expect(res.body.startsWith('<?xml version="1.0" encoding="UTF-8"?>')).toBe(true);
    const doc = xmlAsPythonReadsIt(res.rawPayload);
    expect(doc.root).toBe('consumer');
    expect(doc.children.map(([name]) => name)).toEqual(['key', 'name', 'publicKey', 'description', 'callback']);
    const el = Object.fromEntries(doc.children);
    expect(el.key).toBe(identity.consumerKey);
    expect(el.key).toMatch(/^applinks:\d{7}$/);
    expect(el.name).toBe('applinks');
    expect(el.description).toBe('applinks at http://applinks.test');
    expect(el.callback).toBe('http://applinks.test/plugins/servlet/applinks/oauth/login-dance/access');
    // As RSAKeys.toPemEncoding leaves it: the bare base64 of the SubjectPublicKeyInfo, no PEM lines. It is our key.
    expect(el.publicKey).toMatch(/^[A-Za-z0-9+/]+={0,2}$/);
    const key = createPublicKey({ key: Buffer.from(el.publicKey!, 'base64'), format: 'der', type: 'spki' });
    expect(key.asymmetricKeyType).toBe('rsa');
    expect(key.export({ format: 'pem', type: 'spki' }).toString()).toBe(identity.publicKey);

    // What the name and description hold is escaped: the document stays XML and says what was configured.
    const odd = await createHarness(dialect, { config: { appName: 'R&D <Tools> "one"' } });
    try {
      const named = Object.fromEntries(xmlAsPythonReadsIt((await odd.inject({ url: '/plugins/servlet/oauth/consumer-info' })).rawPayload).children);
      expect(named.name).toBe('R&D <Tools> "one"');
      expect(named.description).toBe('R&D <Tools> "one" at http://applinks.test');
    } finally {
      await odd.close();
    }
  });

  it('authenticates applinks’ own API and forward-auth with OAuth too', async () => {
    const d = await dance(h, rsa, jar);
    const me = await signedInject(h, rsa, { path: '/api/v1/me', token: d.access });
    expect(me.statusCode, me.body).toBe(200);
    expect(json(me)).toMatchObject({ user: { username: 'alice' }, authType: 'oauth1' });
    // An application's token never mints a permanent credential that would outlive its revocation,
    // and a consumer impersonating an administrator cannot create consumers or tokens.
    const signedJson = (c: TestConsumer, method: string, path: string, payload: object, token?: { key: string; secret: string }) =>
      h.inject({ method: method as 'POST', url: path, headers: { authorization: authHeader(c, { method, path, now: h.clock.now(), ...(token ? { token } : {}) }), 'content-type': 'application/json' }, payload });
    const minted = await signedJson(rsa, 'POST', '/api/v1/me/tokens', { name: 'forever' }, d.access);
    expect([minted.statusCode, json(minted).error], minted.body).toEqual([403, 'forbidden']);
    expect(json(await signedJson(rsa, 'PUT', '/api/v1/me/password', { currentPassword: 'alice-password', newPassword: 'taken-over-1' }, d.access))).toMatchObject({ error: 'forbidden' });
    const impersonating = await registerConsumer(h, { config: { allow2LOImpersonation: true } });
    const admin = (await h.services.users.findByUsername('admin'))!;
    for (const [method, path, payload] of [
      ['POST', '/api/v1/links?xoauth_requestor_id=admin', { name: 'Backdoor', incoming: { oauth1: { consumerKey: 'backdoor', sharedSecret: 'a-shared-secret-of-length', allow2LOImpersonation: true } } }],
      ['POST', `/api/v1/users/${admin.id}/tokens?xoauth_requestor_id=admin`, { name: 'forever' }],
      ['POST', '/api/v1/me/tokens?xoauth_requestor_id=admin', { name: 'forever' }],
      ['PATCH', `/api/v1/users/${(await h.services.users.findByUsername('alice'))!.id}?xoauth_requestor_id=admin`, { admin: true }],
    ] as const) {
      const res = await signedJson(impersonating, method, path, payload, { key: '', secret: '' });
      expect([res.statusCode, json(res).error], `${method} ${path}: ${res.body}`).toEqual([403, 'forbidden']);
    }
    expect(await h.services.links.list().then((links) => links.map((l) => l.name))).not.toContain('Backdoor');
    const fa = await createHarness(dialect, { config: { trustedProxies: ['127.0.0.1'] }, store: h.store, clock: h.clock });
    try {
      const header = authHeader(rsa, { path: '/rest/api/2/myself', token: d.access, now: h.clock.now() });
      const res = await fa.inject({ url: '/rest/applinks/1.0/forward-auth', headers: { authorization: header, 'x-original-uri': '/rest/api/2/myself', 'x-original-method': 'GET' } });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.headers['x-applinks-user']).toBe('alice');
      expect(res.headers['x-applinks-auth']).toBe('oauth1');
      const anonymous = await fa.inject({ url: '/rest/applinks/1.0/forward-auth' });
      expect(anonymous.statusCode).toBe(401);
      expect([anonymous.headers['www-authenticate']].flat()).toContain(REALM);
    } finally {
      await fa.close();
    }
  });

  it('signs with our own client too, and refuses a request-token call that carries a token', async () => {
    const hmac = await registerConsumer(h, { method: 'HMAC-SHA1' });
    const header = authorizationHeader({
      method: 'POST',
      url: `http://applinks.test${REQUEST_TOKEN}`,
      consumerKey: hmac.key,
      token: 'alort_something',
      signatureMethod: 'HMAC-SHA1',
      secrets: { consumerSecret: hmac.secret! },
      extra: { oauth_callback: CALLBACK },
      timestamp: Math.floor(h.clock.now() / 1000),
    });
    const res = await h.inject({ method: 'POST', url: REQUEST_TOKEN, headers: { authorization: header } });
    expect(problemOf(res)).toBe('parameter_rejected');
  });
});

