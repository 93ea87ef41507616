/**
 * Issue 4's OAuth 2.0 benchmark, side by side in one run with panva's oidc-provider configured
 * as ../shared/BENCHMARKS.md describes (bench/oauth2-peer.mjs):
 * - client_credentials issuance, `POST /token`, on both (ours persisting every token to the
 *   embedded SQLite store);
 * - introspection of a token issued before the run, on both;
 * - our authorization-code exchange (with PKCE) and refresh (with rotation) rates, each request
 *   redeeming a code or refresh token issued before the run (both are single use);
 * - the bearer-authenticated gateway path, as a ratio to the bare proxy.
 * Targets: issuance ≥ 1.5× oidc-provider, introspection ≥ 2×, bearer gateway ≥ 85% of the bare proxy.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import path from 'node:path';
import { applinksEnv, freePort, interleave, median, printTargets, ROOT, SECONDS, SERVER_CORE, spawnPinned, startApplinks, startBareProxy, startUpstream, type Configuration, type LoadSpec, type RunResult } from './lib/index.js';

const { createServices } = (await import(`${ROOT}/dist/services/index.js`)) as typeof import('../src/services/index.js');
const { loadConfig } = (await import(`${ROOT}/dist/config/loader.js`)) as typeof import('../src/config/loader.js');
const { SYSTEM_ACTOR } = (await import(`${ROOT}/dist/services/audit.js`)) as typeof import('../src/services/audit.js');
const { oauth2Of } = (await import(`${ROOT}/dist/modules/oauth2/index.js`)) as typeof import('../src/modules/oauth2/index.js');
const { ClientManager } = (await import(`${ROOT}/dist/modules/oauth2/management.js`)) as typeof import('../src/modules/oauth2/management.js');
const { OAuth2Repository } = (await import(`${ROOT}/dist/modules/oauth2/repository.js`)) as typeof import('../src/modules/oauth2/repository.js');
const { hashToken, randomToken } = (await import(`${ROOT}/dist/crypto/tokens.js`)) as typeof import('../src/crypto/tokens.js');

/** Single-use credentials issued before each run of the code and refresh configurations. */
const POOL = Number(process.env.BENCH_OAUTH2_POOL ?? 3000 * (SECONDS + 3 + 2));
const REDIRECT = 'https://bench.example/callback';
const VERIFIER = randomBytes(32).toString('base64url');
const CHALLENGE = createHash('sha256').update(VERIFIER).digest('base64url');
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

const upstream = await startUpstream();
const setup = applinksEnv({ APPLINKS_UPSTREAM_URL: upstream.url });

async function withServices<T>(work: (s: Awaited<ReturnType<typeof createServices>>) => Promise<T>, env: Record<string, string> = setup.env): Promise<T> {
  const services = await createServices(loadConfig({ env }), { bootstrapAdmin: true, logger: (await import('pino')).pino({ level: 'warn' }) });
  try {
    return await work(services);
  } finally {
    await services.close();
  }
}

/** A service-account client (client_credentials, introspection) and a 3-legged one, and a user. */
const prepared = await withServices(async (s) => {
  const robot = await s.users.create({ username: 'robot', password: 'robot-password-1' }, SYSTEM_ACTOR);
  const alice = await s.users.create({ username: 'alice', password: 'alice-password-1' }, SYSTEM_ACTOR);
  const manager = new ClientManager(s, oauth2Of(s));
  const service = await manager.create({ name: 'Bench service', redirectUris: [], scopes: ['READ', 'WRITE'], serviceAccount: 'robot' }, SYSTEM_ACTOR);
  const web = await manager.create({ name: 'Bench web app', redirectUris: [REDIRECT], scopes: ['READ', 'WRITE'] }, SYSTEM_ACTOR);
  const service1 = await oauth2Of(s).findClient(service.client.clientId);
  // One token issued before the runs, for introspection and the gateway (BENCHMARKS.md).
  const issued = await oauth2Of(s).clientCredentials(service1!, 'READ WRITE');
  // For reference in the same run: the gateway path of a personal API token (issue 2's target).
  const { token: apiToken } = await s.apiTokens.create(robot.id, { name: 'bench', expiresAt: null }, SYSTEM_ACTOR);
  return {
    apiToken,
    robot,
    alice,
    service: { id: service.client.clientId, secret: service.clientSecret!, linkId: service.client.linkId },
    web: { id: web.client.clientId, secret: web.clientSecret!, linkId: web.client.linkId },
    accessToken: issued.access_token,
  };
});
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
const serviceAuth = basic(prepared.service.id, prepared.service.secret);
const webAuth = basic(prepared.web.id, prepared.web.secret);

/**
 * Writes `POOL` single-use credentials straight into the store of one server (not running yet):
 * its own copy of the data directory, so no other server of the run, and no later round, starts
 * on a store holding them (their expiry would have those servers prune thousands of rows while
 * they are measured).
 */
async function issuePool(kind: 'code' | 'refresh', env: Record<string, string>): Promise<string[]> {
  return withServices(async (s) => {
    const values: string[] = [];
    const now = s.clock.now();
    await s.store.transaction(async (_repos, trx) => {
      const repo = new OAuth2Repository(trx);
      for (let i = 0; i < POOL; i++) {
        if (kind === 'code') {
          const code = randomToken('alac_');
          await repo.insertCode({
            codeHash: hashToken(code),
            linkId: prepared.web.linkId,
            userId: prepared.alice.id,
            clientId: prepared.web.id,
            redirectUri: REDIRECT,
            redirectUriSent: true,
            scopes: ['READ', 'WRITE'],
            codeChallenge: CHALLENGE,
            codeChallengeMethod: 'S256',
            grantId: randomUUID(),
            createdAt: now,
            expiresAt: now + 600_000,
            consumedAt: null,
          });
          values.push(code);
        } else {
          const refresh = randomToken('alrt_');
          const grantId = randomUUID();
          await repo.insertGrant({
            id: grantId,
            linkId: prepared.web.linkId,
            userId: prepared.alice.id,
            clientId: prepared.web.id,
            scopes: ['READ', 'WRITE'],
            redirectUri: REDIRECT,
            refreshGeneration: 0,
            version: 0,
            createdAt: now,
            lastUsedAt: now,
            expiresAt: now + 86_400_000,
          });
          await repo.insertToken({
            tokenHash: hashToken(refresh),
            kind: 'refresh',
            linkId: prepared.web.linkId,
            userId: prepared.alice.id,
            grantId,
            clientId: prepared.web.id,
            scopes: ['READ', 'WRITE'],
            generation: 0,
            replacedAt: null,
            createdAt: now,
            expiresAt: now + 86_400_000,
          });
          values.push(refresh);
        }
      }
    });
    return values;
  }, env);
}

function hasBody(keys: string[]) {
  return (res: { body: string }) => {
    const body = JSON.parse(res.body) as Record<string, unknown>;
    for (const k of keys) if (body[k] === undefined) throw new Error(`response lacks ${k}: ${res.body.slice(0, 200)}`);
  };
}
const isActive = (res: { body: string }) => {
  if ((JSON.parse(res.body) as { active?: boolean }).active !== true) throw new Error(`token not active: ${res.body}`);
};

async function applinks(spec: (base: string) => LoadSpec | Promise<LoadSpec>, env: Record<string, string> = setup.copy()) {
  const port = await freePort();
  const proc = await startApplinks({ ...env, APPLINKS_PORT: String(port) });
  return { pid: proc.pid, stop: proc.stop, spec: await spec(proc.url) };
}

/** oidc-provider on the server core, with one client_credentials token issued before the run. */
async function peer(spec: (base: string, token: string) => LoadSpec) {
  const port = await freePort();
  const proc = await spawnPinned(SERVER_CORE, [path.join(ROOT, 'bench/oauth2-peer.mjs')], { PORT: String(port), CLIENT_ID: 'bench', CLIENT_SECRET: 'bench-secret-0123456789abcdef' }, /listening (http:\/\/\S+)/);
  const res = await fetch(`${proc.url}/token`, { method: 'POST', headers: { ...FORM, authorization: basic('bench', 'bench-secret-0123456789abcdef') }, body: 'grant_type=client_credentials&scope=read' });
  const token = ((await res.json()) as { access_token: string }).access_token;
  return { pid: proc.pid, stop: proc.stop, spec: spec(proc.url, token) };
}
const peerAuth = basic('bench', 'bench-secret-0123456789abcdef');

const pop = (pool: string[], body: (value: string) => string) => () => {
  const value = pool.pop();
  if (value === undefined) throw new Error('the pool of single-use credentials ran out: raise BENCH_OAUTH2_POOL');
  return body(value);
};

const configs: Configuration[] = [
  {
    name: 'bare proxy',
    start: async () => {
      const proc = await startBareProxy(upstream.url);
      return { pid: proc.pid, stop: proc.stop, spec: { url: `${proc.url}/rest/api/2/issue/BENCH-1` } };
    },
  },
  {
    name: 'gateway, OAuth 2.0 bearer',
    start: () =>
      applinks((base) => ({
        url: `${base}/rest/api/2/issue/BENCH-1`,
        headers: { authorization: `Bearer ${prepared.accessToken}` },
        check: (res) => {
          if (res.headers['x-seen-user'] !== 'robot') throw new Error(`upstream saw "${String(res.headers['x-seen-user'])}"`);
        },
      })),
  },
  {
    name: 'gateway, API token (reference)',
    start: () =>
      applinks((base) => ({
        url: `${base}/rest/api/2/issue/BENCH-1`,
        headers: { authorization: `Bearer ${prepared.apiToken}` },
        check: (res) => {
          if (res.headers['x-seen-user'] !== 'robot') throw new Error(`upstream saw "${String(res.headers['x-seen-user'])}"`);
        },
      })),
  },
  {
    name: 'oidc-provider client_credentials',
    start: () => peer((base) => ({ url: `${base}/token`, method: 'POST', headers: { ...FORM, authorization: peerAuth }, body: 'grant_type=client_credentials&scope=read', check: hasBody(['access_token']) })),
  },
  {
    name: 'applinks client_credentials',
    start: () =>
      applinks((base) => ({ url: `${base}/rest/oauth2/latest/token`, method: 'POST', headers: { ...FORM, authorization: serviceAuth }, body: 'grant_type=client_credentials&scope=READ', check: hasBody(['access_token']) })),
  },
  {
    name: 'oidc-provider introspection',
    start: () => peer((base, token) => ({ url: `${base}/token/introspection`, method: 'POST', headers: { ...FORM, authorization: peerAuth }, body: `token=${token}`, check: isActive })),
  },
  {
    name: 'applinks introspection',
    start: () =>
      applinks((base) => ({ url: `${base}/rest/oauth2/latest/introspect`, method: 'POST', headers: { ...FORM, authorization: serviceAuth }, body: `token=${prepared.accessToken}`, check: isActive })),
  },
  {
    name: 'applinks code exchange (PKCE)',
    start: async () => {
      const env = setup.copy();
      const codes = await issuePool('code', env);
      return applinks((base) => ({
        url: `${base}/rest/oauth2/latest/token`,
        method: 'POST',
        headers: { ...FORM, authorization: webAuth },
        dynamicBody: pop(codes, (code) => `grant_type=authorization_code&code=${code}&redirect_uri=${encodeURIComponent(REDIRECT)}&code_verifier=${VERIFIER}`),
        check: hasBody(['access_token', 'refresh_token']),
      }), env);
    },
  },
  {
    name: 'applinks refresh (rotation)',
    start: async () => {
      const env = setup.copy();
      const tokens = await issuePool('refresh', env);
      return applinks((base) => ({
        url: `${base}/rest/oauth2/latest/token`,
        method: 'POST',
        headers: { ...FORM, authorization: webAuth },
        dynamicBody: pop(tokens, (token) => `grant_type=refresh_token&refresh_token=${token}`),
        check: hasBody(['access_token', 'refresh_token']),
      }), env);
    },
  },
];

// BENCH_ONLY=<regex> runs a subset (the bare proxy always runs: it is the baseline).
const only = process.env.BENCH_ONLY ? new RegExp(process.env.BENCH_ONLY) : undefined;
const selected = only ? configs.filter((c) => c.name === 'bare proxy' || only.test(c.name)) : configs;

try {
  const results = await interleave(selected, 'bare proxy');
  if (selected !== configs) process.exit(0);
  const rps = (name: string) => median((results.get(name) as RunResult[]).map((r) => r.rps));
  const cpu = (name: string) => median((results.get(name) as RunResult[]).map((r) => r.cpuUsPerRequest));
  printTargets(results, [
    { label: 'client_credentials issuance vs oidc-provider', name: 'applinks client_credentials', versus: 'oidc-provider client_credentials', target: 1.5, unit: '×' },
    { label: 'introspection vs oidc-provider', name: 'applinks introspection', versus: 'oidc-provider introspection', target: 2, unit: '×' },
    { label: 'bearer gateway vs bare proxy', name: 'gateway, OAuth 2.0 bearer', versus: 'bare proxy', target: 0.85, unit: '%' },
  ]);
  console.log(`code exchange ${rps('applinks code exchange (PKCE)').toFixed(0)} req/s, refresh ${rps('applinks refresh (rotation)').toFixed(0)} req/s (each persisted to SQLite)`);

  // The steadier figure behind the gateway ratio: what authenticating one request costs in
  // process (pipeline + scope rule, caches warm), OAuth 2.0 bearer against a personal API token.
  const { createAuthRequest } = (await import(`${ROOT}/dist/auth/request.js`)) as typeof import('../src/auth/request.js');
  await withServices(async (s) => {
    const perRequest = async (authorization: string) => {
      const req = () => createAuthRequest({ method: 'GET', url: 'http://127.0.0.1/rest/api/2/issue/BENCH-1', headers: { authorization }, remoteAddress: '127.0.0.1', secure: false, connection: 'gateway' });
      for (let i = 0; i < 20_000; i++) await s.pipeline.authenticateForHost(req());
      const n = 200_000;
      const start = process.hrtime.bigint();
      for (let i = 0; i < n; i++) await s.pipeline.authenticateForHost(req());
      return Number(process.hrtime.bigint() - start) / n / 1000;
    };
    const bearer = await perRequest(`Bearer ${prepared.accessToken}`);
    const apiToken = await perRequest(`Bearer ${prepared.apiToken}`);
    console.log(`authentication in process: OAuth 2.0 bearer ${bearer.toFixed(2)} µs/request, API token ${apiToken.toFixed(2)} µs/request (bare proxy: ${cpu('bare proxy').toFixed(0)} µs/request of CPU)`);
  });
} finally {
  await upstream.stop();
  setup.cleanup();
}
