import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hashToken } from '../../src/crypto/tokens.js';
import { basic, createHarness, DIALECTS, json, userWithToken, type Harness } from '../helpers/harness.js';
import { signIn } from '../helpers/oauth2.js';

describe.each(DIALECTS)('core server on %s', (dialect) => {
  let h: Harness;
  beforeEach(async () => {
    h = await createHarness(dialect);
  });
  afterEach(async () => {
    await h.close();
  });

  it('serves the manifest anonymously as XML by default and JSON on request', async () => {
    const xml = await h.inject({ url: '/rest/applinks/1.0/manifest' });
    expect(xml.statusCode).toBe(200);
    expect(xml.headers['content-type']).toMatch(/application\/xml/);
    expect(xml.body).toContain(`<id>${h.services.identity.applicationId}</id>`);
    expect(xml.body).toContain('<typeId>generic</typeId>');
    const js = await h.inject({ url: '/rest/applinks/1.0/manifest', headers: { accept: 'application/json' } });
    const m = json(js);
    expect(m.id).toBe(h.services.identity.applicationId);
    expect(m.url).toBe('http://applinks.test');
    expect(m.inboundAuthenticationTypes).toContain('com.atlassian.applinks.api.auth.types.BasicAuthenticationProvider');
    // Our extension: the OAuth 1.0a consumer key a remote registers, and where its public key is.
    const info = json<{ consumerKey: string }>(await h.inject({ url: '/api/v1/oauth1/consumer', headers: { authorization: h.adminBasic } }));
    expect(m.oauthConsumerKey).toBe(info.consumerKey);
    expect(m.oauthConsumerInfoUrl).toBe('http://applinks.test/plugins/servlet/oauth/consumer-info');
    expect(xml.body).toContain(`<oauthConsumerKey>${info.consumerKey}</oauthConsumerKey>`);
  });

  it('keeps the application id stable across restarts on the same store', async () => {
    const id = h.services.identity.applicationId;
    const second = await createHarness(dialect, { store: h.store, masterKey: undefined });
    try {
      expect(second.services.identity.applicationId).toBe(id);
    } finally {
      await second.close();
    }
  });

  it('answers the principal as JSON on unowned paths when there is no upstream', async () => {
    const anon = json(await h.inject({ url: '/anything/at/all?x=1' }));
    expect(anon).toMatchObject({ authenticated: false, authType: 'anonymous', connection: 'gateway' });
    const res = await h.inject({ url: '/x', headers: { authorization: h.adminBasic } });
    const p = json(res);
    expect(p).toMatchObject({ authenticated: true, authType: 'basic', user: { username: 'admin', admin: true } });
    expect((p.warnings as Array<{ code: string }>).map((w) => w.code)).toContain('password-auth');
  });

  it('refuses a bad password with 401 and a Basic challenge, never anonymous', async () => {
    const res = await h.inject({ url: '/x', headers: { authorization: basic('admin', 'wrong-password') } });
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toMatch(/^Basic realm="applinks"/);
    expect(json(res).error).toBe('invalid_credentials');
    const garbage = await h.inject({ url: '/x', headers: { authorization: 'Basic !!!' } });
    expect(garbage.statusCode).toBe(401);
    expect(json(garbage).error).toBe('malformed_credentials');
    const unknownScheme = await h.inject({ url: '/x', headers: { authorization: 'Digest foo' } });
    expect(unknownScheme.statusCode).toBe(401);
  });

  it('never lets a session cookie stand in for an Authorization header nobody understood', async () => {
    await userWithToken(h, 'dora', { password: 'dora-password-1' });
    const jar = await signIn(h, 'dora', 'dora-password-1');
    expect(json(await h.inject({ url: '/x', headers: { cookie: jar.header } }))).toMatchObject({ authType: 'session', user: { username: 'dora' } });
    const both = await h.inject({ url: '/x', headers: { cookie: jar.header, authorization: 'Digest username="dora"' } });
    expect(both.statusCode).toBe(401);
    expect(json(both).error).toBe('malformed_credentials');
    // A credential that is understood still decides, whoever the browser is signed in as.
    const { token } = await userWithToken(h, 'carol');
    expect(json(await h.inject({ url: '/x', headers: { cookie: jar.header, authorization: `Bearer ${token}` } }))).toMatchObject({ authType: 'api-token', user: { username: 'carol' } });
  });

  it('accepts API tokens as Bearer and as the Basic password, and refuses them once revoked', async () => {
    const { token, user } = await userWithToken(h, 'alice');
    const bearer = json(await h.inject({ url: '/x', headers: { authorization: `Bearer ${token}` } }));
    expect(bearer).toMatchObject({ authType: 'api-token', user: { username: 'alice' }, warnings: [] });
    const asPassword = json(await h.inject({ url: '/x', headers: { authorization: basic('alice', token) } }));
    expect(asPassword).toMatchObject({ authType: 'api-token', user: { username: 'alice' } });
    const otherUser = await h.inject({ url: '/x', headers: { authorization: basic('admin', token) } });
    expect(otherUser.statusCode).toBe(401);

    const [t] = await h.services.apiTokens.list(user.id);
    const revoke = await h.inject({ method: 'DELETE', url: `/api/v1/users/${user.id}/tokens/${t!.id}`, headers: { authorization: h.adminBasic } });
    expect(revoke.statusCode).toBe(204);
    const after = await h.inject({ url: '/x', headers: { authorization: `Bearer ${token}` } });
    expect(after.statusCode).toBe(401);
    expect(after.headers['www-authenticate']).toMatch(/^Bearer realm="applinks", error="invalid_token"/);
  });

  it('audits each revocation with the token, its owner’s or the administrator’s name and no secret; a refused one writes nothing', async () => {
    type Entry = { action: string; actor: { id: string | null; name: string | null; address: string | null }; target: { type: string; id: string; name: string } | null; details: Record<string, unknown> };
    const revocations = async () => json<{ entries: Entry[] }>(await h.inject({ url: '/api/v1/audit?action=token.revoke', headers: { authorization: h.adminBasic } })).entries;
    const { user: gina, bearer } = await userWithToken(h, 'gina');
    const own = json<{ id: string; token: string }>(await h.inject({ method: 'POST', url: '/api/v1/me/tokens', headers: { authorization: bearer }, payload: { name: 'laptop' } }));
    const byAdmin = json<{ id: string; token: string }>(await h.inject({ method: 'POST', url: `/api/v1/users/${gina.id}/tokens`, headers: { authorization: h.adminBasic }, payload: { name: 'ci runner' } }));
    const { bearer: other } = await userWithToken(h, 'hank');

    // Another user's token is no token of theirs: 404, and nothing is revoked or audited.
    const refused = await h.inject({ method: 'DELETE', url: `/api/v1/me/tokens/${own.id}`, headers: { authorization: other } });
    expect(refused.statusCode).toBe(404);
    expect(await revocations()).toEqual([]);
    expect((await h.inject({ url: '/x', headers: { authorization: `Bearer ${own.token}` } })).statusCode).toBe(200);

    expect((await h.inject({ method: 'DELETE', url: `/api/v1/me/tokens/${own.id}`, headers: { authorization: bearer } })).statusCode).toBe(204);
    expect((await h.inject({ method: 'DELETE', url: `/api/v1/users/${gina.id}/tokens/${byAdmin.id}`, headers: { authorization: h.adminBasic } })).statusCode).toBe(204);
    const admin = (await h.services.users.findByUsername('admin'))!;
    const entries = await revocations();
    // Two in one millisecond may list in either order.
    expect(entries).toHaveLength(2);
    expect(entries).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ action: 'token.revoke', actor: { id: gina.id, name: 'gina', address: '127.0.0.1' }, target: { type: 'api-token', id: own.id, name: 'laptop' } }),
        expect.objectContaining({ action: 'token.revoke', actor: { id: admin.id, name: 'admin', address: '127.0.0.1' }, target: { type: 'api-token', id: byAdmin.id, name: 'ci runner' } }),
      ]),
    );
    const text = JSON.stringify(entries);
    // Neither the token nor the hash it is stored as (a revocation reads the whole record).
    for (const token of [own.token, byAdmin.token]) {
      expect(text).not.toContain(token.slice('alpat_'.length, 20));
      expect(text).not.toContain(hashToken(token));
    }
    for (const token of [own.token, byAdmin.token]) expect((await h.inject({ url: '/x', headers: { authorization: `Bearer ${token}` } })).statusCode).toBe(401);
  });

  it('creates a token through the API, shows it once, lists it without the secret', async () => {
    const { bearer } = await userWithToken(h, 'bob');
    const created = await h.inject({ method: 'POST', url: '/api/v1/me/tokens', headers: { authorization: bearer }, payload: { name: 'ci', expiresAt: new Date(h.clock.now() + 86_400_000).toISOString() } });
    expect(created.statusCode).toBe(201);
    const body = json(created);
    expect(body.token).toMatch(/^alpat_[A-Za-z0-9_-]{43}$/);
    const list = await h.inject({ url: '/api/v1/me/tokens', headers: { authorization: bearer } });
    expect(list.body).not.toContain(body.token as string);
    expect(json<{ tokens: Array<{ name: string }> }>(list).tokens.map((t) => t.name).sort()).toEqual(['ci', 'test']);
  });

  it('refuses an expired token', async () => {
    const { user } = await userWithToken(h, 'carol');
    const { token } = await h.services.apiTokens.create(user.id, { name: 'short', expiresAt: h.clock.now() + 1000 }, { id: null, name: 't', address: null });
    expect((await h.inject({ url: '/x', headers: { authorization: `Bearer ${token}` } })).statusCode).toBe(200);
    h.clock.advance(2000);
    const res = await h.inject({ url: '/x', headers: { authorization: `Bearer ${token}` } });
    expect(res.statusCode).toBe(401);
    expect(json(res).error).toBe('credential_expired');
  });

  it('refuses a token that expires while it is cached, with the challenge of the scheme it came in', async () => {
    // Answered from the caches without a promise: the errors still carry their challenges.
    const { user } = await userWithToken(h, 'carla');
    const { token } = await h.services.apiTokens.create(user.id, { name: 'brief', expiresAt: h.clock.now() + 300 }, { id: null, name: 't', address: null });
    expect((await h.inject({ url: '/x', headers: { authorization: `Bearer ${token}` } })).statusCode).toBe(200);
    expect((await h.inject({ url: '/x', headers: { authorization: basic('carla', token) } })).statusCode).toBe(200);
    h.clock.advance(400); // past the token's expiry, within the cache's second
    const bearer = await h.inject({ url: '/x', headers: { authorization: `Bearer ${token}` } });
    expect(bearer.statusCode).toBe(401);
    expect(json(bearer).error).toBe('credential_expired');
    expect(bearer.headers['www-authenticate']).toMatch(/^Bearer realm="applinks", error="invalid_token"/);
    const asPassword = await h.inject({ url: '/x', headers: { authorization: basic('carla', token) } });
    expect(asPassword.statusCode).toBe(401);
    expect(json(asPassword).error).toBe('credential_expired');
    expect(asPassword.headers['www-authenticate']).toMatch(/^Basic realm="applinks"/);
  });

  it('ends a disabled user’s tokens on the next request', async () => {
    const { token, user } = await userWithToken(h, 'dave');
    expect((await h.inject({ url: '/x', headers: { authorization: `Bearer ${token}` } })).statusCode).toBe(200);
    const res = await h.inject({ method: 'PATCH', url: `/api/v1/users/${user.id}`, headers: { authorization: h.adminBasic }, payload: { disabled: true } });
    expect(res.statusCode).toBe(200);
    const after = await h.inject({ url: '/x', headers: { authorization: `Bearer ${token}` } });
    expect(after.statusCode).toBe(401);
    expect(after.headers['www-authenticate']).toBeDefined();
    // Ended, not suspended: enabling the user again does not bring the token back.
    await h.inject({ method: 'PATCH', url: `/api/v1/users/${user.id}`, headers: { authorization: h.adminBasic }, payload: { disabled: false } });
    expect((await h.inject({ url: '/x', headers: { authorization: `Bearer ${token}` } })).statusCode).toBe(401);
    expect(await h.services.apiTokens.list(user.id)).toEqual([]);
  });

  it('revokes a token issued for a link on the very next request after the link is deleted', async () => {
    const link = json(await h.inject({ method: 'POST', url: '/api/v1/links', headers: { authorization: h.adminBasic }, payload: { name: 'Outlook add-in' } }));
    expect(link).toMatchObject({ incomingOnly: true, url: null });
    const { bearer, user: erin } = await userWithToken(h, 'erin');
    // Tying a token to a link is an administrator's choice: a user cannot pass as an application.
    const own = await h.inject({ method: 'POST', url: '/api/v1/me/tokens', headers: { authorization: bearer }, payload: { name: 'add-in', linkId: link.id } });
    expect([own.statusCode, json(own).error]).toEqual([403, 'forbidden']);
    const createdRes = await h.inject({ method: 'POST', url: `/api/v1/users/${erin.id}/tokens`, headers: { authorization: h.adminBasic }, payload: { name: 'add-in', linkId: link.id } });
    expect(createdRes.headers['cache-control']).toBe('no-store');
    const created = json(createdRes);
    const addIn = `Bearer ${created.token as string}`;
    const before = json(await h.inject({ url: '/x', headers: { authorization: addIn } }));
    expect(before).toMatchObject({ user: { username: 'erin' }, link: { id: link.id, name: 'Outlook add-in' } });
    const del = await h.inject({ method: 'DELETE', url: `/api/v1/links/${link.id as string}`, headers: { authorization: h.adminBasic } });
    expect(del.statusCode).toBe(204);
    const after = await h.inject({ url: '/x', headers: { authorization: addIn } });
    expect(after.statusCode).toBe(401);
  });

  it('revokes the tokens issued for a link when the link revokes its authorizations, and keeps the link and personal tokens', async () => {
    const link = json(await h.inject({ method: 'POST', url: '/api/v1/links', headers: { authorization: h.adminBasic }, payload: { name: 'Script runner' } }));
    const { bearer: personal, user: fred } = await userWithToken(h, 'fred');
    const issued = json(await h.inject({ method: 'POST', url: `/api/v1/users/${fred.id}/tokens`, headers: { authorization: h.adminBasic }, payload: { name: 'runner', linkId: link.id } }));
    const forLink = `Bearer ${issued.token as string}`;
    expect((await h.inject({ url: '/x', headers: { authorization: forLink } })).statusCode).toBe(200);
    const res = await h.inject({ method: 'DELETE', url: `/api/v1/links/${link.id as string}/authorizations`, headers: { authorization: h.adminBasic } });
    expect([res.statusCode, json(res).revoked]).toEqual([200, 1]);
    const refused = await h.inject({ url: '/x', headers: { authorization: forLink } });
    expect([refused.statusCode, json(refused).error]).toEqual([401, 'invalid_credentials']);
    expect((await h.inject({ url: '/x', headers: { authorization: personal } })).statusCode).toBe(200);
    expect((await h.inject({ url: `/api/v1/links/${link.id as string}`, headers: { authorization: h.adminBasic } })).statusCode).toBe(200);
    const audit = json<{ entries: Array<{ action: string; target: { id: string }; details: Record<string, unknown> }> }>(await h.inject({ url: '/api/v1/audit?action=token.link.revoke', headers: { authorization: h.adminBasic } }));
    expect(audit.entries.map((e) => [e.target.id, e.details.tokens])).toEqual([[link.id, 1]]);
    expect(JSON.stringify(audit)).not.toContain(issued.token as string);
  });

  it('validates admin input: unknown and mistyped fields, bad JSON, duplicates, unknown ids', async () => {
    const admin = { authorization: h.adminBasic };
    const cases: Array<[Record<string, unknown> | string, number, string, string | undefined]> = [
      [{ username: 'x1', bogus: true }, 400, 'validation_failed', 'bogus'],
      [{ username: 'x2', admin: 'yes' }, 400, 'validation_failed', 'admin'],
      [{ username: 'has space' }, 400, 'validation_failed', 'username'],
      [{}, 400, 'validation_failed', 'username'],
      ['{"username":', 400, 'invalid_request', undefined],
      [{ username: 'Admin' }, 409, 'conflict', 'username'],
      [{ username: 'x3', password: 'short' }, 400, 'validation_failed', 'password'],
    ];
    for (const [payload, status, code, field] of cases) {
      const res = await h.inject({ method: 'POST', url: '/api/v1/users', headers: { ...admin, 'content-type': 'application/json' }, payload: typeof payload === 'string' ? payload : JSON.stringify(payload) });
      expect([res.statusCode, json(res).error, json(res).field], JSON.stringify(payload)).toEqual([status, code, field]);
    }
    const huge = await h.inject({ method: 'POST', url: '/api/v1/users', headers: { ...admin, 'content-type': 'application/json' }, payload: JSON.stringify({ username: 'x', displayName: 'y'.repeat(2_000_000) }) });
    expect(huge.statusCode).toBe(413);
    expect((await h.inject({ url: '/api/v1/users/nope', headers: admin })).statusCode).toBe(404);
    expect((await h.inject({ url: '/api/v1/links/nope', headers: admin })).statusCode).toBe(404);
    expect((await h.inject({ url: '/api/v1/nothing-here', headers: admin })).statusCode).toBe(404);
    expect(await h.services.users.findByUsername('x1')).toBeUndefined();
    // Numbers past what the store holds exactly, and an empty link id, are the caller's error.
    for (const offset of ['9223372036854775808', '1e19']) {
      const res = await h.inject({ url: `/api/v1/users?offset=${offset}`, headers: admin });
      expect([res.statusCode, json(res).error, json(res).field], offset).toEqual([400, 'validation_failed', 'offset']);
    }
    const erin = json(await h.inject({ method: 'POST', url: '/api/v1/users', headers: admin, payload: { username: 'emptylink' } }));
    for (const [url, headers] of [[`/api/v1/users/${erin.id as string}/tokens`, admin], ['/api/v1/me/tokens', admin]] as const) {
      const res = await h.inject({ method: 'POST', url, headers, payload: { name: 't', linkId: '' } });
      expect([res.statusCode, json(res).error, json(res).field], url).toEqual([400, 'validation_failed', 'linkId']);
    }
  });

  it('refuses a NUL character in any text field with a 400 naming it, on every store', async () => {
    const admin = { authorization: h.adminBasic };
    const { bearer } = await userWithToken(h, 'nul-user');
    const cases: Array<[string, string, Record<string, unknown>, Record<string, string>, string]> = [
      ['POST', '/api/v1/users', { username: 'nul1', displayName: 'a\u0000b' }, admin, 'displayName'],
      ['POST', '/api/v1/links', { name: 'L\u0000' }, admin, 'name'],
      ['POST', '/api/v1/links', { name: 'L', outgoing: { basic: { username: 'u', password: 'p\u0000' } } }, admin, 'outgoing.basic.password'],
      ['POST', '/api/v1/me/tokens', { name: 't\u0000' }, { authorization: bearer }, 'name'],
    ];
    for (const [method, url, payload, headers, field] of cases) {
      const res = await h.inject({ method: method as 'POST', url, headers, payload });
      expect([res.statusCode, json(res).error, json(res).field], url).toEqual([400, 'validation_failed', field]);
    }
    const search = await h.inject({ url: '/api/v1/users?search=a%00b', headers: admin });
    expect(search.statusCode).toBe(400);
    expect(await h.services.users.findByUsername('nul1')).toBeUndefined();
  });

  it('keeps the admin API for administrators', async () => {
    const { bearer } = await userWithToken(h, 'frank');
    expect((await h.inject({ url: '/api/v1/users' })).statusCode).toBe(401);
    expect((await h.inject({ url: '/api/v1/users', headers: { authorization: bearer } })).statusCode).toBe(403);
    const anonymousBadBody = await h.inject({ method: 'POST', url: '/api/v1/users', payload: { bogus: 1 } });
    expect(anonymousBadBody.statusCode).toBe(401);
  });

  it('publishes an OpenAPI document generated from the route schemas', async () => {
    const doc = json<{ openapi: string; paths: Record<string, unknown> }>(await h.inject({ url: '/api/v1/openapi.json' }));
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/api/v1/users', '/api/v1/users/{id}', '/api/v1/links', '/api/v1/me/tokens', '/api/v1/audit']));
    expect(Object.keys(doc.paths).every((p) => p.startsWith('/api/v1/'))).toBe(true);
  });
});
