import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Browser } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { launchChromium } from '../helpers/browser.js';
import { DIALECTS, userWithToken, type Harness } from '../helpers/harness.js';
import { callbackServer } from '../helpers/net.js';
import { listeningHarness } from '../helpers/oauth2.js';
import { AUTHORIZE, consumerKeyPair, registerConsumer, type TestConsumer } from '../helpers/oauth1.js';
import { startUpstream } from '../helpers/upstream.js';

const SCRIPT = path.resolve(import.meta.dirname, '../fixtures/oauth1_requests_oauthlib.py');

/** A gateway response as the script reports it: status, the upstream's JSON, the challenge. */
interface Seen {
  status: number;
  body: Record<string, unknown> | string;
  www_authenticate: string | null;
}

/** What test/fixtures/oauth1_requests_oauthlib.py prints last in "dance" mode. */
interface DanceReport {
  request_token: Record<string, string>;
  consent_title?: string;
  callback: string;
  parsed: Record<string, string>;
  access_token: Record<string, string>;
  replay: { status: number; body?: Record<string, string>; www_authenticate?: string | null };
  myself?: Seen;
  search?: Seen;
  form_post?: Seen;
  json_post?: Seen;
  query_signed?: Seen;
  jira?: { version: number[]; deployment_type: string | null; myself: Record<string, unknown> };
}

interface ProbeResult {
  status: number;
  www_authenticate: string | null;
  body: Record<string, string> | string;
}

/** One run of the script: JSON lines in order from stdout, lines to stdin, exit checked. */
class PythonRun {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly lines: string[] = [];
  private waiting: (() => void) | undefined;
  private stderr = '';
  private exitCode: number | null | undefined;
  private readonly exited: Promise<void>;
  private readonly timer: NodeJS.Timeout;

  constructor(job: Record<string, unknown>) {
    this.child = spawn('/usr/bin/python3', [SCRIPT, JSON.stringify(job)], { env: { PATH: '/usr/bin:/bin', NO_PROXY: '*' } });
    this.child.stderr.on('data', (chunk: Buffer) => (this.stderr += chunk.toString('utf8')));
    createInterface({ input: this.child.stdout }).on('line', (line) => {
      this.lines.push(line);
      this.wake();
    });
    this.exited = new Promise((resolve) =>
      this.child.on('close', (code) => {
        this.exitCode = code;
        this.wake();
        resolve();
      }),
    );
    this.timer = setTimeout(() => this.child.kill('SIGKILL'), 60_000);
  }

  private wake(): void {
    const w = this.waiting;
    this.waiting = undefined;
    w?.();
  }

  /** The next JSON line; fails with the script's stderr when it ends without one. */
  async next<T>(): Promise<T> {
    while (this.lines.length === 0) {
      if (this.exitCode !== undefined) throw new Error(`python exited (${String(this.exitCode)}) without a line:\n${this.stderr}`);
      await new Promise<void>((resolve) => (this.waiting = resolve));
    }
    return JSON.parse(this.lines.shift()!) as T;
  }

  send(line: string): void {
    this.child.stdin.write(`${line}\n`);
  }

  /** Waits for a clean exit: status 0, nothing on stderr, no line left unread. */
  async finish(): Promise<void> {
    this.child.stdin.end();
    await this.exited;
    clearTimeout(this.timer);
    expect(this.stderr).toBe('');
    expect(this.exitCode).toBe(0);
    expect(this.lines).toEqual([]);
  }

  kill(): void {
    clearTimeout(this.timer);
    if (this.exitCode === undefined) this.child.kill('SIGKILL');
  }
}

/** The problem parameters of a `WWW-Authenticate: OAuth realm="…", oauth_problem="…"` header. */
function challengeOf(header: string | null): Record<string, string> {
  expect(header, 'a WWW-Authenticate header').toMatch(/^OAuth realm="/);
  return Object.fromEntries([...header!.matchAll(/([a-z_]+)="([^"]*)"/g)].map((m) => [m[1]!, decodeURIComponent(m[2]!)]));
}

function rsaJob(c: TestConsumer): Record<string, string> {
  return { consumer_key: c.key, signature: 'RSA-SHA1', rsa_key: c.privateKey!.export({ format: 'pem', type: 'pkcs8' }).toString() };
}

function hmacJob(c: TestConsumer): Record<string, string> {
  return { consumer_key: c.key, signature: 'HMAC-SHA1', client_secret: c.secret! };
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** An RSA key nobody registered (PKCS#8 PEM), made once for the file. */
let otherPem: string | undefined;
function wrongKey(): string {
  otherPem ??= generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  return otherPem;
}

// One browser for the file; every test gets its own context.
let browser: Browser;
beforeAll(async () => {
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
});

/**
 * Debian's python3-requests-oauthlib (OAuth1Session, RSA-SHA1 and HMAC-SHA1) and python3-jira
 * 3.4.1 (JIRA(oauth=...)), clients nobody here wrote, against Jira's OAuth 1.0a endpoints and
 * the gateway of a listening server. The full browser dance (sign-in and Allow clicked in
 * Chromium) runs on both dialects: with one browser for the file it costs well under a second.
 */
describe.each(DIALECTS)('OAuth 1.0a with python3-requests-oauthlib and python3-jira on %s', (dialect) => {
  let h: Harness;
  let base: string;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let callback: Awaited<ReturnType<typeof callbackServer>>;
  const runs: PythonRun[] = [];
  const python = (job: Record<string, unknown>) => {
    const run = new PythonRun({ base, ...job });
    runs.push(run);
    return run;
  };

  beforeEach(async () => {
    upstream = await startUpstream();
    // The consumer's callback: only URLs carrying an OAuth 1.0a authorization response count.
    callback = await callbackServer(['oauth_token', 'oauth_verifier']);
    ({ h, base } = await listeningHarness(dialect, { upstreamUrl: upstream.url }));
    await userWithToken(h, 'alice', { password: 'alice-password' });
  });
  afterEach(async () => {
    for (const run of runs.splice(0)) run.kill();
    await h.close();
    await upstream.close();
    await callback.close();
  });

  /**
   * What reached the host for a path (the first time: python3-jira asks for myself again), with
   * the identity headers the gateway adds and without the client's Authorization header.
   */
  function hostSaw(pathAndQuery: string) {
    const found = upstream.seen.filter((r) => r.url === pathAndQuery);
    expect(found.length, `the host saw ${pathAndQuery} (it saw ${upstream.seen.map((r) => r.url).join(', ')})`).toBeGreaterThan(0);
    for (const r of found) {
      expect(r.headers['x-applinks-user']).toBe('alice');
      expect(r.headers['x-applinks-auth']).toBe('oauth1');
      expect(r.headers.authorization).toBeUndefined();
    }
    return found[0]!;
  }

  /** The checks both signature methods share, on the dance and the requests through the gateway. */
  function expectDance(out: DanceReport, callbackBase: string) {
    expect(out.request_token).toEqual({ oauth_token: expect.stringMatching(/^alort_/), oauth_token_secret: expect.any(String), oauth_callback_confirmed: 'true' });
    // The callback keeps its own query and gets the token and a 6-character verifier.
    const back = new URL(out.callback);
    expect(back.origin + back.pathname).toBe(callbackBase);
    expect(back.searchParams.get('from')).toBe('python');
    expect(out.parsed).toEqual({ from: 'python', oauth_token: out.request_token.oauth_token, oauth_verifier: expect.stringMatching(/^[A-Za-z0-9]{6}$/) });
    expect(out.access_token).toEqual({
      oauth_token: expect.stringMatching(/^aloat_/),
      oauth_token_secret: expect.any(String),
      oauth_expires_in: '157680000',
      oauth_session_handle: expect.stringMatching(/^alosh_/),
      oauth_authorization_expires_in: String(157_680_000 + 30 * 86_400),
    });
    // A request token is exchanged once.
    expect(out.replay.status).toBe(401);
    expect(out.replay.body).toMatchObject({ oauth_problem: 'token_rejected' });
    expect(challengeOf(out.replay.www_authenticate!)).toMatchObject({ realm: base, oauth_problem: 'token_rejected' });

    // Through the gateway as alice; the host sees identity headers, never the signature.
    expect(out.myself).toMatchObject({ status: 200, body: { name: 'alice' } });
    hostSaw('/rest/api/2/myself');
    // A signed query with spaces, quotes and non-ASCII reaches the host byte for byte as sent.
    expect(out.search!.status).toBe(200);
    const searchUrl = (out.search!.body as { url: string }).url;
    expect(searchUrl).toBe('/rest/api/2/search?jql=project+%3D+ABC+AND+summary+~+%22d%C3%A9j%C3%A0+vu%22&fields=summary%2Cstatus&maxResults=5');
    hostSaw(searchUrl);
    // A signed form body is verified and forwarded unchanged.
    expect(out.form_post!.status).toBe(200);
    const form = hostSaw('/rest/api/2/issue/ABC-1/comment');
    expect(form).toMatchObject({ method: 'POST', bodySha256: sha256('body=Hello+%26+welcome&visibility=role%3DUsers') });
    expect(form.headers['content-type']).toBe('application/x-www-form-urlencoded');
    // A JSON body is not part of the signature and is forwarded as is.
    expect(out.json_post!.status).toBe(200);
    const issue = hostSaw('/rest/api/2/issue');
    expect(issue).toMatchObject({ method: 'POST', bodySha256: sha256('{"fields": {"summary": "from python"}}') });
    // Signed in the query instead of the Authorization header (RFC 5849 §3.5.3). The gateway
    // consumes the oauth_* parameters as it does a consumed Authorization header: the host gets
    // the query without them, its own parameters as sent.
    expect(out.query_signed!.status).toBe(200);
    expect((out.query_signed!.body as { url: string }).url).toBe('/rest/api/2/project?expand=lead');
    hostSaw('/rest/api/2/project?expand=lead');
    expect(upstream.seen.filter((r) => /[?&]oauth_/.test(r.url))).toEqual([]);
  }

  it('RSA-SHA1: the 3-legged dance with sign-in and Allow clicked in Chromium, then python3-jira myself() through the gateway', async () => {
    const consumer = await registerConsumer(h, { method: 'RSA-SHA1', config: { name: 'Python Reporter' } });
    const callbackBase = `${callback.url}/oauth/callback`;
    const py = python({
      mode: 'dance',
      ...rsaJob(consumer),
      callback_uri: `${callbackBase}?from=python`,
      // jira-python's documented key_cert is the PKCS#1 "RSA PRIVATE KEY" PEM; the session above uses PKCS#8.
      jira_key: consumer.privateKey!.export({ format: 'pem', type: 'pkcs1' }).toString(),
    });
    const { authorization_url } = await py.next<{ authorization_url: string }>();
    const authorizationUrl = new URL(authorization_url);
    expect(authorizationUrl.origin + authorizationUrl.pathname).toBe(base + AUTHORIZE);
    expect(authorizationUrl.searchParams.get('oauth_token')).toMatch(/^alort_/);

    // The user: not signed in, so the sign-in page first, then the consent page.
    const context = await browser.newContext();
    let arrivedAt: URL;
    try {
      const page = await context.newPage();
      const arrived = callback.next();
      await page.goto(authorization_url);
      expect(new URL(page.url()).pathname).toBe('/applinks/login');
      await page.getByLabel('Username').fill('alice');
      await page.getByLabel('Password').fill('alice-password');
      await page.getByRole('button', { name: 'Sign in' }).click();
      const allow = page.getByRole('button', { name: 'Allow' });
      await allow.waitFor();
      expect(new URL(page.url()).pathname).toBe(AUTHORIZE);
      expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Allow Python Reporter to act for you?');
      expect(await page.getByRole('button', { name: 'Deny' }).isVisible()).toBe(true);
      expect(await page.textContent('body')).toContain(`your browser returns to 127.0.0.1:${new URL(callback.url).port}`);
      await allow.click();
      arrivedAt = await arrived;
      await page.waitForURL((u) => u.href === arrivedAt.href);
    } finally {
      await context.close();
    }
    py.send(arrivedAt.href);
    const out = await py.next<DanceReport>();
    await py.finish();

    expect(out.callback).toBe(arrivedAt.href);
    expectDance(out, callbackBase);

    // python3-jira: its constructor asks serverInfo first, then myself(); both signed RSA-SHA1 with
    // the PKCS#1 key and answered by the host as alice.
    expect(out.jira).toEqual({ version: [9, 12, 0], deployment_type: 'Server', myself: expect.objectContaining({ name: 'alice', key: 'alice' }) });
    const serverInfo = upstream.seen.filter((r) => r.url.startsWith('/rest/api/2/serverInfo'));
    expect(serverInfo).toHaveLength(1);
    expect(serverInfo[0]!.headers['x-applinks-user']).toBe('alice');
    expect(serverInfo[0]!.headers['x-applinks-auth']).toBe('oauth1');
    expect(upstream.seen.filter((r) => r.url === '/rest/api/2/myself')).toHaveLength(2);
  });

  it('HMAC-SHA1: the 3-legged dance with a shared-secret consumer, forms posted from Python, and signed requests', async () => {
    const consumer = await registerConsumer(h, { method: 'HMAC-SHA1', config: { name: 'Python Reporter' } });
    const callbackBase = 'https://reporter.example/oauth/callback';
    const py = python({ mode: 'dance', ...hmacJob(consumer), callback_uri: `${callbackBase}?from=python`, consent: { username: 'alice', password: 'alice-password' } });
    const { authorization_url } = await py.next<{ authorization_url: string }>();
    expect(new URL(authorization_url).searchParams.get('oauth_token')).toMatch(/^alort_/);
    const out = await py.next<DanceReport>();
    await py.finish();
    expect(out.consent_title).toBe('Allow Python Reporter to act for you?');
    expectDance(out, callbackBase);
  });

  it('answers what is signed wrong with the problem Jira sends: signature_invalid, token_rejected, token_expired and the rest', async () => {
    const rsa = await registerConsumer(h, { method: 'RSA-SHA1' });
    const hmac = await registerConsumer(h, { method: 'HMAC-SHA1' });
    const dance = python({ mode: 'dance', ...rsaJob(rsa), callback_uri: `${callback.url}/cb?from=python`, consent: { username: 'alice', password: 'alice-password' }, resources: false });
    await dance.next();
    const { access_token: access, request_token: requestToken } = await dance.next<DanceReport>();
    await dance.finish();

    const otherKey = wrongKey();
    expect(otherKey).not.toBe(consumerKeyPair().privateKey.export({ format: 'pem', type: 'pkcs8' }).toString());
    const token = { token: access.oauth_token, token_secret: access.oauth_token_secret };
    const url = `${base}/rest/api/2/myself`;
    // Past the access token's lifetime (5 years): the clients sign with the server's time.
    h.clock.advance((157_680_000 + 1) * 1000);
    const now = Math.floor(h.clock.now() / 1000);
    const nonce = randomBytes(12).toString('hex');
    const probes = [
      // The right key and token: the signature is good, the token has expired (Jira: token_expired).
      { name: 'expired', ...rsaJob(rsa), ...token },
      { name: 'wrong_key', ...rsaJob(rsa), rsa_key: otherKey, ...token },
      { name: 'wrong_key_in_query', ...rsaJob(rsa), rsa_key: otherKey, ...token, signature_type: 'query' },
      // A realm in the header is not signed (RFC 5849 §3.4.1.3.1); a signature in a form body is.
      { name: 'with_realm', ...rsaJob(rsa), ...token, realm: 'Jira' },
      { name: 'signed_in_body', ...rsaJob(rsa), ...token, method: 'POST', data: { comment: 'a b&c' }, signature_type: 'body' },
      { name: 'wrong_key_in_body', ...rsaJob(rsa), rsa_key: otherKey, ...token, method: 'POST', data: { comment: 'a b&c' }, signature_type: 'body' },
      { name: 'garbage_token', ...rsaJob(rsa), token: `aloat_${randomBytes(24).toString('base64url')}`, token_secret: 'x' },
      { name: 'not_a_token', ...rsaJob(rsa), token: 'garbage', token_secret: 'x' },
      { name: 'request_token', ...rsaJob(rsa), token: requestToken.oauth_token!, token_secret: requestToken.oauth_token_secret! },
      { name: 'hmac_wrong_secret', ...hmacJob(hmac), client_secret: 'not-the-shared-secret' },
      { name: 'hmac_two_legged', ...hmacJob(hmac) },
      { name: 'hmac_for_rsa_consumer', ...hmacJob(hmac), consumer_key: rsa.key, ...token },
      { name: 'unknown_consumer', ...rsaJob(rsa), consumer_key: 'nobody-registered-this', ...token },
      { name: 'stale', ...rsaJob(rsa), ...token, timestamp: now - 3600 },
      { name: 'nonce_first', ...rsaJob(rsa), ...token, nonce },
      { name: 'nonce_again', ...rsaJob(rsa), ...token, nonce },
    ].map((p) => ({ url, timestamp: now, ...p }));
    const run = python({ mode: 'probe', probes });
    const results = await run.next<Record<string, ProbeResult>>();
    await run.finish();

    const expected: Record<string, [number, string]> = {
      expired: [401, 'token_expired'],
      wrong_key: [401, 'signature_invalid'],
      wrong_key_in_query: [401, 'signature_invalid'],
      with_realm: [401, 'token_expired'],
      signed_in_body: [401, 'token_expired'],
      wrong_key_in_body: [401, 'signature_invalid'],
      garbage_token: [401, 'token_rejected'],
      not_a_token: [401, 'token_rejected'],
      request_token: [401, 'token_rejected'],
      hmac_wrong_secret: [401, 'signature_invalid'],
      hmac_two_legged: [401, 'permission_denied'],
      hmac_for_rsa_consumer: [400, 'signature_method_rejected'],
      unknown_consumer: [401, 'consumer_key_unknown'],
      stale: [400, 'timestamp_refused'],
      nonce_first: [401, 'token_expired'],
      nonce_again: [401, 'nonce_used'],
    };
    const got = Object.fromEntries(Object.entries(results).map(([name, r]) => [name, [r.status, challengeOf(r.www_authenticate).oauth_problem]]));
    expect(got).toEqual(expected);
    for (const [name, r] of Object.entries(results)) {
      expect(challengeOf(r.www_authenticate).realm, name).toBe(base);
      // The body repeats the problem form-encoded, as net.oauth does.
      expect(r.body, name).toMatchObject({ oauth_problem: expected[name]![1] });
    }
    expect(challengeOf(results.stale!.www_authenticate).oauth_acceptable_timestamps).toMatch(/^\d+-\d+$/);
    // Nothing signed wrong reached the host.
    expect(upstream.seen).toEqual([]);
  });
});
