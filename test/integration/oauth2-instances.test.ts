import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/util/clock.js';
import { createHarness, json, userWithToken, type Harness } from '../helpers/harness.js';
import { exchange, INTROSPECT, obtainCode, post, REDIRECT, registerClient, REVOKE, signIn, TOKEN, type Tokens } from '../helpers/oauth2.js';

/**
 * Two instances sharing one PostgreSQL, as behind a load balancer: what one issues, the other
 * honours, refreshes and revokes; single use and rotation hold across them because they are
 * store-atomic, not in-memory.
 */
describe('OAuth 2.0 across two instances sharing PostgreSQL', () => {
  let a: Harness;
  let b: Harness;
  let clock: ManualClock;
  beforeEach(async () => {
    clock = new ManualClock(Date.now());
    a = await createHarness('postgres', { clock });
    b = await createHarness('postgres', { clock, store: a.store });
  });
  afterEach(async () => {
    await b.close();
    await a.close();
  });

  const bearer = (h: Harness, t: string) => h.inject({ url: '/x', headers: { authorization: `Bearer ${t}` } });

  it('issues on one instance; the tokens work, refresh and revoke on the other', async () => {
    const client = await registerClient(a);
    await userWithToken(a, 'alice');
    // Sign in and consent on A, exchange the code on B.
    const jar = await signIn(a, 'alice', 'alice-password');
    const code = await obtainCode(a, jar, client);
    const tokens = await exchange(b, client, code);
    expect((await bearer(a, tokens.access_token)).statusCode).toBe(200);
    expect((await bearer(b, tokens.access_token)).statusCode).toBe(200);
    expect(json(await post(a, INTROSPECT, client, { token: tokens.access_token }))).toMatchObject({ active: true, username: 'alice' });

    // Refresh on B, use the new token on A.
    const refreshed = json<Tokens>(await post(b, TOKEN, client, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token }));
    expect((await bearer(a, refreshed.access_token)).statusCode).toBe(200);

    // Revoke on B: B refuses at once, A once its cache entry expires (APPLINKS_AUTH_CACHE_TTL_MS).
    expect((await post(b, REVOKE, client, { token: refreshed.refresh_token })).statusCode).toBe(200);
    expect((await bearer(b, refreshed.access_token)).statusCode).toBe(401);
    clock.advance(a.config.authCacheTtlMs + 1);
    expect((await bearer(a, refreshed.access_token)).statusCode).toBe(401);
    expect((await bearer(a, tokens.access_token)).statusCode).toBe(401);
    expect((await post(a, TOKEN, client, { grant_type: 'refresh_token', refresh_token: refreshed.refresh_token })).statusCode).toBe(400);
  });

  it('keeps codes single use across instances: of concurrent redemptions on both, exactly one wins', async () => {
    const client = await registerClient(a);
    await userWithToken(a, 'bob');
    const jar = await signIn(a, 'bob', 'bob-password');
    const code = await obtainCode(a, jar, client);
    const redeem = (h: Harness) => post(h, TOKEN, client, { grant_type: 'authorization_code', code: code.code, redirect_uri: REDIRECT, code_verifier: code.verifier });
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => redeem(i % 2 === 0 ? a : b)));
    expect(results.filter((r) => r.statusCode === 200)).toHaveLength(1);
    expect(results.filter((r) => r.statusCode === 400 && json(r).error === 'invalid_grant')).toHaveLength(9);
  });

  it('detects refresh token reuse across instances and revokes the grant everywhere', async () => {
    const client = await registerClient(a);
    await userWithToken(a, 'carol');
    const jar = await signIn(a, 'carol', 'carol-password');
    const t0 = await exchange(a, client, await obtainCode(a, jar, client));
    const t1 = json<Tokens>(await post(a, TOKEN, client, { grant_type: 'refresh_token', refresh_token: t0.refresh_token }));
    const t2 = json<Tokens>(await post(b, TOKEN, client, { grant_type: 'refresh_token', refresh_token: t1.refresh_token }));
    expect((await bearer(a, t2.access_token)).statusCode).toBe(200);
    // t0 is two generations old: presenting it on B revokes the grant; A sees it after its cache TTL.
    expect(json(await post(b, TOKEN, client, { grant_type: 'refresh_token', refresh_token: t0.refresh_token })).error).toBe('invalid_grant');
    clock.advance(a.config.authCacheTtlMs + 1);
    expect((await bearer(a, t2.access_token)).statusCode).toBe(401);
    expect((await post(a, TOKEN, client, { grant_type: 'refresh_token', refresh_token: t2.refresh_token })).statusCode).toBe(400);
  });

  it('refuses, and only that, a service account whose link the other instance deleted within the cache window', async () => {
    await userWithToken(a, 'robot');
    const gone = await registerClient(a, { serviceAccount: 'robot', redirectUris: [], scopes: ['READ'] });
    const kept = await registerClient(a, { serviceAccount: 'robot', redirectUris: [], scopes: ['READ'] });
    for (const c of [gone, kept]) expect((await post(a, TOKEN, c, { grant_type: 'client_credentials' })).statusCode).toBe(200);
    expect((await b.inject({ method: 'DELETE', url: `/api/v1/oauth2/clients/${gone.clientId}?deleteLink=true`, headers: { authorization: b.adminBasic } })).statusCode).toBe(204);
    // A still holds the client and its link in its caches: the token row it writes names a link
    // that is gone. Written in one batch with another client's, only that one fails, with 401.
    const [refused, issued] = await Promise.all([post(a, TOKEN, gone, { grant_type: 'client_credentials' }), post(a, TOKEN, kept, { grant_type: 'client_credentials' })]);
    expect([refused.statusCode, json(refused).error]).toEqual([401, 'invalid_client']);
    expect(issued.statusCode, issued.body).toBe(200);
  });

  it('sees a client deleted on the other instance', async () => {
    const client = await registerClient(a);
    await userWithToken(a, 'dave');
    const jar = await signIn(a, 'dave', 'dave-password');
    const t = await exchange(a, client, await obtainCode(a, jar, client));
    expect((await bearer(a, t.access_token)).statusCode).toBe(200);
    expect((await b.inject({ method: 'DELETE', url: `/api/v1/oauth2/clients/${client.clientId}`, headers: { authorization: b.adminBasic } })).statusCode).toBe(204);
    clock.advance(a.config.authCacheTtlMs + 1);
    expect((await bearer(a, t.access_token)).statusCode).toBe(401);
    expect(json(await post(a, TOKEN, client, { grant_type: 'refresh_token', refresh_token: t.refresh_token })).error).toBe('invalid_client');
  });
});
