import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApplinks, type Applinks } from '../../src/index.js';
import { SYSTEM_ACTOR } from '../../src/services/audit.js';
import { createHarness, basic, DIALECTS, type Harness } from '../helpers/harness.js';
import { authHeader, registerConsumer } from '../helpers/oauth1.js';

/**
 * A Node host embeds applinks through the library, sharing the store with a running applinks
 * server: a token created on the server authenticates inside the host, with no hop between.
 */
describe.each(DIALECTS)('library inside Node hosts on %s', (dialect) => {
  let server: Harness;
  let lib: Applinks;
  let token: string;

  beforeAll(async () => {
    server = await createHarness(dialect);
    const user = await server.services.users.create({ username: 'alice', password: 'alice-password' }, SYSTEM_ACTOR);
    token = (await server.services.apiTokens.create(user.id, { name: 'lib', expiresAt: null }, SYSTEM_ACTOR)).token;
    lib = await createApplinks(
      // A short cache lifetime: the revocation test waits it out once per dialect.
      { databaseUrl: server.store.databaseUrl, dataDir: server.store.dataDir, baseUrl: 'http://host.test', logLevel: 'silent', authCacheTtlMs: 200 },
      server.store.schema ? { storeOptions: { schema: server.store.schema, poolSize: 2 } } : {},
    );
  });
  afterAll(async () => {
    await lib?.close();
    await server.close();
  });

  it('sets request.applinks in a Fastify host and refuses bad credentials with 401', async () => {
    const app = Fastify();
    await app.register(lib.fastifyPlugin);
    app.get('/who', async (req) => ({ user: req.applinks.user?.username ?? null, auth: req.applinks.authType, connection: req.applinks.connection }));
    await app.register(async (scope) => {
      await scope.register(lib.fastifyPlugin, { required: true });
      scope.get('/private', async (req) => ({ user: req.applinks.user!.username }));
    });
    expect((await app.inject({ url: '/who', headers: { authorization: `Bearer ${token}` } })).json()).toEqual({ user: 'alice', auth: 'api-token', connection: 'library' });
    expect((await app.inject({ url: '/who' })).json()).toEqual({ user: null, auth: 'anonymous', connection: 'library' });
    const bad = await app.inject({ url: '/who', headers: { authorization: 'Bearer alpat_forged' } });
    expect(bad.statusCode).toBe(401);
    expect(bad.headers['www-authenticate']).toMatch(/^Bearer realm=/);
    const anonymous = await app.inject({ url: '/private' });
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.headers['www-authenticate']).toBeDefined();
    expect((await app.inject({ url: '/private', headers: { authorization: basic('alice', 'alice-password') } })).json()).toEqual({ user: 'alice' });
    await app.close();
  });

  it('sets req.applinks in an Express host', async () => {
    const app = express();
    app.use(lib.middleware());
    app.get('/who', (req, res) => {
      const p = (req as unknown as { applinks: { user: { username: string } | null; authType: string } }).applinks;
      res.json({ user: p.user?.username ?? null, auth: p.authType });
    });
    const server = app.listen(0);
    await new Promise((r) => server.once('listening', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/who`;
    try {
      const ok = await request(url, { headers: { authorization: `Bearer ${token}` } });
      expect(await ok.body.json()).toEqual({ user: 'alice', auth: 'api-token' });
      const bad = await request(url, { headers: { authorization: basic('alice', 'wrong-password') } });
      expect(bad.statusCode).toBe(401);
      expect(await bad.body.json()).toMatchObject({ error: 'invalid_credentials' });
    } finally {
      server.close();
    }
  });

  it('checks an OAuth 1.0a signature over the whole URL when Express mounts the middleware on a path', async () => {
    const c = await registerConsumer(server, { method: 'HMAC-SHA1', config: { allow2LO: true, executeAs: 'alice' } });
    const app = express();
    const api = express.Router();
    api.get('/issues', (req, res) => {
      const p = (req as unknown as { applinks: { user: { username: string } | null; authType: string } }).applinks;
      res.json({ user: p.user?.username ?? null, auth: p.authType });
    });
    app.use('/api', lib.middleware(), api);
    const listening = app.listen(0);
    await new Promise((r) => listening.once('listening', r));
    const url = `http://127.0.0.1:${(listening.address() as AddressInfo).port}/api/issues?project=X`;
    try {
      const header = authHeader(c, { base: 'http://host.test', path: '/api/issues?project=X', token: { key: '', secret: '' } });
      const ok = await request(url, { headers: { authorization: header } });
      expect(await ok.body.json()).toEqual({ user: 'alice', auth: 'oauth1-2lo' });
    } finally {
      listening.close();
    }
  });

  it('accepts OAuth 1.0a signed for the host’s URL, and refuses a bad one with Jira’s problem rendering', async () => {
    // A consumer registered and authorized on the server; the host signs-checks with the library.
    const c = await registerConsumer(server, { method: 'HMAC-SHA1', config: { allow2LO: true, executeAs: 'alice' } });
    const app = Fastify();
    await app.register(lib.fastifyPlugin);
    app.get('/issues', async (req) => ({ user: req.applinks.user?.username ?? null, auth: req.applinks.authType }));
    const header = authHeader(c, { base: 'http://host.test', path: '/issues?project=X', token: { key: '', secret: '' } });
    expect((await app.inject({ url: '/issues?project=X', headers: { host: 'host.test', authorization: header } })).json()).toEqual({ user: 'alice', auth: 'oauth1-2lo' });
    const replay = await app.inject({ url: '/issues?project=X', headers: { host: 'host.test', authorization: header } });
    expect(replay.statusCode).toBe(401);
    expect(replay.headers['content-type']).toBe('application/x-www-form-urlencoded;charset=UTF-8');
    expect(replay.headers['www-authenticate']).toMatch(/^OAuth realm="http%3A%2F%2Fhost.test", oauth_problem="nonce_used"/);
    expect(new URLSearchParams(replay.body).get('oauth_problem')).toBe('nonce_used');
    await app.close();
  });

  it('sees a revocation made by the server within the cache lifetime', async () => {
    const [t] = await server.services.apiTokens.list((await server.services.users.findByUsername('alice'))!.id);
    const app = Fastify();
    await app.register(lib.fastifyPlugin);
    app.get('/who', async (req) => ({ user: req.applinks.user?.username ?? null }));
    expect((await app.inject({ url: '/who', headers: { authorization: `Bearer ${token}` } })).statusCode).toBe(200);
    await server.services.apiTokens.revoke(t!.id, SYSTEM_ACTOR);
    await new Promise((r) => setTimeout(r, lib.services.config.authCacheTtlMs + 50));
    expect((await app.inject({ url: '/who', headers: { authorization: `Bearer ${token}` } })).statusCode).toBe(401);
    await app.close();
  });
});
