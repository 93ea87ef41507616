import { afterEach, describe, expect, it } from 'vitest';
import { oauth2Of } from '../../src/modules/oauth2/index.js';
import type { OAuth2Tables } from '../../src/modules/oauth2/tables.js';
import { withTables } from '../../src/storage/repositories/common.js';
import { createHarness, DIALECTS, json, userWithToken, type Harness } from '../helpers/harness.js';
import { authorizeUrl, decide, exchange, INTROSPECT, obtainCode, post, REDIRECT, redirectParams, registerClient, signIn, TOKEN, type RegisteredClient, type Tokens } from '../helpers/oauth2.js';

describe.each(DIALECTS)('OAuth 2.0 clients and the developer area on %s', (dialect) => {
  let h: Harness;
  afterEach(async () => {
    await h?.close();
  });

  it('validates registrations: https or loopback redirects, no fragments, known scopes, service accounts confidential', async () => {
    h = await createHarness(dialect);
    const admin = { authorization: h.adminBasic };
    const create = (body: Record<string, unknown>) => h.inject({ method: 'POST', url: '/api/v1/oauth2/clients', headers: admin, payload: { name: 'X', redirectUris: ['https://ok.example/cb'], ...body } });
    for (const [body, field] of [
      [{ redirectUris: ['http://app.example/cb'] }, 'incoming.oauth2.redirectUris.0'],
      [{ redirectUris: ['https://app.example/cb#x'] }, 'incoming.oauth2.redirectUris.0'],
      [{ redirectUris: ['https://ok.example/cb', 'http://localhost/cb'] }, 'incoming.oauth2.redirectUris.1'],
      [{ scopes: ['READ', 'EVERYTHING'] }, 'scopes.1'],
      [{ serviceAccount: 'nobody' }, 'serviceAccount'],
      [{ confidential: false, serviceAccount: 'admin' }, 'incoming.oauth2.serviceAccountUserId'],
      [{ clientId: 'short' }, 'clientId'],
      [{ surprise: true }, 'surprise'],
    ] as const) {
      const res = await create(body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(json(res)).toMatchObject({ error: 'validation_failed', field });
    }
    expect((await create({ redirectUris: ['http://127.0.0.1:8080/cb', 'http://[::1]/cb'] })).statusCode).toBe(201);
    // Client ids are unique; the second registration with the same one is a conflict.
    expect((await create({ name: 'Y', clientId: 'fixed-client-id' })).statusCode).toBe(201);
    expect((await create({ name: 'Z', clientId: 'fixed-client-id' })).statusCode).toBe(409);
    // Nothing half-registered: no link named Z.
    const links = json<{ links: Array<{ name: string }> }>(await h.inject({ url: '/api/v1/links', headers: admin }));
    expect(links.links.map((l) => l.name)).not.toContain('Z');
  });

  it('accepts plain http redirects only behind the dangerous switch', async () => {
    h = await createHarness(dialect, { config: { oauth2DangerouslyAllowHttpRedirects: true } });
    const res = await h.inject({ method: 'POST', url: '/api/v1/oauth2/clients', headers: { authorization: h.adminBasic }, payload: { name: 'Dev', redirectUris: ['http://dev.example/cb'] } });
    expect(res.statusCode).toBe(201);
    expect(json<{ warnings: string[] }>(res).warnings.join(' ')).toMatch(/plain http/);
  });

  it('adds a client to an existing link, changes it, and shows it through the generic link API', async () => {
    h = await createHarness(dialect);
    const admin = { authorization: h.adminBasic };
    const link = json(await h.inject({ method: 'POST', url: '/api/v1/links', headers: admin, payload: { name: 'Jira', url: 'https://jira.example' } }));
    const client = await registerClient(h, { name: 'Jira OAuth', linkId: link.id });
    expect(client.linkId).toBe(link.id);
    const again = await h.inject({ method: 'POST', url: '/api/v1/oauth2/clients', headers: admin, payload: { name: 'Again', linkId: link.id, redirectUris: [] } });
    expect(again.statusCode).toBe(409);
    const viewed = json<{ incoming: Array<{ type: string; config: Record<string, unknown> }> }>(await h.inject({ url: `/api/v1/links/${link.id as string}`, headers: admin }));
    expect(viewed.incoming[0]).toMatchObject({ type: 'oauth2', config: { clientId: client.clientId, confidential: true } });
    expect(JSON.stringify(viewed)).not.toContain(client.clientSecret!);
    const patched = await h.inject({ method: 'PATCH', url: `/api/v1/oauth2/clients/${client.clientId}`, headers: admin, payload: { scopes: ['READ'], name: 'Jira (read)' } });
    expect(patched.statusCode).toBe(200);
    expect(json(patched)).toMatchObject({ scopes: ['READ'], name: 'Jira (read)', linkName: 'Jira' });
    // The same secret still works after a change that keeps the client id.
    await userWithToken(h, 'robot');
    await h.inject({ method: 'PATCH', url: `/api/v1/oauth2/clients/${client.clientId}`, headers: admin, payload: { serviceAccount: 'robot' } });
    expect((await post(h, TOKEN, client, { grant_type: 'client_credentials' })).statusCode).toBe(200);
    // A manifest-announcing registry lists the type.
    const types = json<{ types: Array<{ id: string; weight: number; impersonating: boolean }> }>(await h.inject({ url: '/api/v1/auth-types', headers: admin }));
    expect(types.types.find((t) => t.id === 'oauth2')).toMatchObject({ weight: 55, impersonating: false });
  });

  it('switching a client between confidential and public revokes what it holds; its old secret never works again', async () => {
    h = await createHarness(dialect);
    const admin = { authorization: h.adminBasic };
    const client = await registerClient(h);
    await userWithToken(h, 'alice');
    const jar = await signIn(h, 'alice', 'alice-password');
    const tokens = await exchange(h, client, await obtainCode(h, jar, client));
    // A code issued without PKCE (a confidential client need not use it), not redeemed yet.
    const noPkce = redirectParams(await h.inject({ url: authorizeUrl({ response_type: 'code', client_id: client.clientId, redirect_uri: REDIRECT }), headers: { cookie: jar.header } })).get('code')!;
    expect(noPkce).toMatch(/^alac_/);

    const patched = await h.inject({ method: 'PATCH', url: `/api/v1/oauth2/clients/${client.clientId}`, headers: admin, payload: { confidential: false } });
    expect(patched.statusCode, patched.body).toBe(200);
    expect(json(patched)).toMatchObject({ confidential: false, secrets: [] });
    expect(json(patched).clientSecret).toBeUndefined();
    const asPublic: RegisteredClient = { ...client, clientSecret: null };
    // Nothing the confidential client held can be redeemed with a bare client_id.
    const code = await post(h, TOKEN, asPublic, { grant_type: 'authorization_code', code: noPkce, redirect_uri: REDIRECT });
    expect(code.statusCode, code.body).toBe(400);
    expect(json(code).error).toBe('invalid_grant');
    const refresh = await post(h, TOKEN, asPublic, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token });
    expect(refresh.statusCode, refresh.body).toBe(400);
    expect(json(refresh).error).toBe('invalid_grant');
    expect((await h.inject({ url: '/x', headers: { authorization: `Bearer ${tokens.access_token}` } })).statusCode).toBe(401);

    // Back to confidential: a new secret, shown once; the old one stays dead.
    const back = await h.inject({ method: 'PATCH', url: `/api/v1/oauth2/clients/${client.clientId}`, headers: admin, payload: { confidential: true } });
    expect(back.statusCode, back.body).toBe(200);
    const fresh = json<{ clientSecret: string; secrets: unknown[]; warnings: string[] }>(back);
    expect(fresh.clientSecret).toMatch(/^alcs_/);
    expect(fresh.clientSecret).not.toBe(client.clientSecret);
    expect(fresh.secrets).toHaveLength(1);
    expect(json(await post(h, INTROSPECT, client, { token: 'x' })).error).toBe('invalid_client');
    expect(json(await post(h, INTROSPECT, { ...client, clientSecret: fresh.clientSecret }, { token: 'x' }))).toEqual({ active: false });
    // The change and the new secret are audited, the secret itself is not.
    const audit = await h.inject({ url: '/api/v1/audit', headers: admin });
    expect(audit.body).toContain('oauth2.client.type.change');
    expect(audit.body).not.toContain(fresh.clientSecret);
  });

  it('never lets a client that must use PKCE redeem a code issued without it', async () => {
    h = await createHarness(dialect);
    const client = await registerClient(h);
    await userWithToken(h, 'alice');
    const jar = await signIn(h, 'alice', 'alice-password');
    await obtainCode(h, jar, client);
    const noPkce = redirectParams(await h.inject({ url: authorizeUrl({ response_type: 'code', client_id: client.clientId, redirect_uri: REDIRECT }), headers: { cookie: jar.header } })).get('code')!;
    expect((await h.inject({ method: 'PATCH', url: `/api/v1/oauth2/clients/${client.clientId}`, headers: { authorization: h.adminBasic }, payload: { requirePkce: true } })).statusCode).toBe(200);
    const res = await post(h, TOKEN, client, { grant_type: 'authorization_code', code: noPkce, redirect_uri: REDIRECT });
    expect(res.statusCode).toBe(400);
    expect(json(res)).toMatchObject({ error: 'invalid_grant', error_description: expect.stringMatching(/PKCE/) });
  });

  it('switching the client type through the generic link API revokes the same way, answers a new secret once, and never brings an old secret back', async () => {
    h = await createHarness(dialect);
    const admin = { authorization: h.adminBasic };
    const client = await registerClient(h);
    await userWithToken(h, 'alice');
    const jar = await signIn(h, 'alice', 'alice-password');
    const tokens = await exchange(h, client, await obtainCode(h, jar, client));
    const link = json<{ incoming: Array<{ type: string; config: Record<string, unknown> }> }>(await h.inject({ url: `/api/v1/links/${client.linkId}`, headers: admin }));
    const config = link.incoming.find((a) => a.type === 'oauth2')!.config;
    const put = (confidential: boolean, more: Record<string, unknown> = {}) =>
      h.inject({ method: 'PUT', url: `/api/v1/links/${client.linkId}/incoming/oauth2`, headers: admin, payload: { ...config, confidential, ...more } });
    const storedSecrets = async () =>
      Number((await withTables<OAuth2Tables>(h.services.store.db).selectFrom('oauth2_client_secrets').where('link_id', '=', client.linkId).select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);

    // Confidential → public: everything revoked, every stored secret hash dropped (grace ones too), no secret answered.
    await h.inject({ method: 'POST', url: `/api/v1/oauth2/clients/${client.clientId}/secret`, headers: admin, payload: { graceSeconds: 3600 } });
    expect(await storedSecrets()).toBe(2);
    const toPublic = await put(false);
    expect(toPublic.statusCode, toPublic.body).toBe(200);
    expect(json(toPublic).issuedSecrets).toBeUndefined();
    expect(await storedSecrets()).toBe(0);
    const refresh = await post(h, TOKEN, { ...client, clientSecret: null }, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token });
    expect(json(refresh).error).toBe('invalid_grant');
    expect((await h.inject({ url: '/x', headers: { authorization: `Bearer ${tokens.access_token}` } })).statusCode).toBe(401);
    // A secret presented by what is now a public client is refused.
    const withSecret = await post(h, TOKEN, client, { grant_type: 'client_credentials' });
    expect(withSecret.statusCode).toBe(401);
    expect(json(withSecret).error).toBe('invalid_client');

    // Public → confidential: the answer carries a new secret, this once, and it works at the token endpoint.
    const robot = await userWithToken(h, 'robot');
    const toConfidential = await put(true, { serviceAccountUserId: robot.user.id });
    expect(toConfidential.statusCode, toConfidential.body).toBe(200);
    const answered = json<{ issuedSecrets: { incoming: { oauth2: { clientSecret: string } } } }>(toConfidential);
    const fresh = answered.issuedSecrets.incoming.oauth2.clientSecret;
    expect(fresh).toMatch(/^alcs_/);
    expect(fresh).not.toBe(client.clientSecret);
    expect(Object.keys(answered.issuedSecrets)).toEqual(['incoming']);
    expect(Object.keys(answered.issuedSecrets.incoming.oauth2)).toEqual(['clientSecret']);
    expect(await storedSecrets()).toBe(1);
    // The old secret stays dead; the new one authenticates with client_secret_basic.
    expect(json(await post(h, TOKEN, client, { grant_type: 'client_credentials' })).error).toBe('invalid_client');
    const renewed: RegisteredClient = { ...client, clientSecret: fresh };
    const cc = await post(h, TOKEN, renewed, { grant_type: 'client_credentials' });
    expect(cc.statusCode, cc.body).toBe(200);
    expect(json(cc).access_token).toMatch(/^alat_/);
    expect(json(await post(h, INTROSPECT, renewed, { token: 'x' }))).toEqual({ active: false });
    // Nothing shows it again: the link, the list, the client, the audit log.
    for (const url of [`/api/v1/links/${client.linkId}`, '/api/v1/links', `/api/v1/oauth2/clients/${client.clientId}`, '/api/v1/oauth2/clients', '/api/v1/audit']) {
      const res = await h.inject({ url, headers: admin });
      expect(res.statusCode, url).toBe(200);
      expect(res.body, url).not.toContain(fresh);
      expect(res.body, url).not.toContain('issuedSecrets');
    }
    const view = json<{ secrets: unknown[]; warnings: string[] }>(await h.inject({ url: `/api/v1/oauth2/clients/${client.clientId}`, headers: admin }));
    expect(view.secrets).toHaveLength(1);
    expect(view.warnings.join(' ')).not.toMatch(/no secret/);
    // The audit log records the change and that a secret was issued, never the secret.
    const audit = json<{ entries: Array<{ action: string; details: Record<string, unknown> }> }>(await h.inject({ url: '/api/v1/audit?action=link.incoming.set', headers: admin }));
    // (Two changes: to public, which issued nothing, and to confidential; one clock tick, so in either order.)
    expect(audit.entries.map((e) => e.details)).toEqual(
      expect.arrayContaining([{ type: 'oauth2', issued: ['incoming.oauth2.clientSecret'] }, expect.not.objectContaining({ issued: expect.anything() })]),
    );
    expect(audit.entries.filter((e) => e.details.issued !== undefined)).toHaveLength(1);

    // A change that keeps it confidential answers no secret and keeps the one it has.
    const same = await put(true, { serviceAccountUserId: robot.user.id, scopes: ['READ'] });
    expect(same.statusCode, same.body).toBe(200);
    expect(json(same).issuedSecrets).toBeUndefined();
    expect((await post(h, TOKEN, renewed, { grant_type: 'client_credentials' })).statusCode).toBe(200);
  });

  it('a confidential client created through the generic link API, or given a new client id there, gets its secret in that answer', async () => {
    h = await createHarness(dialect);
    const admin = { authorization: h.adminBasic };
    const robot = await userWithToken(h, 'robot');
    const config = { clientId: 'generic-client-1', confidential: true, redirectUris: [REDIRECT], scopes: ['READ'], serviceAccountUserId: robot.user.id };
    const created = await h.inject({ method: 'POST', url: '/api/v1/links', headers: admin, payload: { name: 'Generic', incoming: { oauth2: config } } });
    expect(created.statusCode, created.body).toBe(201);
    const c = json<{ id: string; issuedSecrets: { incoming: { oauth2: { clientSecret: string } } } }>(created);
    const first: RegisteredClient = { clientId: config.clientId, clientSecret: c.issuedSecrets.incoming.oauth2.clientSecret, linkId: c.id };
    expect((await post(h, TOKEN, first, { grant_type: 'client_credentials' })).statusCode).toBe(200);
    // A new client id is a new client: the old secret goes with the old client, the new one is answered.
    const renamed = await h.inject({ method: 'PUT', url: `/api/v1/links/${c.id}/incoming/oauth2`, headers: admin, payload: { ...config, clientId: 'generic-client-2' } });
    expect(renamed.statusCode, renamed.body).toBe(200);
    const second: RegisteredClient = { clientId: 'generic-client-2', clientSecret: json<{ issuedSecrets: { incoming: { oauth2: { clientSecret: string } } } }>(renamed).issuedSecrets.incoming.oauth2.clientSecret, linkId: c.id };
    expect(json(await post(h, TOKEN, { ...second, clientSecret: first.clientSecret }, { grant_type: 'client_credentials' })).error).toBe('invalid_client');
    expect((await post(h, TOKEN, second, { grant_type: 'client_credentials' })).statusCode).toBe(200);
    // A public client gets none; a link without a confidential client never carries the field.
    const pub = await h.inject({ method: 'POST', url: '/api/v1/links', headers: admin, payload: { name: 'Public', incoming: { oauth2: { clientId: 'generic-public', confidential: false, redirectUris: [REDIRECT], scopes: ['READ'] } } } });
    expect(pub.statusCode, pub.body).toBe(201);
    expect(json(pub).issuedSecrets).toBeUndefined();
    // The OpenAPI document says where the secret is answered.
    const doc = (await h.inject({ url: '/api/v1/openapi.json', headers: admin })).body;
    expect(doc).toContain('issuedSecrets');
  });

  it('caps live tokens at the client’s current scopes at once, and ends client_credentials tokens when the service account changes', async () => {
    h = await createHarness(dialect);
    const admin = { authorization: h.adminBasic };
    const patch = (c: RegisteredClient, payload: Record<string, unknown>) => h.inject({ method: 'PATCH', url: `/api/v1/oauth2/clients/${c.clientId}`, headers: admin, payload });
    const bearer = (t: Tokens) => ({ authorization: `Bearer ${t.access_token}` });
    const client = await registerClient(h, { scopes: ['READ', 'WRITE'] });
    await userWithToken(h, 'alice');
    const jar = await signIn(h, 'alice', 'alice-password');
    const tokens = await exchange(h, client, await obtainCode(h, jar, client, { scope: 'WRITE' }));
    expect((await h.inject({ method: 'POST', url: '/x', headers: bearer(tokens) })).statusCode).toBe(200);

    expect((await patch(client, { scopes: ['READ'] })).statusCode).toBe(200);
    expect(json<{ scopes: string[] }>(await h.inject({ url: '/x', headers: bearer(tokens) })).scopes).toEqual(['READ']);
    const write = await h.inject({ method: 'POST', url: '/x', headers: bearer(tokens) });
    expect(write.statusCode).toBe(403);
    expect(write.headers['www-authenticate']).toMatch(/error="insufficient_scope"/);
    for (const token of [tokens.access_token, tokens.refresh_token!]) {
      expect(json(await post(h, INTROSPECT, client, { token }))).toMatchObject({ active: true, scope: 'READ', applinks_scopes: 'READ' });
    }
    // Widened again, the token may do what it was granted (never more).
    expect((await patch(client, { scopes: ['READ', 'WRITE', 'ADMIN'] })).statusCode).toBe(200);
    expect(json<{ scopes: string[] }>(await h.inject({ url: '/x', headers: bearer(tokens) })).scopes).toEqual(['READ', 'WRITE']);

    // client_credentials tokens act as the service account: another one, or none, ends them.
    await userWithToken(h, 'robot');
    await userWithToken(h, 'robot2');
    const service = await registerClient(h, { serviceAccount: 'robot', redirectUris: [] });
    const cc = async () => {
      const res = await post(h, TOKEN, service, { grant_type: 'client_credentials' });
      expect(res.statusCode, res.body).toBe(200);
      return json<Tokens>(res);
    };
    const first = await cc();
    expect((await patch(service, { serviceAccount: 'robot2' })).statusCode).toBe(200);
    expect((await h.inject({ url: '/x', headers: bearer(first) })).statusCode).toBe(401);
    expect(json(await post(h, INTROSPECT, service, { token: first.access_token }))).toEqual({ active: false });
    const second = await cc();
    expect(json(await h.inject({ url: '/x', headers: bearer(second) }))).toMatchObject({ user: { username: 'robot2' } });
    // A change of something else keeps them.
    expect((await patch(service, { name: 'Renamed robot' })).statusCode).toBe(200);
    expect((await h.inject({ url: '/x', headers: bearer(second) })).statusCode).toBe(200);
    expect((await patch(service, { serviceAccount: null })).statusCode).toBe(200);
    expect((await h.inject({ url: '/x', headers: bearer(second) })).statusCode).toBe(401);
  });

  it('answers unauthorized_client when the service account is gone, and stops pointing the client at a deleted user', async () => {
    h = await createHarness(dialect);
    const admin = { authorization: h.adminBasic };
    const robot = await userWithToken(h, 'robot');
    const service = await registerClient(h, { serviceAccount: 'robot', redirectUris: [] });
    expect((await post(h, TOKEN, service, { grant_type: 'client_credentials' })).statusCode).toBe(200);

    // Disabled: no grant was presented, so not invalid_grant (RFC 6749 §5.2): the client may not use this grant now.
    expect((await h.inject({ method: 'PATCH', url: `/api/v1/users/${robot.user.id}`, headers: admin, payload: { disabled: true } })).statusCode).toBe(200);
    const disabled = await post(h, TOKEN, service, { grant_type: 'client_credentials' });
    expect(disabled.statusCode).toBe(400);
    expect(json(disabled).error).toBe('unauthorized_client');

    expect((await h.inject({ method: 'DELETE', url: `/api/v1/users/${robot.user.id}`, headers: admin })).statusCode).toBe(204);
    const deleted = await post(h, TOKEN, service, { grant_type: 'client_credentials' });
    expect(deleted.statusCode).toBe(400);
    expect(json(deleted).error).toBe('unauthorized_client');
    // Neither the client nor its link's configuration names the deleted user any more.
    const view = json<{ serviceAccount: unknown; warnings: string[] }>(await h.inject({ url: `/api/v1/oauth2/clients/${service.clientId}`, headers: admin }));
    expect(view.serviceAccount).toBeNull();
    expect(view.warnings.join(' ')).toMatch(/not a service account/);
    const link = json<{ incoming: Array<{ type: string; config: Record<string, unknown> }> }>(await h.inject({ url: `/api/v1/links/${service.linkId}`, headers: admin }));
    expect(link.incoming.find((a) => a.type === 'oauth2')!.config.serviceAccountUserId).toBeNull();
    expect(JSON.stringify(link)).not.toContain(robot.user.id);
    // And the client can still be changed (its configuration validates).
    expect((await h.inject({ method: 'PATCH', url: `/api/v1/oauth2/clients/${service.clientId}`, headers: admin, payload: { name: 'Orphaned robot' } })).statusCode).toBe(200);
    // A new user of the same name is not the service account.
    await userWithToken(h, 'robot');
    expect(json(await post(h, TOKEN, service, { grant_type: 'client_credentials' })).error).toBe('unauthorized_client');
  });

  it('keeps the developer area closed unless configured', async () => {
    h = await createHarness(dialect);
    const { bearer } = await userWithToken(h, 'dev');
    const res = await h.inject({ method: 'POST', url: '/api/v1/me/oauth2/clients', headers: { authorization: bearer }, payload: { name: 'Mine', redirectUris: ['https://mine.example/cb'] } });
    expect(res.statusCode).toBe(403);
    expect(json(res).message).toMatch(/APPLINKS_OAUTH2_DEVELOPER_APPS/);
  });

  it('switched off later, the developer area still shows and deletes the apps registered before, and changes none', async () => {
    h = await createHarness(dialect, { config: { oauth2DeveloperApps: true } });
    const dev = await userWithToken(h, 'dev');
    const app = json<{ clientId: string }>(
      await h.inject({ method: 'POST', url: '/api/v1/me/oauth2/clients', headers: { authorization: dev.bearer }, payload: { name: 'Mine', redirectUris: [REDIRECT] } }),
    );
    const closed = await createHarness(dialect, { store: h.store, config: { oauth2DeveloperApps: false } });
    try {
      const as = (method: string, url: string, payload?: Record<string, unknown>) => closed.inject({ method: method as 'GET', url, headers: { authorization: dev.bearer }, ...(payload ? { payload } : {}) });
      expect(json<{ clients: unknown[] }>(await as('GET', '/api/v1/me/oauth2/clients')).clients).toHaveLength(1);
      expect((await as('GET', `/api/v1/me/oauth2/clients/${app.clientId}`)).statusCode).toBe(200);
      expect((await as('PATCH', `/api/v1/me/oauth2/clients/${app.clientId}`, { name: 'Renamed' })).statusCode).toBe(403);
      expect((await as('POST', `/api/v1/me/oauth2/clients/${app.clientId}/secret`, {})).statusCode).toBe(403);
      expect((await as('POST', '/api/v1/me/oauth2/clients', { name: 'New', redirectUris: [REDIRECT] })).statusCode).toBe(403);
      expect((await as('DELETE', `/api/v1/me/oauth2/clients/${app.clientId}`)).statusCode).toBe(204);
      expect(json<{ clients: unknown[] }>(await as('GET', '/api/v1/me/oauth2/clients')).clients).toHaveLength(0);
    } finally {
      await closed.close();
    }
  });

  it('holds a developer to the app limit when registrations arrive at once', async () => {
    h = await createHarness(dialect, { config: { oauth2DeveloperApps: true, oauth2DeveloperMaxApps: 2 } });
    const dev = await userWithToken(h, 'dev');
    const answers = await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        h.inject({ method: 'POST', url: '/api/v1/me/oauth2/clients', headers: { authorization: dev.bearer }, payload: { name: `App ${i}`, redirectUris: [`https://mine.example/cb${i}`] } }),
      ),
    );
    expect(answers.map((r) => r.statusCode).sort()).toEqual([201, 201, 403, 403, 403]);
    expect(json<{ clients: unknown[] }>(await h.inject({ url: '/api/v1/me/oauth2/clients', headers: { authorization: dev.bearer } })).clients).toHaveLength(2);
    // What a refused registration began is rolled back: no link is left without its client.
    const links = json<{ links: Array<{ name: string }> }>(await h.inject({ url: '/api/v1/links', headers: { authorization: h.adminBasic } })).links;
    expect(links.filter((l) => l.name.startsWith('App '))).toHaveLength(2);
  });

  it('lets users register their own applications, each on a link of its own, within limits', async () => {
    h = await createHarness(dialect, { config: { oauth2DeveloperApps: true, oauth2DeveloperMaxApps: 2 } });
    const dev = await userWithToken(h, 'dev');
    const other = await userWithToken(h, 'other');
    const mine = (method: string, url: string, payload?: unknown, who = dev.bearer) =>
      h.inject({ method: method as 'GET', url, headers: { authorization: who }, ...(payload ? { payload: payload as Record<string, unknown> } : {}) });
    const created = await mine('POST', '/api/v1/me/oauth2/clients', { name: 'Mine', redirectUris: [REDIRECT] });
    expect(created.statusCode).toBe(201);
    const app = json<{ clientId: string; clientSecret: string; linkId: string; linkName: string; owner: { username: string }; scopes: string[] }>(created);
    expect(app).toMatchObject({ linkName: 'Mine (dev)', owner: { username: 'dev' }, scopes: ['READ', 'WRITE'] });
    expect(app.clientSecret).toMatch(/^alcs_/);

    expect((await mine('POST', '/api/v1/me/oauth2/clients', { name: 'Too wide', redirectUris: ['https://mine.example/cb'], scopes: ['ADMIN'] })).statusCode).toBe(400);
    expect((await mine('POST', '/api/v1/me/oauth2/clients', { name: 'Service', redirectUris: ['https://mine.example/cb'], serviceAccount: 'dev' })).statusCode).toBe(400);
    expect((await mine('POST', '/api/v1/me/oauth2/clients', { name: 'Second', redirectUris: ['https://mine.example/cb2'] })).statusCode).toBe(201);
    const third = await mine('POST', '/api/v1/me/oauth2/clients', { name: 'Third', redirectUris: ['https://mine.example/cb3'] });
    expect(third.statusCode).toBe(403);

    // Only the owner sees and changes it; an administrator sees it with its owner.
    expect(json<{ clients: unknown[] }>(await mine('GET', '/api/v1/me/oauth2/clients')).clients).toHaveLength(2);
    expect(json<{ clients: unknown[] }>(await mine('GET', '/api/v1/me/oauth2/clients', undefined, other.bearer)).clients).toHaveLength(0);
    expect((await mine('GET', `/api/v1/me/oauth2/clients/${app.clientId}`, undefined, other.bearer)).statusCode).toBe(404);
    expect((await mine('DELETE', `/api/v1/me/oauth2/clients/${app.clientId}`, undefined, other.bearer)).statusCode).toBe(404);
    const all = json<{ clients: Array<{ clientId: string; owner: { username: string } | null }> }>(await h.inject({ url: '/api/v1/oauth2/clients', headers: { authorization: h.adminBasic } }));
    expect(all.clients.find((c) => c.clientId === app.clientId)?.owner?.username).toBe('dev');

    // The owner's account page lists it.
    const ownerJar = await signIn(h, 'dev', 'dev-password');
    const account = await h.inject({ url: '/applinks/account', headers: { cookie: ownerJar.header } });
    expect(account.body).toContain('Your OAuth 2.0 applications');
    expect(account.body).toContain(app.clientId);
    expect(account.body).not.toContain(app.clientSecret);

    // Another user authorizes it; rotating the secret keeps the old one during the grace period.
    const jar = await signIn(h, 'other', 'other-password');
    const client = { clientId: app.clientId, clientSecret: app.clientSecret, linkId: app.linkId };
    const consentUrl = `/rest/oauth2/latest/authorize?response_type=code&client_id=${app.clientId}`;
    const page = await h.inject({ url: consentUrl, headers: { cookie: jar.header } });
    expect(page.body).toContain('Allow Mine to act for you?');
    const tokens = await exchange(h, client, await obtainCode(h, jar, client));
    const rotated = await mine('POST', `/api/v1/me/oauth2/clients/${app.clientId}/secret`, { graceSeconds: 0 });
    expect(rotated.statusCode).toBe(200);
    expect((await post(h, TOKEN, client, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token })).statusCode).toBe(401);

    // An OAuth token of the owner cannot manage applications.
    const devJar = await signIn(h, 'dev', 'dev-password');
    const devClient = { ...client, clientSecret: json<{ clientSecret: string }>(rotated).clientSecret };
    const devTokens = await exchange(h, devClient, await obtainCode(h, devJar, devClient));
    expect((await mine('GET', '/api/v1/me/oauth2/clients', undefined, `Bearer ${devTokens.access_token}`)).statusCode).toBe(403);

    // Deleting the app deletes its link and revokes what it was issued, at once.
    expect((await mine('DELETE', `/api/v1/me/oauth2/clients/${app.clientId}`)).statusCode).toBe(204);
    expect((await h.inject({ url: '/x', headers: { authorization: `Bearer ${devTokens.access_token}` } })).statusCode).toBe(401);
    expect((await h.inject({ url: `/api/v1/links/${app.linkId}`, headers: { authorization: h.adminBasic } })).statusCode).toBe(404);
    expect(await h.services.authorizations.list((await h.services.users.findByUsername('other'))!.id)).toHaveLength(0);
  });

  it('frees a developer’s slot when an administrator removes the client through any path', async () => {
    h = await createHarness(dialect, { config: { oauth2DeveloperApps: true, oauth2DeveloperMaxApps: 1 } });
    const dev = await userWithToken(h, 'dev');
    const admin = { authorization: h.adminBasic };
    const register = (name: string) => h.inject({ method: 'POST', url: '/api/v1/me/oauth2/clients', headers: { authorization: dev.bearer }, payload: { name, redirectUris: [REDIRECT] } });
    const first = json<{ clientId: string; linkId: string }>(await register('First'));
    expect((await register('Too many')).statusCode).toBe(403);
    // The generic link API removes only the OAuth 2.0 configuration; the link stays, no longer the developer's.
    expect((await h.inject({ method: 'DELETE', url: `/api/v1/links/${first.linkId}/incoming/oauth2`, headers: admin })).statusCode).toBe(200);
    expect(json<{ clients: unknown[] }>(await h.inject({ url: '/api/v1/me/oauth2/clients', headers: { authorization: dev.bearer } })).clients).toHaveLength(0);
    const second = await register('Second');
    expect(second.statusCode, second.body).toBe(201);
    // A client added to that link later is an administrator's, not the developer's.
    const readded = await registerClient(h, { linkId: first.linkId });
    expect(json(await h.inject({ url: `/api/v1/oauth2/clients/${readded.clientId}`, headers: admin })).owner).toBeNull();
    // The client API's removal of the developer's app takes its whole link, as before.
    const secondApp = json<{ clientId: string; linkId: string }>(second);
    expect((await h.inject({ method: 'DELETE', url: `/api/v1/oauth2/clients/${secondApp.clientId}`, headers: admin })).statusCode).toBe(204);
    expect((await register('Third')).statusCode).toBe(201);
    // An ownership row left behind before this was fixed (a link without a client) takes no slot either.
    const mine = async () => json<{ clients: Array<{ clientId: string }> }>(await h.inject({ url: '/api/v1/me/oauth2/clients', headers: { authorization: dev.bearer } })).clients;
    const stale = json<{ id: string }>(await h.inject({ method: 'POST', url: '/api/v1/links', headers: admin, payload: { name: 'Stale' } }));
    await oauth2Of(h.services).repo.setOwner(stale.id, dev.user.id, h.clock.now());
    const [third] = await mine();
    expect((await h.inject({ method: 'DELETE', url: `/api/v1/me/oauth2/clients/${third!.clientId}`, headers: { authorization: dev.bearer } })).statusCode).toBe(204);
    const fifth = await register('Fifth');
    expect(fifth.statusCode).toBe(201);
    // A new client id set through the generic API is a new client on the same app: still the developer's.
    const app = json<{ linkId: string }>(fifth);
    const link = json<{ incoming: Array<{ type: string; config: Record<string, unknown> }> }>(await h.inject({ url: `/api/v1/links/${app.linkId}`, headers: admin }));
    const config = { ...link.incoming.find((a) => a.type === 'oauth2')!.config, clientId: 'renamed-client-id' };
    expect((await h.inject({ method: 'PUT', url: `/api/v1/links/${app.linkId}/incoming/oauth2`, headers: admin, payload: config })).statusCode).toBe(200);
    expect(json<{ owner: { username: string } | null }>(await h.inject({ url: '/api/v1/oauth2/clients/renamed-client-id', headers: admin })).owner?.username).toBe('dev');
  });

  it('revokes every authorization of a link through the core admin route, keeping the client', async () => {
    h = await createHarness(dialect);
    const client = await registerClient(h);
    await userWithToken(h, 'alice');
    const jar = await signIn(h, 'alice', 'alice-password');
    const t = await exchange(h, client, await obtainCode(h, jar, client));
    const res = await h.inject({ method: 'DELETE', url: `/api/v1/links/${client.linkId}/authorizations`, headers: { authorization: h.adminBasic } });
    expect(json(res)).toEqual({ revoked: 1 });
    expect((await h.inject({ url: '/x', headers: { authorization: `Bearer ${t.access_token}` } })).statusCode).toBe(401);
    // The client is still registered and can start over.
    await obtainCode(h, jar, client);
  });
});
