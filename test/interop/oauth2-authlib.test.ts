import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DIALECTS, json, userWithToken, type Harness } from '../helpers/harness.js';
import { echoUpstream } from '../helpers/net.js';
import { listeningHarness } from '../helpers/oauth2.js';

const run = promisify(execFile);

/** What test/fixtures/oauth2_authlib.py prints. */
interface AuthlibReport {
  consent_title: string;
  callback_has_iss: boolean;
  token: Record<string, unknown>;
  resource: { host: string; url: string; headers: Record<string, string> };
  refreshed_differs: boolean;
  introspection: Record<string, unknown>;
  reuse: { status: number; body: Record<string, unknown>; cache_control: string };
  after_reuse_status: number;
  after_reuse_challenge: string;
  remembered_consent: boolean;
  revoke_status: number;
  after_revoke: Record<string, unknown>;
}
const SCRIPT = path.resolve(import.meta.dirname, '../fixtures/oauth2_authlib.py');

/**
 * Debian's python3-authlib (1.2.0) `OAuth2Session` as a confidential client: authorization code
 * with PKCE (S256), refresh with rotation and reuse detection, introspection, revocation, and a
 * bearer request through the gateway; with client_secret_basic and with client_secret_post.
 */
describe.each(DIALECTS)('OAuth 2.0 with python3-authlib on %s', (dialect) => {
  let h: Harness;
  let base: string;
  let upstream: Awaited<ReturnType<typeof echoUpstream>>;
  beforeEach(async () => {
    upstream = await echoUpstream();
    ({ h, base } = await listeningHarness(dialect, { upstreamUrl: upstream.url }));
    await userWithToken(h, 'alice', { password: 'alice-password' });
  });
  afterEach(async () => {
    await h.close();
    await upstream.close();
  });

  it.each(['client_secret_basic', 'client_secret_post'])('runs the whole flow with %s', async (method) => {
    const registered = json<{ clientId: string; clientSecret: string }>(
      await h.inject({
        method: 'POST',
        url: '/api/v1/oauth2/clients',
        headers: { authorization: h.adminBasic },
        payload: { name: 'Python Reporter', redirectUris: ['https://reporter.example/oauth/callback'], scopes: ['READ', 'WRITE'] },
      }),
    );
    const { stdout, stderr } = await run('/usr/bin/python3', [SCRIPT, base, registered.clientId, registered.clientSecret, 'https://reporter.example/oauth/callback', 'alice', 'alice-password', method], {
      timeout: 60_000,
      env: { PATH: '/usr/bin:/bin', NO_PROXY: '*' },
    }).catch((error: { stdout?: string; stderr?: string }) => {
      throw new Error(`authlib script failed:\n${error.stderr ?? ''}\n${error.stdout ?? ''}`);
    });
    expect(stderr).toBe('');
    const out = JSON.parse(stdout) as AuthlibReport;
    expect(out.consent_title).toBe('Allow Python Reporter to act for you?');
    expect(out.callback_has_iss).toBe(true);
    expect(out.token).toEqual({ token_type: 'Bearer', scope: 'READ WRITE', expires_in: 3600 });
    // The host saw the request through the gateway; with no upstream JSON the echo answers.
    expect(out.resource).toMatchObject({ host: 'echo', url: '/rest/api/2/myself' });
    expect(out.resource.headers['x-applinks-user']).toBe('alice');
    expect(out.resource.headers['x-applinks-auth']).toBe('oauth2');
    expect(out.refreshed_differs).toBe(true);
    expect(out.introspection).toMatchObject({ active: true, client_id: registered.clientId, username: 'alice', token_type: 'Bearer' });
    expect(out.reuse).toMatchObject({ status: 400, body: { error: 'invalid_grant' }, cache_control: 'no-store' });
    expect(out.after_reuse_status).toBe(401);
    expect(out.after_reuse_challenge).toMatch(/^Bearer realm="applinks", error="invalid_token"/);
    expect(out.remembered_consent).toBe(true);
    expect(out.revoke_status).toBe(200);
    expect(out.after_revoke).toEqual({ active: false });
  });
});
