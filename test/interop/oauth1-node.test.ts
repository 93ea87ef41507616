import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import querystring from 'node:querystring';
import { OAuth, type dataCallback } from 'oauth';
import type OAuth1a from 'oauth-1.0a';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS, userWithToken, type Harness } from '../helpers/harness.js';
import { ACCESS_TOKEN, authHeader, AUTHORIZE, CALLBACK, consumerKeyPair, registerConsumer, REQUEST_TOKEN, signerFor, type TestConsumer } from '../helpers/oauth1.js';
import { hiddenFields, listeningHarness } from '../helpers/oauth2.js';
import { startUpstream } from '../helpers/upstream.js';

/**
 * Clients nobody here wrote: npm `oauth` (node-oauth 0.10.2, what most Node Jira integrations
 * use) and npm `oauth-1.0a` (2.2.6) against a listening server. node-oauth runs the 3-legged
 * dance (request token, a user signing in and clicking Allow with plain HTTP requests the way a
 * browser posts the forms, access token) with RSA-SHA1 and HMAC-SHA1, then signed requests
 * through the gateway to a fake Jira; 2-legged and 2-legged with impersonation; and the refusals
 * it sees through its error callback. oauth-1.0a sends the protocol parameters in the form body
 * and in the query instead of the Authorization header.
 */

const MYSELF = '/rest/api/2/myself';

/** What node-oauth hands its callback, success or failure alike. */
interface Answer {
  status: number;
  body: string;
  headers: IncomingHttpHeaders;
}

/** Runs one node-oauth resource call; resolves with the answer whatever its status (transport errors reject). */
function call(run: (cb: dataCallback) => unknown): Promise<Answer> {
  return new Promise((resolve, reject) => {
    run((err, result, response?: IncomingMessage) => {
      if (err instanceof Error) return reject(err);
      if (!response) return reject(new Error(`no response: ${JSON.stringify(err)}`));
      const body = err ? String(err.data ?? '') : String(result ?? '');
      // node-oauth reports non-2xx as { statusCode, data } and 2xx as (null, data).
      if (err && err.statusCode !== response.statusCode) return reject(new Error(`node-oauth said ${err.statusCode}, the response ${response.statusCode}`));
      resolve({ status: response.statusCode ?? 0, body, headers: response.headers });
    });
  });
}

interface TokenPair {
  token: string;
  secret: string;
  results: Record<string, string>;
}

/** node-oauth's getOAuthRequestToken; a refusal rejects with node-oauth's { statusCode, data }. */
function requestToken(oa: OAuth): Promise<TokenPair> {
  return new Promise((resolve, reject) => {
    oa.getOAuthRequestToken((err, token, secret, results: Record<string, string>) => (err ? reject(err) : resolve({ token, secret, results })));
  });
}

function accessToken(oa: OAuth, rt: { token: string; secret: string }, verifier: string): Promise<TokenPair> {
  return new Promise((resolve, reject) => {
    oa.getOAuthAccessToken(rt.token, rt.secret, verifier, (err, token, secret, results: Record<string, string>) => (err ? reject(err) : resolve({ token, secret, results })));
  });
}

/** The refusal node-oauth's error callback received: status and the form-encoded problem body. */
async function refusal(promise: Promise<unknown>): Promise<{ statusCode: number; problem: Record<string, string> }> {
  const e = (await promise.then(
    () => {
      throw new Error('expected node-oauth to report an error');
    },
    (error: unknown) => error,
  )) as { statusCode: number; data?: string };
  expect(e).not.toBeInstanceOf(Error);
  return { statusCode: e.statusCode, problem: Object.fromEntries(new URLSearchParams(e.data ?? '')) };
}

/** Cookies and manual redirects over real HTTP: what a browser does with our pages. */
class Browser {
  private readonly cookies = new Map<string, string>();
  constructor(private readonly base: string) {}

  async go(url: string | URL, form?: URLSearchParams): Promise<{ status: number; location: URL | undefined; body: string }> {
    const target = new URL(url, this.base);
    const headers: Record<string, string> = { accept: 'text/html', 'user-agent': 'Mozilla/5.0 (interop test)' };
    if (this.cookies.size > 0) headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    if (form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      headers.origin = new URL(this.base).origin;
    }
    const res = await fetch(target, { method: form ? 'POST' : 'GET', redirect: 'manual', headers, ...(form ? { body: form.toString() } : {}) });
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      if (value === '' || /max-age=0\b/i.test(line)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    const location = res.headers.get('location');
    return { status: res.status, location: location ? new URL(location, target) : undefined, body: await res.text() };
  }
}

/**
 * The user's part of the dance in a browser: the authorize URL sends them to sign in, the sign-in
 * form brings them back to the consent page, and Allow sends them to the callback. Answers the
 * callback URL the browser was sent to.
 */
async function consentInBrowser(base: string, requestTokenValue: string, username: string, password: string, expectedApp: string): Promise<URL> {
  const browser = new Browser(base);
  const authorizeUrl = `${base}${AUTHORIZE}?oauth_token=${encodeURIComponent(requestTokenValue)}`;
  let res = await browser.go(authorizeUrl);
  expect(res.status, res.body).toBe(303);
  expect(res.location!.pathname).toBe('/applinks/login');
  res = await browser.go(res.location!);
  expect(res.status, res.body).toBe(200);
  const signIn = hiddenFields(res.body);
  signIn.set('username', username);
  signIn.set('password', password);
  res = await browser.go('/applinks/login', signIn);
  expect(res.status, res.body).toBe(303);
  expect(res.location!.href).toBe(authorizeUrl);
  res = await browser.go(res.location!);
  expect(res.status, res.body).toBe(200);
  expect(res.body).toContain(`Allow ${expectedApp} to act for you?`);
  expect(res.body).toContain('addin.example');
  // The browser posts the form's fields in document order, with the button that was clicked.
  const decision = hiddenFields(res.body);
  expect(decision.get('oauth_token')).toBe(requestTokenValue);
  decision.append('approve', 'Allow');
  res = await browser.go(AUTHORIZE, decision);
  expect(res.status, res.body).toBe(303);
  return res.location!;
}

/** The RSA private key of the shared test key pair, as the PEM node-oauth takes for its consumer secret. */
function privatePem(): string {
  return consumerKeyPair().privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
}

/**
 * The protocol parameters of what oauth-1.0a's authorize() answers (it also merges the request's
 * own data and URL query into the object it returns).
 */
function oauthOnly(signed: OAuth1a.Authorization): URLSearchParams {
  const out = new URLSearchParams();
  for (const [k, v] of Object.entries(signed)) if (k.startsWith('oauth_')) out.append(k, String(v));
  return out;
}

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** node-oauth's form body for an object of parameters (querystring.stringify with its RFC 3986 fix-ups). */
function nodeOAuthForm(params: Record<string, string | string[]>): string {
  return querystring
    .stringify(params)
    .replace(/!/g, '%21')
    .replace(/'/g, '%27')
    .replace(/\(/g, '%28')
    .replace(/\)/g, '%29')
    .replace(/\*/g, '%2A');
}

describe.each(DIALECTS)('OAuth 1.0a with node-oauth and oauth-1.0a on %s', (dialect) => {
  let h: Harness;
  let base: string;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;

  beforeAll(async () => {
    upstream = await startUpstream();
    ({ h, base } = await listeningHarness(dialect, { upstreamUrl: upstream.url }));
    await userWithToken(h, 'alice', { password: 'alice-password' });
    await userWithToken(h, 'bob');
    await userWithToken(h, 'carol');
  });
  afterAll(async () => {
    await h?.close();
    await upstream?.close();
  });

  /** A node-oauth client for a registered consumer, the way Jira integrations construct it. */
  function nodeOAuth(c: Pick<TestConsumer, 'key' | 'method' | 'secret'>, options: { version?: string; method?: string; secret?: string } = {}): OAuth {
    const secret = options.secret ?? (c.method === 'RSA-SHA1' ? privatePem() : c.secret!);
    return new OAuth(`${base}${REQUEST_TOKEN}`, `${base}${ACCESS_TOKEN}`, c.key, secret, options.version ?? '1.0', CALLBACK, options.method ?? c.method);
  }

  /** node-oauth's whole 3-legged dance with `alice` clicking Allow; answers the access token. */
  async function nodeOAuthDance(oa: OAuth, expectedApp: string): Promise<TokenPair> {
    const rt = await requestToken(oa);
    expect(rt.token).toMatch(/^alort_/);
    expect(rt.secret).toBeTruthy();
    expect(rt.results).toEqual({ oauth_callback_confirmed: 'true' });
    const back = await consentInBrowser(base, rt.token, 'alice', 'alice-password', expectedApp);
    expect(back.origin + back.pathname).toBe(CALLBACK);
    expect(back.searchParams.get('oauth_token')).toBe(rt.token);
    const verifier = back.searchParams.get('oauth_verifier');
    expect(verifier).toMatch(/^[A-Za-z0-9]{6}$/);
    const at = await accessToken(oa, rt, verifier!);
    expect(at.token).toMatch(/^aloat_/);
    expect(at.secret).toBeTruthy();
    expect(at.results.oauth_session_handle).toMatch(/^alosh_/);
    expect(Number(at.results.oauth_expires_in)).toBeGreaterThan(0);
    expect(Number(at.results.oauth_authorization_expires_in)).toBeGreaterThan(0);
    // A request token is exchanged once.
    const again = await refusal(accessToken(oa, rt, verifier!));
    expect(again.statusCode).toBe(401);
    expect(again.problem.oauth_problem).toBe('token_rejected');
    return at;
  }

  function lastSeen() {
    const seen = upstream.seen.at(-1);
    expect(seen).toBeDefined();
    return seen!;
  }

  function expectChallenge(res: Answer, status: number, problem: string): void {
    expect(res.status, res.body).toBe(status);
    expect(Object.fromEntries(new URLSearchParams(res.body)).oauth_problem).toBe(problem);
    const challenge = String(res.headers['www-authenticate']);
    expect(challenge.startsWith(`OAuth realm="${encodeURIComponent(base)}"`), challenge).toBe(true);
    expect(challenge).toContain(`oauth_problem="${problem}"`);
  }

  it('node-oauth RSA-SHA1: request token, browser sign-in and Allow, access token, then a GET and a signed form POST through the gateway', async () => {
    const c = await registerConsumer(h, { name: 'Outlook RSA' });
    const oa = nodeOAuth(c);
    const at = await nodeOAuthDance(oa, 'Outlook add-in');

    const seenBefore = upstream.seen.length;
    const res = await call((cb) => oa.get(`${base}${MYSELF}`, at.token, at.secret, cb));
    expect(res.status, res.body).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ name: 'alice', active: true });
    expect(upstream.seen.length).toBe(seenBefore + 1);
    const seen = lastSeen();
    expect(seen).toMatchObject({ method: 'GET', url: MYSELF });
    expect(seen.headers['x-applinks-user']).toBe('alice');
    expect(seen.headers['x-applinks-auth']).toBe('oauth1');
    expect(seen.headers['x-applinks-link']).toBe(c.linkId);
    expect(seen.headers.authorization).toBeUndefined();

    // A form POST: node-oauth signs the body parameters and sends them form-encoded.
    // Repeated names are signed and sent as repeated fields.
    const params = { body: "Hello, world! (it's *great*) & more", labels: ['a+b c', 'urgent'], 'é': 'ü' };
    const posted = await call((cb) => oa.post(`${base}/rest/api/2/issue/ABC-1/comment?expand=renderedBody`, at.token, at.secret, { ...params }, 'application/x-www-form-urlencoded', cb));
    expect(posted.status, posted.body).toBe(200);
    const echo = lastSeen();
    expect(echo).toMatchObject({ method: 'POST', url: '/rest/api/2/issue/ABC-1/comment?expand=renderedBody' });
    expect(echo.headers['x-applinks-user']).toBe('alice');
    expect(echo.headers['x-applinks-auth']).toBe('oauth1');
    expect(echo.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(echo.bodyLength).toBe(Buffer.byteLength(nodeOAuthForm(params)));
    expect(echo.bodySha256).toBe(sha256(nodeOAuthForm(params)));

    // A PUT with a JSON body (not signed, streamed to the host as is) and a DELETE.
    const json = JSON.stringify({ fields: { summary: 'Renamed by the add-in' } });
    const put = await call((cb) => oa.put(`${base}/rest/api/2/issue/ABC-1`, at.token, at.secret, json, 'application/json', cb));
    expect(put.status, put.body).toBe(200);
    expect(lastSeen()).toMatchObject({ method: 'PUT', url: '/rest/api/2/issue/ABC-1', bodyLength: Buffer.byteLength(json), bodySha256: sha256(json) });
    expect(lastSeen().headers['x-applinks-user']).toBe('alice');
    const del = await call((cb) => oa.delete(`${base}/rest/api/2/issue/ABC-1/comment/10001`, at.token, at.secret, cb));
    expect(del.status, del.body).toBe(200);
    expect(lastSeen()).toMatchObject({ method: 'DELETE', url: '/rest/api/2/issue/ABC-1/comment/10001' });
    expect(lastSeen().headers['x-applinks-auth']).toBe('oauth1');
  });

  it('node-oauth HMAC-SHA1: the same dance with a shared secret, then a resource call', async () => {
    const c = await registerConsumer(h, { method: 'HMAC-SHA1', name: 'Outlook HMAC' });
    const oa = nodeOAuth(c);
    const at = await nodeOAuthDance(oa, 'Outlook add-in');
    const res = await call((cb) => oa.get(`${base}${MYSELF}?expand=groups`, at.token, at.secret, cb));
    expect(res.status, res.body).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ name: 'alice' });
    const seen = lastSeen();
    expect(seen.url).toBe(`${MYSELF}?expand=groups`);
    expect(seen.headers['x-applinks-user']).toBe('alice');
    expect(seen.headers['x-applinks-auth']).toBe('oauth1');

    // A JQL query as Jira clients write it: "+" and %20 spaces, reserved and sub-delim characters, an empty value.
    const search = '/rest/api/2/search?jql=project+%3D+ABC%20AND%20summary~%22a%2Bb%22%20ORDER%20BY%20key&fields=*all,-comment&validateQuery';
    const found = await call((cb) => oa.get(`${base}${search}`, at.token, at.secret, cb));
    expect(found.status, found.body).toBe(200);
    expect(lastSeen().url).toBe(search);
    expect(lastSeen().headers['x-applinks-user']).toBe('alice');

    // HMAC-SHA256 with the same shared secret and token is accepted too.
    const sha256Client = nodeOAuth(c, { method: 'HMAC-SHA256' });
    const viaSha256 = await call((cb) => sha256Client.get(`${base}${MYSELF}`, at.token, at.secret, cb));
    expect(viaSha256.status, viaSha256.body).toBe(200);
    expect(JSON.parse(viaSha256.body)).toMatchObject({ name: 'alice' });

    // The token secret is part of the HMAC key: signing with the wrong one fails.
    const wrong = await call((cb) => oa.get(`${base}${MYSELF}`, at.token, 'not-the-token-secret', cb));
    expectChallenge(wrong, 401, 'signature_invalid');
  });

  it('node-oauth 2-legged: an empty token acts as the consumer\'s "execute as" user', async () => {
    const c = await registerConsumer(h, { name: 'Build server', config: { allow3LO: false, allow2LO: true, executeAs: 'carol' } });
    for (const oa of [nodeOAuth(c), nodeOAuth(await registerConsumer(h, { method: 'HMAC-SHA1', config: { allow2LO: true, executeAs: 'carol' } }))]) {
      const res = await call((cb) => oa.get(`${base}${MYSELF}`, '', '', cb));
      expect(res.status, res.body).toBe(200);
      expect(JSON.parse(res.body)).toMatchObject({ name: 'carol' });
      const seen = lastSeen();
      expect(seen.headers['x-applinks-user']).toBe('carol');
      expect(seen.headers['x-applinks-auth']).toBe('oauth1-2lo');
    }

    // Atlassian's own 2-legged requests send an empty oauth_token (here signed by oauth-1.0a): the same as none.
    const empty = await registerConsumer(h, { config: { allow2LO: true, executeAs: 'carol' } });
    const header = authHeader(empty, { base, path: MYSELF, token: { key: '', secret: '' } });
    expect(header).toContain('oauth_token=""');
    const viaEmpty = await request(`${base}${MYSELF}`, { headers: { authorization: header } });
    const emptyText = await viaEmpty.body.text();
    expect(viaEmpty.statusCode, emptyText).toBe(200);
    expect(JSON.parse(emptyText)).toMatchObject({ name: 'carol' });
    expect(lastSeen().headers['x-applinks-auth']).toBe('oauth1-2lo');

    // 2-legged is off by default.
    const off = nodeOAuth(await registerConsumer(h));
    expectChallenge(await call((cb) => off.get(`${base}${MYSELF}`, '', '', cb)), 401, 'permission_denied');
  });

  it('node-oauth 2-legged with impersonation: xoauth_requestor_id in the signed query names the user; refused when off or unknown', async () => {
    const c = await registerConsumer(h, { name: 'Trusted twin', config: { allow3LO: false, allow2LOImpersonation: true } });
    const oa = nodeOAuth(c);
    const res = await call((cb) => oa.get(`${base}${MYSELF}?xoauth_requestor_id=bob`, '', '', cb));
    expect(res.status, res.body).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ name: 'bob' });
    const seen = lastSeen();
    expect(seen.headers['x-applinks-user']).toBe('bob');
    expect(seen.headers['x-applinks-auth']).toBe('oauth1-2lo-impersonation');
    expect(seen.headers['x-applinks-link']).toBe(c.linkId);

    // Another user, from the same consumer.
    expect(JSON.parse((await call((cb) => oa.get(`${base}${MYSELF}?xoauth_requestor_id=alice`, '', '', cb))).body)).toMatchObject({ name: 'alice' });

    // An unknown user.
    expectChallenge(await call((cb) => oa.get(`${base}${MYSELF}?xoauth_requestor_id=nobody`, '', '', cb)), 401, 'permission_denied');

    // Impersonation off (even with plain 2LO on): naming a user is refused, not downgraded to "execute as".
    const plain = nodeOAuth(await registerConsumer(h, { config: { allow2LO: true, executeAs: 'carol' } }));
    const before = upstream.seen.length;
    expectChallenge(await call((cb) => plain.get(`${base}${MYSELF}?xoauth_requestor_id=bob`, '', '', cb)), 401, 'permission_denied');
    expect(upstream.seen.length).toBe(before);
  });

  it('oauth-1.0a: every protocol parameter in a form body, or in the query, with no Authorization header', async () => {
    const hmac = await registerConsumer(h, { method: 'HMAC-SHA1', name: 'Body signer' });
    const at = await nodeOAuthDance(nodeOAuth(hmac), 'Outlook add-in');
    const signer = signerFor(hmac);

    // Body transport (RFC 5849 §3.5.2): the form carries the request's own fields and the oauth_* ones.
    const url = `${base}/rest/api/2/issue/ABC-2/comment`;
    const fields = { body: 'Signed in the body: a+b=c & d', visibility: 'role:Developers' };
    const signed = signer.authorize({ url, method: 'POST', data: fields }, { key: at.token, secret: at.secret });
    const form = new URLSearchParams({ ...fields, ...Object.fromEntries(oauthOnly(signed)) }).toString();
    expect(form).toContain('oauth_signature=');
    const viaBody = await request(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form });
    const bodyText = await viaBody.body.text();
    expect(viaBody.statusCode, bodyText).toBe(200);
    const seen = lastSeen();
    expect(seen).toMatchObject({ method: 'POST', url: '/rest/api/2/issue/ABC-2/comment' });
    expect(seen.headers['x-applinks-user']).toBe('alice');
    expect(seen.headers['x-applinks-auth']).toBe('oauth1');
    expect(seen.headers.authorization).toBeUndefined();
    // The host gets the body as the client sent it, less the oauth_* credentials (consumed here).
    const rest = form.split('&').filter((p) => !p.startsWith('oauth_')).join('&');
    expect(rest).toBe(new URLSearchParams(fields).toString());
    expect(seen.bodyLength).toBe(Buffer.byteLength(rest));
    expect(seen.bodySha256).toBe(sha256(rest));
    expect(seen.headers['content-length']).toBe(String(Buffer.byteLength(rest)));

    // Query transport (RFC 5849 §3.5.3), RSA-SHA1, 2-legged.
    const rsa = await registerConsumer(h, { name: 'Query signer', config: { allow2LO: true, executeAs: 'carol' } });
    const target = `${base}${MYSELF}?expand=groups`;
    const query = oauthOnly(signerFor(rsa).authorize({ url: target, method: 'GET' })).toString();
    const viaQuery = await request(`${target}&${query}`);
    const queryText = await viaQuery.body.text();
    expect(viaQuery.statusCode, queryText).toBe(200);
    expect(JSON.parse(queryText)).toMatchObject({ name: 'carol' });
    expect(lastSeen().headers['x-applinks-auth']).toBe('oauth1-2lo');
    // The host sees its own parameters, not the signature and token.
    expect(lastSeen().url).toBe(`${MYSELF}?expand=groups`);

    // Query transport with the 3-legged token too.
    const q3 = signer.authorize({ url: `${base}${MYSELF}`, method: 'GET' }, { key: at.token, secret: at.secret });
    const viaQuery3 = await request(`${base}${MYSELF}?${oauthOnly(q3).toString()}`);
    const q3Text = await viaQuery3.body.text();
    expect(viaQuery3.statusCode, q3Text).toBe(200);
    expect(JSON.parse(q3Text)).toMatchObject({ name: 'alice' });

    // The body is signed: changing a field after signing breaks the signature.
    const tampered = form.replace('visibility=role%3ADevelopers', 'visibility=role%3AAdministrators');
    expect(tampered).not.toBe(form);
    const bad = await request(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: tampered });
    const badText = await bad.body.text();
    expect(bad.statusCode, badText).toBe(401);
    expect(new URLSearchParams(badText).get('oauth_problem')).toBe('signature_invalid');
  });

  it('refusals through node-oauth\'s error callback: tampered URL, unknown consumer key, replayed request, RSA consumer signing HMAC-SHA1', async () => {
    const c = await registerConsumer(h, { name: 'Refusals' });
    const oa = nodeOAuth(c);
    const at = await nodeOAuthDance(oa, 'Outlook add-in');

    // Tampered URL: node-oauth signs one query, a man in the middle changes it on the way.
    class Tampered extends OAuth {
      protected override _createClient(port?: number | string, hostname?: string, method?: string, path?: string, headers?: IncomingHttpHeaders, sslEnabled?: boolean) {
        return super._createClient(port, hostname, method, path?.replace('jql=project%3DABC', 'jql=project%3DSECRET'), headers, sslEnabled);
      }
    }
    const mitm = new Tampered(`${base}${REQUEST_TOKEN}`, `${base}${ACCESS_TOKEN}`, c.key, privatePem(), '1.0', CALLBACK, 'RSA-SHA1');
    const before = upstream.seen.length;
    const tampered = await call((cb) => mitm.get(`${base}/rest/api/2/search?jql=project%3DABC`, at.token, at.secret, cb));
    expectChallenge(tampered, 401, 'signature_invalid');
    expect(upstream.seen.length).toBe(before);
    // The same client without the man in the middle gets through.
    expect((await call((cb) => oa.get(`${base}/rest/api/2/search?jql=project%3DABC`, at.token, at.secret, cb))).status).toBe(200);

    // An unknown consumer key, at the request-token endpoint and on a resource.
    const stranger = nodeOAuth({ key: 'nobody-registered-me', method: 'RSA-SHA1', secret: undefined });
    const unknown = await refusal(requestToken(stranger));
    expect(unknown.statusCode).toBe(401);
    expect(unknown.problem.oauth_problem).toBe('consumer_key_unknown');
    expectChallenge(await call((cb) => stranger.get(`${base}${MYSELF}`, at.token, at.secret, cb)), 401, 'consumer_key_unknown');

    // A replay: the exact same Authorization header twice.
    const header = oa.authHeader(`${base}${MYSELF}`, at.token, at.secret, 'GET');
    const first = await request(`${base}${MYSELF}`, { headers: { authorization: header } });
    expect(first.statusCode, await first.body.text()).toBe(200);
    const second = await request(`${base}${MYSELF}`, { headers: { authorization: header } });
    const secondText = await second.body.text();
    expect(second.statusCode, secondText).toBe(401);
    expect(new URLSearchParams(secondText).get('oauth_problem')).toBe('nonce_used');
    expect(String(second.headers['www-authenticate'])).toContain('oauth_problem="nonce_used"');

    // An RSA consumer signing with HMAC-SHA1 (Jira's rule: RSA consumers sign with RSA).
    const hmacSigner = nodeOAuth(c, { method: 'HMAC-SHA1', secret: 'a-guessed-shared-secret' });
    const rejected = await refusal(requestToken(hmacSigner));
    expect(rejected.statusCode).toBe(400);
    expect(rejected.problem.oauth_problem).toBe('signature_method_rejected');
    expectChallenge(await call((cb) => hmacSigner.get(`${base}${MYSELF}`, at.token, at.secret, cb)), 400, 'signature_method_rejected');

    // PLAINTEXT (the shared secret in clear) is refused over http, even for a shared-secret consumer.
    const shared = await registerConsumer(h, { method: 'HMAC-SHA1', config: { allow2LO: true, executeAs: 'carol' } });
    const plaintext = await refusal(requestToken(nodeOAuth(shared, { method: 'PLAINTEXT' })));
    expect(plaintext.statusCode).toBe(400);
    expect(plaintext.problem.oauth_problem).toBe('signature_method_rejected');

    // node-oauth signs a POST's form fields only when given as an object; a form-encoded string body
    // goes out unsigned, and the server (as Jira's net.oauth) signs every form field: signature_invalid.
    const sharedClient = nodeOAuth(shared);
    const unsignedBody = await call((cb) => sharedClient.post(`${base}/rest/api/2/issue`, '', '', 'summary=Unsigned', 'application/x-www-form-urlencoded', cb));
    expectChallenge(unsignedBody, 401, 'signature_invalid');
    const signedBody = await call((cb) => sharedClient.post(`${base}/rest/api/2/issue`, '', '', { summary: 'Signed' }, 'application/x-www-form-urlencoded', cb));
    expect(signedBody.status, signedBody.body).toBe(200);
  });

  /**
   * node-oauth sends its `version` argument verbatim as oauth_version. RFC 5849 §3.1 (and OAuth
   * Core 1.0a §7) allow only "1.0"; Jira's net.oauth SimpleOAuthValidator reads it with
   * Double.parseDouble, which cannot read "1.0A" either. Jira integrations built on node-oauth
   * (jira-connector, for one) pass "1.0", as every other test here does.
   */
  it('node-oauth constructed with version "1.0A" sends oauth_version=1.0A, which is refused as version_rejected', async () => {
    const c = await registerConsumer(h, { name: 'Version 1.0A' });
    const oa = nodeOAuth(c, { version: '1.0A' });
    const refused = await refusal(requestToken(oa));
    expect(refused.statusCode).toBe(400);
    expect(refused.problem).toMatchObject({ oauth_problem: 'version_rejected', oauth_acceptable_versions: '1.0-1.0' });
  });
});
