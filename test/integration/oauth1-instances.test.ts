import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/util/clock.js';
import { createHarness, DIALECTS, json, userWithToken, type Harness } from '../helpers/harness.js';
import { ACCESS_TOKEN, authHeader, dance, formOf, problemOf, registerConsumer, signedInject, type TestConsumer } from '../helpers/oauth1.js';
import { hiddenFields, signIn } from '../helpers/oauth2.js';

/**
 * Instances are stateless apart from the store: two harnesses on one PostgreSQL are two
 * instances behind a load balancer. Nonces, single use and revocations hold across them and
 * across a restart, because the store decides, not a process's memory.
 */
describe('OAuth 1.0a across two instances sharing PostgreSQL', () => {
  let a: Harness;
  let b: Harness;
  let clock: ManualClock;
  beforeEach(async () => {
    clock = new ManualClock(Date.now());
    a = await createHarness('postgres', { clock });
    b = await createHarness('postgres', { clock, store: a.store });
    await userWithToken(a, 'alice', { password: 'alice-password' });
  });
  afterEach(async () => {
    await b.close();
    await a.close();
  });

  it('refuses on one instance a nonce accepted on the other, and of concurrent replays on both exactly one passes', async () => {
    const c = await registerConsumer(a, { method: 'HMAC-SHA1' });
    const d = await dance(a, c, await signIn(a, 'alice', 'alice-password'));
    const header = authHeader(c, { path: '/rest/api/2/myself', token: d.access, now: clock.now() });
    const send = (h: Harness) => h.inject({ url: '/rest/api/2/myself', headers: { authorization: header } });
    expect((await send(a)).statusCode).toBe(200);
    const replay = await send(b);
    expect(replay.statusCode).toBe(401);
    expect(problemOf(replay)).toBe('nonce_used');

    const fresh = authHeader(c, { path: '/rest/api/2/myself', token: d.access, now: clock.now() });
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? a : b).inject({ url: '/rest/api/2/myself', headers: { authorization: fresh } })));
    expect(results.filter((r) => r.statusCode === 200)).toHaveLength(1);
    expect(results.filter((r) => problemOf(r) === 'nonce_used')).toHaveLength(11);
  });

  it('issues on one instance, authorizes and exchanges on the other; a request token is exchanged once', async () => {
    const c = await registerConsumer(a);
    const d = await dance(b, c, await signIn(b, 'alice', 'alice-password'));
    expect((await signedInject(a, c, { path: '/rest/api/2/myself', token: d.access })).statusCode).toBe(200);

    // The consent on A, then concurrent exchanges on both.
    const jar = await signIn(a, 'alice', 'alice-password');
    const rt = formOf(await signedInject(a, c, { method: 'POST', path: '/plugins/servlet/oauth/request-token', oauth: { oauth_callback: 'oob' } }));
    const page = await a.inject({ url: `/plugins/servlet/oauth/authorize?oauth_token=${rt.oauth_token}`, headers: { cookie: jar.header } });
    jar.take(page);
    const form = hiddenFields(page.body);
    form.set('approve', 'Allow');
    const shown = await b.inject({ method: 'POST', url: '/plugins/servlet/oauth/authorize', headers: { cookie: jar.header, 'content-type': 'application/x-www-form-urlencoded' }, payload: form.toString() });
    const verifier = /id="verifier">(\w{6})</.exec(shown.body)![1]!;
    const token = { key: rt.oauth_token!, secret: rt.oauth_token_secret! };
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => signedInject(i % 2 ? a : b, c, { method: 'POST', path: ACCESS_TOKEN, token, oauth: { oauth_verifier: verifier } })));
    expect(results.filter((r) => r.statusCode === 200)).toHaveLength(1);
    expect(results.filter((r) => problemOf(r) === 'token_rejected')).toHaveLength(7);
  });
});

/** A way to end what alice authorized, done on instance A through the admin API. */
type Revoke = (a: Harness, c: TestConsumer, aliceId: string) => Promise<void>;

const REVOCATIONS: Array<[string, string, Revoke]> = [
  [
    'an admin revokes the user’s authorization',
    'token_revoked',
    async (a, c, aliceId) => {
      const res = await a.inject({ method: 'DELETE', url: `/api/v1/users/${aliceId}/authorizations/oauth1:${c.linkId}`, headers: { authorization: a.adminBasic } });
      expect(res.statusCode, res.body).toBe(204);
    },
  ],
  [
    'an admin revokes everything issued through the link',
    'token_revoked',
    async (a, c) => {
      const res = await a.inject({ method: 'DELETE', url: `/api/v1/links/${c.linkId}/authorizations`, headers: { authorization: a.adminBasic } });
      expect(json(res)).toEqual({ revoked: 1 });
    },
  ],
  [
    'the user is disabled',
    'token_revoked',
    async (a, _c, aliceId) => {
      const res = await a.inject({ method: 'PATCH', url: `/api/v1/users/${aliceId}`, headers: { authorization: a.adminBasic }, payload: { disabled: true } });
      expect(res.statusCode, res.body).toBe(200);
    },
  ],
  // The consumer goes, and what it was issued with it: the request names a consumer nobody has (Jira: consumer_key_unknown).
  [
    'the link’s incoming OAuth 1.0a consumer is removed',
    'consumer_key_unknown',
    async (a, c) => {
      const res = await a.inject({ method: 'DELETE', url: `/api/v1/links/${c.linkId}/incoming/oauth1`, headers: { authorization: a.adminBasic } });
      expect(res.statusCode, res.body).toBe(200);
    },
  ],
  [
    'the link is deleted',
    'consumer_key_unknown',
    async (a, c) => {
      const res = await a.inject({ method: 'DELETE', url: `/api/v1/links/${c.linkId}`, headers: { authorization: a.adminBasic } });
      expect(res.statusCode, res.body).toBe(204);
    },
  ],
];

/**
 * A revocation reaches the other instance through the store once that instance's cached
 * entries (the token with its secret, the consumer, the user) expire: within
 * APPLINKS_AUTH_CACHE_TTL_MS, whichever way the access was ended.
 */
describe.each(DIALECTS)('OAuth 1.0a revocations across two instances on %s', (dialect) => {
  let a: Harness;
  let b: Harness;
  let clock: ManualClock;
  let aliceId: string;
  beforeEach(async () => {
    clock = new ManualClock(Date.now());
    a = await createHarness(dialect, { clock });
    b = await createHarness(dialect, { clock, store: a.store });
    aliceId = (await userWithToken(a, 'alice', { password: 'alice-password' })).user.id;
  });
  afterEach(async () => {
    await b.close();
    await a.close();
  });

  it.each(REVOCATIONS)('refuses on B a token once %s on A, within the cache lifetime', async (_how, problem, revoke) => {
    const c = await registerConsumer(a);
    const d = await dance(a, c, await signIn(a, 'alice', 'alice-password'));
    const myself = (h: Harness) => signedInject(h, c, { path: '/rest/api/2/myself', token: d.access });
    // B serves the token: it now holds the token, its consumer and alice in its caches.
    expect((await myself(b)).statusCode).toBe(200);
    await revoke(a, c, aliceId);
    expect(problemOf(await myself(a))).toBe(problem);
    clock.advance(a.config.authCacheTtlMs + 1);
    const late = await myself(b);
    expect(late.statusCode, late.body).toBe(401);
    expect(problemOf(late)).toBe(problem);
    expect(String(late.headers['www-authenticate'])).toContain(`oauth_problem="${problem}"`);
  });
});

describe.each(DIALECTS)('OAuth 1.0a nonces after a restart on %s', (dialect) => {
  it('refuses a replay sent to the restarted server within the window, and forgets nonces once no timestamp could pass', async () => {
    const clock = new ManualClock(Date.now());
    const first = await createHarness(dialect, { clock });
    const store = first.store;
    let second: Harness | undefined;
    try {
      const c = await registerConsumer(first, { method: 'HMAC-SHA1', config: { allow2LO: true } });
      const header = authHeader(c, { path: '/x', token: { key: '', secret: '' }, now: clock.now() });
      expect((await first.inject({ url: '/x', headers: { authorization: header } })).statusCode).toBe(200);
      await first.app.close();
      await first.services.close();
      second = await createHarness(dialect, { clock, store });
      expect(problemOf(await second.inject({ url: '/x', headers: { authorization: header } }))).toBe('nonce_used');
      // Past the window the timestamp refuses it anyway; once no timestamp could pass, pruning drops the nonce.
      clock.advance((second.config.oauth1TimestampWindowSeconds + 61) * 1000);
      expect(problemOf(await second.inject({ url: '/x', headers: { authorization: header } }))).toBe('timestamp_refused');
      clock.advance((second.config.oauth1TimestampWindowSeconds + 120) * 1000);
      const { oauth1Of } = await import('../../src/modules/oauth1/index.js');
      expect(await oauth1Of(second.services).provider.prune()).toBeGreaterThanOrEqual(1);
    } finally {
      await second?.app.close();
      await second?.services.close();
      await store.drop();
    }
  });
});
