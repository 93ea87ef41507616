import type { LightMyRequestResponse } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, basic, createHarness, DIALECTS, json, type Harness } from '../helpers/harness.js';

/** A cookie jar for inject(): what Set-Cookie gave, sent back as Cookie. */
class Jar {
  private readonly cookies = new Map<string, string>();
  take(res: LightMyRequestResponse): void {
    const set = res.headers['set-cookie'];
    for (const line of Array.isArray(set) ? set : set ? [set] : []) {
      const [pair] = line.split(';');
      const eq = pair!.indexOf('=');
      const value = pair!.slice(eq + 1);
      if (value === '' || /Max-Age=0/.test(line)) this.cookies.delete(pair!.slice(0, eq));
      else this.cookies.set(pair!.slice(0, eq), value);
    }
  }
  set(name: string, value: string): void {
    this.cookies.set(name, value);
  }
  get header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

async function signInForm(h: Harness, jar: Jar, next = '/applinks/account'): Promise<string> {
  const page = await h.inject({ url: `/applinks/login?next=${encodeURIComponent(next)}`, headers: { cookie: jar.header } });
  jar.take(page);
  return /name="csrf_token" value="([^"]+)"/.exec(page.body)![1]!;
}

async function signIn(h: Harness, jar: Jar, username: string, password: string, next?: string): Promise<LightMyRequestResponse> {
  const csrf = await signInForm(h, jar, next);
  const res = await h.inject({
    method: 'POST',
    url: '/applinks/login',
    headers: { cookie: jar.header, 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ username, password, csrf_token: csrf, next: next ?? '/applinks/account' }).toString(),
  });
  jar.take(res);
  return res;
}

describe.each(DIALECTS)('sign-in on %s', (dialect) => {
  let h: Harness;
  beforeEach(async () => {
    h = await createHarness(dialect);
  });
  afterEach(async () => h.close());

  it('shows a form labelled Username and Password with a Sign in button', async () => {
    const page = await h.inject({ url: '/applinks/login' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    expect(page.body).toMatch(/<label for="username">Username<\/label>/);
    expect(page.body).toMatch(/<label for="password">Password<\/label>/);
    expect(page.body).toMatch(/<button type="submit">Sign in<\/button>/);
    expect(page.headers['x-frame-options']).toBe('DENY');
    expect(page.headers['set-cookie']).toMatch(/^applinks_csrf=[^;]+; Path=\/; HttpOnly; SameSite=Lax$/);
  });

  it('signs in with a session cookie that is HttpOnly and SameSite=Lax, and signs out', async () => {
    const jar = new Jar();
    const res = await signIn(h, jar, 'admin', ADMIN_PASSWORD, '/somewhere?x=1');
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/somewhere?x=1');
    expect([res.headers['set-cookie']].flat()[0]).toMatch(/^applinks_session=alses_[^;]+; Path=\/; HttpOnly; SameSite=Lax; Max-Age=43200$/);
    const me = json(await h.inject({ url: '/api/v1/me', headers: { cookie: jar.header } }));
    expect(me).toMatchObject({ authenticated: true, authType: 'session', user: { username: 'admin' } });
    const account = await h.inject({ url: '/applinks/account', headers: { cookie: jar.header } });
    expect(account.body).toContain('Administrator');
    const csrf = /name="csrf_token" value="([^"]+)"/.exec(account.body)![1]!;
    const out = await h.inject({ method: 'POST', url: '/applinks/logout', headers: { cookie: jar.header, 'content-type': 'application/x-www-form-urlencoded' }, payload: `csrf_token=${csrf}` });
    expect(out.statusCode).toBe(303);
    jar.take(out);
    expect(json(await h.inject({ url: '/api/v1/me', headers: { cookie: jar.header } })).authenticated).toBe(false);
  });

  it('never redirects off-site after sign-in', async () => {
    for (const next of ['https://evil.example/', '//evil.example/x', '/\\evil.example']) {
      const res = await signIn(h, new Jar(), 'admin', ADMIN_PASSWORD, next);
      expect(res.headers.location, next).toBe('/applinks/account');
    }
  });

  it('goes to the account page, not a failed response, when next is not made of URI characters', async () => {
    for (const next of ['/€', '/a b', '/x\u00fc']) {
      const res = await signIn(h, new Jar(), 'admin', ADMIN_PASSWORD, next);
      expect([res.statusCode, res.headers.location], next).toEqual([303, '/applinks/account']);
    }
    const kept = await signIn(h, new Jar(), 'admin', ADMIN_PASSWORD, '/applinks/account?x=%E2%82%AC');
    expect(kept.headers.location).toBe('/applinks/account?x=%E2%82%AC');
  });

  it('refuses forms without a valid CSRF token', async () => {
    const jar = new Jar();
    await signInForm(h, jar);
    const res = await h.inject({
      method: 'POST',
      url: '/applinks/login',
      headers: { cookie: jar.header, 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ username: 'admin', password: ADMIN_PASSWORD, csrf_token: 'forged' }).toString(),
    });
    expect(res.statusCode).toBe(403);
    expect(res.headers['set-cookie'] ?? '').not.toMatch(/applinks_session/);
    // A session-authenticated API call that changes something needs the CSRF header too.
    await signIn(h, jar, 'admin', ADMIN_PASSWORD);
    const post = await h.inject({ method: 'POST', url: '/api/v1/me/tokens', headers: { cookie: jar.header }, payload: { name: 'x' } });
    expect(post.statusCode).toBe(403);
    expect(json(post).error).toBe('csrf_failed');
  });

  it('binds a CSRF token to the session: a pair obtained without it (or planted) does not act for a signed-in user', async () => {
    const jar = new Jar();
    const anonymousToken = await signInForm(h, jar);
    await signIn(h, jar, 'admin', ADMIN_PASSWORD);
    const planted = await h.inject({ method: 'POST', url: '/api/v1/me/tokens', headers: { cookie: jar.header, 'x-csrf-token': anonymousToken }, payload: { name: 'x' } });
    expect([planted.statusCode, json(planted).error]).toEqual([403, 'csrf_failed']);
    const account = await h.inject({ url: '/applinks/account', headers: { cookie: jar.header } });
    const bound = /name="csrf_token" value="([^"]+)"/.exec(account.body)![1]!;
    const ok = await h.inject({ method: 'POST', url: '/api/v1/me/tokens', headers: { cookie: jar.header, 'x-csrf-token': bound }, payload: { name: 'x' } });
    expect(ok.statusCode).toBe(201);
  });

  it('tells a page signed in by the session its CSRF value at /api/v1/me, and no other credential', async () => {
    const jar = new Jar();
    await signIn(h, jar, 'admin', ADMIN_PASSWORD);
    const me = await h.inject({ url: '/api/v1/me', headers: { cookie: jar.header } });
    jar.take(me);
    const { csrfToken } = json<{ csrfToken: string }>(me);
    expect(csrfToken).toMatch(/^[\w-]{40,}$/);
    // An administrator's change through the API with the browser session, as the console makes it.
    const created = await h.inject({ method: 'POST', url: '/api/v1/users', headers: { cookie: jar.header, 'x-csrf-token': csrfToken }, payload: { username: 'dora', password: 'dora-password' } });
    expect(created.statusCode).toBe(201);
    const forged = await h.inject({ method: 'POST', url: '/api/v1/users', headers: { cookie: jar.header, 'x-csrf-token': `${csrfToken.slice(0, -1)}A` }, payload: { username: 'eve', password: 'eve-password' } });
    expect([forged.statusCode, json(forged).error]).toEqual([403, 'csrf_failed']);
    // A credential that is not the ambient cookie needs no CSRF value and is given none.
    expect(json(await h.inject({ url: '/api/v1/me', headers: { authorization: h.adminBasic } }))).not.toHaveProperty('csrfToken');
    expect(json(await h.inject({ url: '/api/v1/me' }))).not.toHaveProperty('csrfToken');
  });

  it('marks the session cookie Secure when the base URL is https', async () => {
    const secure = await createHarness(dialect, { config: { baseUrl: 'https://applinks.example' } });
    try {
      const res = await signIn(secure, new Jar(), 'admin', ADMIN_PASSWORD);
      expect(String(res.headers['set-cookie'])).toMatch(/; Secure; Max-Age=/);
    } finally {
      await secure.close();
    }
  });

  it('ends a disabled user’s sessions on the next request', async () => {
    await h.services.users.create({ username: 'erin', password: 'erin-password' }, { id: null, name: 't', address: null });
    const jar = new Jar();
    expect((await signIn(h, jar, 'erin', 'erin-password')).statusCode).toBe(303);
    expect(json(await h.inject({ url: '/api/v1/me', headers: { cookie: jar.header } })).authenticated).toBe(true);
    const erin = (await h.services.users.findByUsername('erin'))!;
    expect((await h.inject({ method: 'PATCH', url: `/api/v1/users/${erin.id}`, headers: { authorization: h.adminBasic }, payload: { disabled: true } })).statusCode).toBe(200);
    expect(json(await h.inject({ url: '/api/v1/me', headers: { cookie: jar.header } })).authenticated).toBe(false);
    const page = await h.inject({ url: '/applinks/account', headers: { cookie: jar.header } });
    expect(page.statusCode).toBe(303);
    expect(page.headers.location).toMatch(/^\/applinks\/login\?next=/);
    expect((await signIn(h, new Jar(), 'erin', 'erin-password')).statusCode).toBe(401);
  });

  it('creates and revokes API tokens from the account page', async () => {
    const jar = new Jar();
    await signIn(h, jar, 'admin', ADMIN_PASSWORD);
    const account = await h.inject({ url: '/applinks/account', headers: { cookie: jar.header } });
    const csrf = /name="csrf_token" value="([^"]+)"/.exec(account.body)![1]!;
    const created = await h.inject({ method: 'POST', url: '/applinks/account/tokens', headers: { cookie: jar.header, 'content-type': 'application/x-www-form-urlencoded' }, payload: `csrf_token=${csrf}&name=laptop&expires=` });
    expect(created.statusCode).toBe(201);
    const token = /<code class="secret" id="new-token">(alpat_[^<]+)<\/code>/.exec(created.body)![1]!;
    expect(json(await h.inject({ url: '/x', headers: { authorization: `Bearer ${token}` } })).authenticated).toBe(true);
    const id = /action="\/applinks\/account\/tokens\/([^/]+)\/revoke"/.exec(created.body)![1]!;
    const revoked = await h.inject({ method: 'POST', url: `/applinks/account/tokens/${id}/revoke`, headers: { cookie: jar.header, 'content-type': 'application/x-www-form-urlencoded' }, payload: `csrf_token=${csrf}` });
    expect(revoked.statusCode).toBe(303);
    expect((await h.inject({ url: '/x', headers: { authorization: `Bearer ${token}` } })).statusCode).toBe(401);
    const page = await h.inject({ url: '/applinks/account', headers: { cookie: jar.header } });
    expect(page.body).not.toContain(token);
  });

  it('lets a user change their own password, proving the current one; other sessions end', async () => {
    await h.services.users.create({ username: 'gina', password: 'gina-password' }, { id: null, name: 't', address: null });
    const laptop = new Jar();
    const phone = new Jar();
    await signIn(h, laptop, 'gina', 'gina-password');
    await signIn(h, phone, 'gina', 'gina-password');
    const account = await h.inject({ url: '/applinks/account', headers: { cookie: laptop.header } });
    const csrf = /name="csrf_token" value="([^"]+)"/.exec(account.body)![1]!;
    const post = (current: string, next: string) =>
      h.inject({ method: 'POST', url: '/applinks/account/password', headers: { cookie: laptop.header, 'content-type': 'application/x-www-form-urlencoded' }, payload: new URLSearchParams({ csrf_token: csrf, currentPassword: current, newPassword: next }).toString() });
    const wrong = await post('not-it', 'gina-new-password');
    expect(wrong.statusCode).toBe(400);
    expect(wrong.body).toContain('The current password is wrong.');
    const ok = await post('gina-password', 'gina-new-password');
    expect(ok.statusCode).toBe(200);
    laptop.take(ok);
    expect(json(await h.inject({ url: '/api/v1/me', headers: { cookie: laptop.header } })).authenticated).toBe(true);
    expect(json(await h.inject({ url: '/api/v1/me', headers: { cookie: phone.header } })).authenticated).toBe(false);
    expect((await h.inject({ url: '/x', headers: { authorization: basic('gina', 'gina-password') } })).statusCode).toBe(401);
    const api = await h.inject({ method: 'PUT', url: '/api/v1/me/password', headers: { authorization: basic('gina', 'gina-new-password') }, payload: { currentPassword: 'gina-new-password', newPassword: 'short' } });
    expect([api.statusCode, json(api).field]).toEqual([400, 'newPassword']);
  });

  it('throttles failed passwords per user with 429 and Retry-After, shared by every instance on the store', async () => {
    const other = await createHarness(dialect, { store: h.store });
    try {
      for (let i = 0; i < 5; i++) {
        const on = i % 2 === 0 ? h : other;
        const res = await on.inject({ url: '/x', headers: { authorization: basic('admin', `wrong-${i}`) } });
        expect(res.statusCode).toBe(401);
      }
      for (const on of [h, other]) {
        const res = await on.inject({ url: '/x', headers: { authorization: basic('admin', ADMIN_PASSWORD) } });
        expect(res.statusCode).toBe(429);
        expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
        expect(json(res).error).toBe('too_many_attempts');
      }
      const form = await signIn(other, new Jar(), 'admin', ADMIN_PASSWORD);
      expect(form.statusCode).toBe(429);
      expect(form.body).toContain('Too many failed attempts');
      // The window passes and the right password works again.
      h.clock.advance(901_000);
      expect((await h.inject({ url: '/x', headers: { authorization: basic('admin', ADMIN_PASSWORD) } })).statusCode).toBe(200);
      const failures = json<{ entries: Array<{ action: string; target: { name: string } }> }>(await h.inject({ url: '/api/v1/audit?action=signin.failed', headers: { authorization: h.adminBasic } }));
      expect(failures.entries).toHaveLength(5);
      expect(failures.entries[0]!.target.name).toBe('admin');
    } finally {
      await other.close();
    }
  });

  it('keeps a browser where the user signed in before usable while guesses from elsewhere lock the name', async () => {
    const first = await signIn(h, new Jar(), 'admin', ADMIN_PASSWORD);
    expect(first.statusCode).toBe(303);
    const device = [first.headers['set-cookie']].flat().find((c) => String(c).startsWith('applinks_device='));
    // Sent back to the sign-in form only: the host behind the gateway never sees it.
    expect(device).toMatch(/^applinks_device=[\w-]+\.[\w-]+; Path=\/applinks\/login; HttpOnly; SameSite=Lax; Max-Age=15552000$/);
    const known = /^applinks_device=([^;]+)/.exec(String(device))![1]!;
    /** A browser (signed out) that carries a device cookie. */
    const carrying = (value: string) => {
      const jar = new Jar();
      jar.set('applinks_device', value);
      return jar;
    };
    const laptop = carrying(known);
    // Past the cache of recent successes, so every check below reaches the throttle.
    h.clock.advance((h.config.passwordCacheTtlSeconds + 1) * 1000);

    // Someone else guesses until the name is locked for every browser that is not known.
    for (let i = 0; i < h.config.signInMaxFailuresPerUser; i++) expect((await h.inject({ url: '/x', headers: { authorization: basic('admin', `guess-${i}`) } })).statusCode).toBe(401);
    expect((await signIn(h, new Jar(), 'admin', ADMIN_PASSWORD)).statusCode).toBe(429);
    expect((await h.inject({ url: '/x', headers: { authorization: basic('admin', ADMIN_PASSWORD) } })).statusCode).toBe(429);

    // The admin's own browser still signs in.
    const again = await signIn(h, laptop, 'admin', ADMIN_PASSWORD);
    expect([again.statusCode, again.headers.location]).toEqual([303, '/applinks/account']);
    expect(json(await h.inject({ url: '/api/v1/me', headers: { cookie: laptop.header } })).authenticated).toBe(true);
    // ... which did not unlock the name for the guesser (once that success is no longer cached).
    h.clock.advance((h.config.passwordCacheTtlSeconds + 1) * 1000);
    expect((await h.inject({ url: '/x', headers: { authorization: basic('admin', ADMIN_PASSWORD) } })).statusCode).toBe(429);

    // The cookie is bound to its user: it does not shield another name, and a forged one counts for nothing.
    expect((await signIn(h, carrying(`${known.split('.')[0]}.${'B'.repeat(43)}`), 'admin', ADMIN_PASSWORD)).statusCode).toBe(429);
    await h.services.users.create({ username: 'carol', password: 'carol-password' }, { id: null, name: 't', address: null });
    for (let i = 0; i < h.config.signInMaxFailuresPerUser; i++) await h.inject({ url: '/x', headers: { authorization: basic('carol', `guess-${i}`) } });
    expect((await signIn(h, carrying(known), 'carol', 'carol-password')).statusCode).toBe(429);

    // A known browser's own wrong guesses lock that browser only, for the same window.
    const guesser = carrying(known);
    for (let i = 0; i < h.config.signInMaxFailuresPerUser; i++) expect((await signIn(h, guesser, 'admin', `typo-${i}`)).statusCode).toBe(401);
    expect((await signIn(h, guesser, 'admin', ADMIN_PASSWORD)).statusCode).toBe(429);
  });

  it('counts each attempt before checking it: a parallel burst gets no more guesses than the limit', async () => {
    const burst = await Promise.all(Array.from({ length: 30 }, (_, i) => h.inject({ url: '/x', headers: { authorization: basic('admin', `burst-${i}`) } })));
    const statuses = burst.map((r) => r.statusCode);
    expect(statuses.filter((s) => s === 401).length).toBeLessThanOrEqual(h.config.signInMaxFailuresPerUser);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(30 - h.config.signInMaxFailuresPerUser);
    expect(statuses.every((s) => s === 401 || s === 429)).toBe(true);
  });

  it('lets a burst of requests with the right password through on a cold cache, and again when its cached success expires', async () => {
    // Twice the per-user limit at once: each one counted before the first check ended would be
    // a 429 for the user's own password.
    const burst = () => Promise.all(Array.from({ length: 2 * h.config.signInMaxFailuresPerUser + 2 }, () => h.inject({ url: '/x', headers: { authorization: h.adminBasic } })));
    expect((await burst()).map((r) => r.statusCode)).toEqual(Array(2 * h.config.signInMaxFailuresPerUser + 2).fill(200));
    h.clock.advance((h.config.passwordCacheTtlSeconds + 1) * 1000);
    expect((await burst()).map((r) => r.statusCode)).toEqual(Array(2 * h.config.signInMaxFailuresPerUser + 2).fill(200));
    // Wrong guesses at once are still one attempt each.
    const guesses = await Promise.all(Array.from({ length: 12 }, (_, i) => h.inject({ url: '/x', headers: { authorization: basic('admin', `guess-${i}`) } })));
    expect(guesses.filter((r) => r.statusCode === 429).length).toBeGreaterThanOrEqual(12 - h.config.signInMaxFailuresPerUser);
  });

  it('stops honouring a cached password success under the old name once another instance renamed the user', async () => {
    const other = await createHarness(dialect, { store: h.store });
    try {
      const carol = await h.services.users.create({ username: 'carol', password: 'carol-password' }, { id: null, name: 't', address: null });
      expect((await other.inject({ url: '/x', headers: { authorization: basic('carol', 'carol-password') } })).statusCode).toBe(200);
      const renamed = await h.inject({ method: 'PATCH', url: `/api/v1/users/${carol.id}`, headers: { authorization: h.adminBasic }, payload: { username: 'caroline' } });
      expect(renamed.statusCode).toBe(200);
      // The other instance sees the new record once its user cache lets the old one go.
      other.clock.advance(other.config.authCacheTtlMs + 1);
      const old = await other.inject({ url: '/x', headers: { authorization: basic('carol', 'carol-password') } });
      expect([old.statusCode, json(old).error]).toEqual([401, 'invalid_credentials']);
      expect((await other.inject({ url: '/x', headers: { authorization: basic('caroline', 'carol-password') } })).statusCode).toBe(200);
    } finally {
      await other.close();
    }
  });

  it('refuses names no account can have without a 500, and keeps typed unknown names out of the audit log', async () => {
    for (const name of ['ad\u0000min', 'x'.repeat(300)]) {
      const res = await h.inject({ url: '/x', headers: { authorization: basic(name, 'whatever') } });
      expect(res.statusCode).toBe(401);
      expect(json(res).error).toBe('invalid_credentials');
      const form = await signIn(h, new Jar(), name, 'whatever');
      expect(form.statusCode).toBe(401);
    }
    // A password typed into the name field is not written down.
    await h.inject({ url: '/x', headers: { authorization: basic('My-Secret-Passw0rd', 'x') } });
    const audit = await h.inject({ url: '/api/v1/audit?action=signin.failed', headers: { authorization: h.adminBasic } });
    expect(audit.body).not.toContain('My-Secret-Passw0rd');
    expect(audit.body).toContain('(unknown user)');
  });

  it('throttles per client address across usernames', async () => {
    for (let i = 0; i < 20; i++) {
      await h.inject({ url: '/x', headers: { authorization: basic(`nobody${i}`, 'wrong') }, remoteAddress: '203.0.113.7' });
    }
    const res = await h.inject({ url: '/x', headers: { authorization: h.adminBasic }, remoteAddress: '203.0.113.7' });
    expect(res.statusCode).toBe(429);
    expect((await h.inject({ url: '/x', headers: { authorization: h.adminBasic }, remoteAddress: '203.0.113.8' })).statusCode).toBe(200);
  });

  it('refuses Basic passwords when password authentication is switched off, but not API tokens', async () => {
    const strict = await createHarness(dialect, { config: { basicPasswordAuth: false } });
    try {
      const res = await strict.inject({ url: '/x', headers: { authorization: strict.adminBasic } });
      expect(res.statusCode).toBe(401);
      expect(json(res).error).toBe('password_auth_disabled');
      const admin = (await strict.services.users.findByUsername('admin'))!;
      const { token } = await strict.services.apiTokens.create(admin.id, { name: 't', expiresAt: null }, { id: null, name: 't', address: null });
      expect((await strict.inject({ url: '/x', headers: { authorization: basic('admin', token) } })).statusCode).toBe(200);
    } finally {
      await strict.close();
    }
  });
});

describe('behind a reverse proxy that removes a path prefix', () => {
  it('names its own pages and redirects with the base URL path, and leaves the rest alone', async () => {
    const h = await createHarness('sqlite', { config: { baseUrl: 'https://example.com/applinks-ctx' } });
    try {
      const jar = new Jar();
      const account = await h.inject({ url: '/applinks/account' });
      expect(account.statusCode).toBe(303);
      expect(account.headers.location).toBe('/applinks-ctx/applinks/login?next=%2Fapplinks%2Faccount');
      const page = await h.inject({ url: '/applinks/login' });
      expect(page.body).toContain('action="/applinks-ctx/applinks/login"');
      jar.take(page);
      const csrf = /name="csrf_token" value="([^"]+)"/.exec(page.body)![1]!;
      const res = await h.inject({
        method: 'POST',
        url: '/applinks/login',
        headers: { cookie: jar.header, 'content-type': 'application/x-www-form-urlencoded' },
        payload: new URLSearchParams({ username: 'admin', password: ADMIN_PASSWORD, csrf_token: csrf, next: '/applinks/account' }).toString(),
      });
      expect(res.statusCode).toBe(303);
      expect(res.headers.location).toBe('/applinks-ctx/applinks/account');
      jar.take(res);
      const mine = await h.inject({ url: '/applinks/account', headers: { cookie: jar.header } });
      expect(mine.statusCode).toBe(200);
      expect(mine.body).toContain('action="/applinks-ctx/applinks/logout"');
      expect(mine.body).not.toMatch(/(action|href)="\/applinks\//);
      // JSON answers are not rewritten.
      const created = await h.inject({ method: 'POST', url: '/api/v1/users', headers: { authorization: basic('admin', ADMIN_PASSWORD) }, payload: { username: 'zed' } });
      expect(created.headers.location).toMatch(/^\/applinks-ctx\/api\/v1\/users\//);
    } finally {
      await h.close();
    }
  });
});
