import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYSTEM_ACTOR } from '../../src/services/audit.js';
import { createHarness, DIALECTS, json, userWithToken, type Harness } from '../helpers/harness.js';
import { startUpstream } from '../helpers/upstream.js';

describe.each(DIALECTS)('application links: health and the outgoing client on %s', (dialect) => {
  let local: Harness;
  let remote: Harness;
  let remoteUrl: string;
  let echo: Awaited<ReturnType<typeof startUpstream>>;

  beforeAll(async () => {
    local = await createHarness(dialect);
    remote = await createHarness(dialect, { config: { appName: 'Remote Jira', applicationType: 'jira' } });
    await remote.app.listen({ port: 0, host: '127.0.0.1' });
    remoteUrl = `http://127.0.0.1:${(remote.app.server.address() as AddressInfo).port}`;
    echo = await startUpstream();
  });
  afterAll(async () => {
    await local.close();
    await remote.close();
    await echo.close();
  });

  const createLink = async (body: Record<string, unknown>) => {
    const res = await local.inject({ method: 'POST', url: '/api/v1/links', headers: { authorization: local.adminBasic }, payload: body });
    expect(res.statusCode, res.body).toBe(201);
    return json<{ id: string }>(res);
  };
  const health = async (id: string) => json<{ healthy: boolean; warnings: string[]; remote: null | { reachable: boolean; status: number | null; manifest: null | Record<string, unknown> } }>(
    await local.inject({ url: `/api/v1/links/${id}/health`, headers: { authorization: local.adminBasic } }),
  );

  it('refuses a duplicate name, in any case, on create and on rename, with 409 and nothing written', async () => {
    const admin = { authorization: local.adminBasic };
    const first = await createLink({ name: 'Bitbucket', url: 'https://bitbucket.example', outgoing: { basic: { username: 'svc', password: 'dup-secret' } } });
    const second = await createLink({ name: 'Bamboo' });
    const audit = async () => json<{ entries: Array<{ id: string }> }>(await local.inject({ url: '/api/v1/audit?limit=500', headers: admin })).entries.map((e) => e.id);
    const links = async () => json<{ links: Array<{ id: string; name: string; url: string | null }> }>(await local.inject({ url: '/api/v1/links', headers: admin })).links;
    const [auditBefore, linksBefore] = [await audit(), await links()];
    const refusals = [
      await local.inject({ method: 'POST', url: '/api/v1/links', headers: admin, payload: { name: 'Bitbucket' } }),
      await local.inject({ method: 'POST', url: '/api/v1/links', headers: admin, payload: { name: 'BITBUCKET', url: 'https://other.example', outgoing: { basic: { username: 'u', password: 'dup-secret-2' } } } }),
      await local.inject({ method: 'PATCH', url: `/api/v1/links/${second.id}`, headers: admin, payload: { name: 'bitbucket' } }),
      // A rename that moves the link too: the URL change must not land either.
      await local.inject({ method: 'PATCH', url: `/api/v1/links/${second.id}`, headers: admin, payload: { name: 'Bitbucket', url: 'https://moved.example' } }),
    ];
    for (const res of refusals) {
      expect([res.statusCode, json(res).error, json(res).field], res.body).toEqual([409, 'conflict', 'name']);
      expect(json<{ message: string }>(res).message).toMatch(/^A link named "bitbucket" already exists\.$/i);
      expect(res.body).not.toContain('dup-secret');
    }
    expect(await audit()).toEqual(auditBefore);
    expect(await links()).toEqual(linksBefore);
    expect(linksBefore.find((l) => l.id === second.id)).toMatchObject({ name: 'Bamboo', url: null });
    // Its own name in another case is no duplicate.
    const recased = await local.inject({ method: 'PATCH', url: `/api/v1/links/${first.id}`, headers: admin, payload: { name: 'BitBucket' } });
    expect([recased.statusCode, json(recased).name]).toEqual([200, 'BitBucket']);
  });

  it('calls an incoming-only link healthy without a URL and without a warning', async () => {
    const link = await createLink({ name: 'Add-in' });
    expect(await health(link.id)).toMatchObject({ healthy: true, warnings: [], remote: null });
  });

  it('reads the remote manifest of a link with an outgoing side, and remembers its application id', async () => {
    const { token } = await userWithToken(remote, 'svc');
    const link = await createLink({ name: 'Jira', url: `${remoteUrl}/`, applicationType: 'jira', outgoing: { 'api-token': { token } } });
    const h = await health(link.id);
    expect(h).toMatchObject({ healthy: true, warnings: [], remote: { reachable: true, status: 200, manifest: { id: remote.services.identity.applicationId, name: 'Remote Jira', typeId: 'jira' } } });
    const view = json(await local.inject({ url: `/api/v1/links/${link.id}`, headers: { authorization: local.adminBasic } }));
    expect(view.remoteApplicationId).toBe(remote.services.identity.applicationId);
  });

  it('warns about a reachable remote with no manifest, and fails an unreachable one', async () => {
    const plain = await createLink({ name: 'Plain', url: echo.url, outgoing: { basic: { username: 'u', password: 'p' } } });
    const h1 = await health(plain.id);
    expect(h1.healthy).toBe(true);
    expect(h1.warnings.join(' ')).toMatch(/not a manifest/);
    const gone = await createLink({ name: 'Gone', url: 'http://127.0.0.1:9', outgoing: { basic: { username: 'u', password: 'p' } } });
    expect(await health(gone.id)).toMatchObject({ healthy: false, remote: { reachable: false } });
  });

  it('signs outgoing requests with the primary type by weight, or the one asked for', async () => {
    const svc = await remote.services.users.create({ username: 'robot', password: 'robot-password' }, SYSTEM_ACTOR);
    const { token } = await remote.services.apiTokens.create(svc.id, { name: 'link', expiresAt: null }, SYSTEM_ACTOR);
    const link = await createLink({ name: 'Both', url: remoteUrl, outgoing: { 'api-token': { token }, basic: { username: 'robot', password: 'robot-password' } } });
    const view = json(await local.inject({ url: `/api/v1/links/${link.id}`, headers: { authorization: local.adminBasic } }));
    expect(view.primaryOutgoingType).toBe('api-token');
    const primary = await local.services.outgoing.request(link.id, { url: '/api/v1/me' });
    expect(primary.kind === 'response' && JSON.parse(primary.body.toString())).toMatchObject({ user: { username: 'robot' }, authType: 'api-token' });
    const asked = await local.services.outgoing.request('both', { url: '/api/v1/me', type: 'basic' });
    expect(asked.kind === 'response' && JSON.parse(asked.body.toString())).toMatchObject({ authType: 'basic' });
    await expect(local.services.outgoing.request(link.id, { url: 'http://evil.example/steal' })).rejects.toThrow(/Refusing to send/);
    await expect(local.services.outgoing.request(link.id, { url: '/x', type: 'jwt' })).rejects.toThrow(/no outgoing jwt/);
  });

  it('keeps secret fields write-only: omitted on update they keep their value, never returned', async () => {
    const link = await createLink({ name: 'Secretive', url: remoteUrl, outgoing: { basic: { username: 'robot', password: 'robot-password' } } });
    const put = await local.inject({ method: 'PUT', url: `/api/v1/links/${link.id}/outgoing/basic`, headers: { authorization: local.adminBasic }, payload: { username: 'robot' } });
    expect(put.statusCode).toBe(200);
    expect(put.body).not.toContain('robot-password');
    expect(json<{ outgoing: Array<{ secretsSet: string[] }> }>(put).outgoing[0]!.secretsSet).toEqual(['password']);
    const res = await local.services.outgoing.request(link.id, { url: '/api/v1/me' });
    expect(res.kind === 'response' && res.status).toBe(200);
    const bad = await local.inject({ method: 'PUT', url: `/api/v1/links/${link.id}/outgoing/basic`, headers: { authorization: local.adminBasic }, payload: { username: '' } });
    expect(bad.statusCode).toBe(400);
    expect(json(bad).field).toBe('outgoing.basic.username');
    const wrongSide = await local.inject({ method: 'PUT', url: `/api/v1/links/${link.id}/incoming/basic`, headers: { authorization: local.adminBasic }, payload: {} });
    expect(wrongSide.statusCode).toBe(400);
  });
});
