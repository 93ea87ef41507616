/**
 * Issue 3's OAuth 1.0a benchmark: gateway requests/s and CPU µs per request for 3-legged
 * requests signed with RSA-SHA1 and with HMAC-SHA1, each with a fresh nonce and timestamp so the
 * replay store is exercised (every request writes its nonce to the embedded SQLite store before
 * it is let through), as ratios to the bare proxy and to the API-token path, in one run.
 * Targets: RSA-SHA1 ≥ 45% of the bare proxy, HMAC-SHA1 ≥ 75%.
 *
 * Signing RSA costs the load generator more than verifying costs the server (~3,800 signatures/s
 * against ~50,000 verifications/s on one core), so each run's signed headers are made before the
 * server starts, one per request, and handed out by the load generator as it sends.
 */
import { randomBytes } from 'node:crypto';
import { applinksEnv, freePort, interleave, median, printTable, printTargets, ROOT, SECONDS, startApplinks, startBareProxy, startUpstream, type Configuration, type RunResult } from './lib/index.js';

const { createServices } = (await import(`${ROOT}/dist/services/index.js`)) as typeof import('../src/services/index.js');
const { loadConfig } = (await import(`${ROOT}/dist/config/loader.js`)) as typeof import('../src/config/loader.js');
const { SYSTEM_ACTOR } = (await import(`${ROOT}/dist/services/audit.js`)) as typeof import('../src/services/audit.js');
const { OAuth1Repository } = (await import(`${ROOT}/dist/modules/oauth1/repository.js`)) as typeof import('../src/modules/oauth1/repository.js');
const { sealContexts } = (await import(`${ROOT}/dist/modules/oauth1/tables.js`)) as typeof import('../src/modules/oauth1/tables.js');
const { authorizationHeader } = (await import(`${ROOT}/dist/protocols/oauth1/client.js`)) as typeof import('../src/protocols/oauth1/client.js');
const { hashToken, randomToken } = (await import(`${ROOT}/dist/crypto/tokens.js`)) as typeof import('../src/crypto/tokens.js');
const { generateKeyPairSync } = await import('node:crypto');

const USER = 'bench-user';
/** Signed headers per run: more than the server can take in the warm-up, the run and the checks. */
const RSA_POOL = Number(process.env.BENCH_OAUTH1_RSA_POOL ?? 15_000 * (SECONDS + 3) + 100);
const HMAC_POOL = Number(process.env.BENCH_OAUTH1_HMAC_POOL ?? 25_000 * (SECONDS + 3) + 100);
const PATH = '/rest/api/2/issue/BENCH-1';

const upstream = await startUpstream();
const setup = applinksEnv({ APPLINKS_UPSTREAM_URL: upstream.url });

type Prepared = Awaited<ReturnType<typeof prepare>>;

/** A user, an API token, an RSA and an HMAC consumer, and an access token of each for the user. */
async function prepare() {
  const services = await createServices(loadConfig({ env: setup.env }), { bootstrapAdmin: true, logger: (await import('pino')).pino({ level: 'warn' }) });
  try {
    const user = await services.users.create({ username: USER, password: 'bench-user-password' }, SYSTEM_ACTOR);
    const { token: apiToken } = await services.apiTokens.create(user.id, { name: 'bench', expiresAt: null }, SYSTEM_ACTOR);
    const keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const hmacSecret = randomBytes(24).toString('base64url');
    const rsaLink = await services.links.create({ name: 'RSA add-in', incoming: { oauth1: { consumerKey: 'bench-rsa', publicKey: keys.publicKey.export({ format: 'pem', type: 'spki' }).toString() } } }, SYSTEM_ACTOR);
    const hmacLink = await services.links.create({ name: 'HMAC add-in', incoming: { oauth1: { consumerKey: 'bench-hmac', sharedSecret: hmacSecret } } }, SYSTEM_ACTOR);
    const repo = new OAuth1Repository(services.store.db);
    const now = Date.now();
    const issue = async (linkId: string, consumerKey: string) => {
      const token = randomToken('aloat_', 24);
      const secret = randomBytes(24).toString('base64url');
      const tokenHash = hashToken(token);
      await repo.issueAccessToken(
        {
          tokenHash,
          linkId,
          consumerKey,
          userId: user.id,
          secretSealed: services.keyring.seal(secret, sealContexts.accessSecret(tokenHash)),
          sessionHash: hashToken(randomToken('alosh_')),
          createdAt: now,
          lastUsedAt: null,
          expiresAt: now + 86_400_000,
          sessionExpiresAt: now + 86_400_000,
          revokedAt: null,
          revokedReason: null,
        },
        now,
      );
      return { token, secret };
    };
    return {
      apiToken,
      rsa: { consumerKey: 'bench-rsa', privateKey: keys.privateKey, ...(await issue(rsaLink.id, 'bench-rsa')) },
      hmac: { consumerKey: 'bench-hmac', consumerSecret: hmacSecret, ...(await issue(hmacLink.id, 'bench-hmac')) },
    };
  } finally {
    await services.close();
  }
}

const prepared: Prepared = await prepare();

/** Signs one gateway request of a consumer for a server at `base`: a fresh nonce and the current time. */
function signer(kind: 'rsa' | 'hmac', base: string): () => string {
  const c = prepared[kind];
  const url = `${base}${PATH}`;
  return () =>
    authorizationHeader({
      method: 'GET',
      url,
      consumerKey: c.consumerKey,
      token: c.token,
      signatureMethod: kind === 'rsa' ? 'RSA-SHA1' : 'HMAC-SHA1',
      secrets: kind === 'rsa' ? { rsaKey: prepared.rsa.privateKey } : { consumerSecret: prepared.hmac.consumerSecret, tokenSecret: c.secret },
    });
}

const seesUser = (res: { headers: Record<string, unknown> }) => {
  if (res.headers['x-seen-user'] !== USER) throw new Error(`upstream saw user "${String(res.headers['x-seen-user'])}", expected "${USER}"`);
};

async function applinks(authorization: { fixed: string } | { kind: 'rsa' | 'hmac'; pool: number }) {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  let headers: () => Record<string, string>;
  let fixed: Record<string, string> = {};
  if ('fixed' in authorization) {
    fixed = { authorization: authorization.fixed };
    headers = () => ({});
  } else {
    // Made before the server starts, so signing does not compete with it; signed live only if the pool runs dry.
    const sign = signer(authorization.kind, base);
    const pool: string[] = [];
    const started = performance.now();
    for (let i = 0; i < authorization.pool; i++) pool.push(sign());
    process.stderr.write(`  (${authorization.pool} ${authorization.kind.toUpperCase()} signatures made in ${((performance.now() - started) / 1000).toFixed(1)} s)\n`);
    let dry = 0;
    headers = () => {
      const next = pool.pop();
      if (next !== undefined) return { authorization: next };
      if (dry++ === 0) process.stderr.write('  ! the pool of signed headers ran dry; signing live (raise BENCH_OAUTH1_*_POOL)\n');
      return { authorization: sign() };
    };
  }
  const proc = await startApplinks({ ...setup.copy(), APPLINKS_PORT: String(port) });
  return { pid: proc.pid, stop: proc.stop, spec: { url: `${base}${PATH}`, headers: fixed, dynamicHeaders: 'fixed' in authorization ? undefined : headers, check: seesUser } };
}

const configs: Configuration[] = [
  {
    name: 'bare proxy',
    start: async () => {
      const proc = await startBareProxy(upstream.url);
      return { pid: proc.pid, stop: proc.stop, spec: { url: `${proc.url}${PATH}` } };
    },
  },
  { name: 'gateway, Bearer API token', start: () => applinks({ fixed: `Bearer ${prepared.apiToken}` }) },
  { name: 'gateway, OAuth 1.0a RSA-SHA1', start: () => applinks({ kind: 'rsa', pool: RSA_POOL }) },
  { name: 'gateway, OAuth 1.0a HMAC-SHA1', start: () => applinks({ kind: 'hmac', pool: HMAC_POOL }) },
];

// BENCH_ONLY=<regex> runs a subset (the bare proxy and the API-token path always run: they are the baselines).
const only = process.env.BENCH_ONLY ? new RegExp(process.env.BENCH_ONLY) : undefined;
const selected = only ? configs.filter((c) => c.name === 'bare proxy' || c.name === 'gateway, Bearer API token' || only.test(c.name)) : configs;

try {
  const results = await interleave(selected, 'bare proxy');
  if (selected !== configs) process.exit(0);
  console.log('\nthe same runs, as ratios to the API-token path:');
  printTable(results, 'gateway, Bearer API token');
  const api = 'gateway, Bearer API token';
  printTargets(results, [
    { label: 'RSA-SHA1 vs bare proxy', name: 'gateway, OAuth 1.0a RSA-SHA1', versus: 'bare proxy', target: 0.45, unit: '%' },
    { label: 'HMAC-SHA1 vs bare proxy', name: 'gateway, OAuth 1.0a HMAC-SHA1', versus: 'bare proxy', target: 0.75, unit: '%' },
  ]);
  const rps = (name: string) => median((results.get(name) as RunResult[]).map((r) => r.rps));
  console.log(`(of the API-token path: RSA-SHA1 ${((rps('gateway, OAuth 1.0a RSA-SHA1') / rps(api)) * 100).toFixed(0)}%, HMAC-SHA1 ${((rps('gateway, OAuth 1.0a HMAC-SHA1') / rps(api)) * 100).toFixed(0)}%)`);
  const cpu = (name: string) => median((results.get(name) as RunResult[]).map((r) => r.cpuUsPerRequest));

  // The steadier figure behind the ratios: what authenticating one request costs in process
  // (pipeline, signature, replay store; caches warm), 50 requests at a time as from 50
  // connections, so the replay store commits in batches as it does under load.
  const { createAuthRequest } = (await import(`${ROOT}/dist/auth/request.js`)) as typeof import('../src/auth/request.js');
  const services = await createServices(loadConfig({ env: setup.env }), { logger: (await import('pino')).pino({ level: 'warn' }) });
  try {
    const base = 'http://127.0.0.1:8080';
    const cpuPerRequest = async (authorizations: string[]) => {
      const req = (authorization: string) => createAuthRequest({ method: 'GET', url: `${base}${PATH}`, headers: { authorization }, remoteAddress: '127.0.0.1', secure: false, connection: 'gateway' });
      const started = process.cpuUsage();
      for (let i = 0; i < authorizations.length; i += 50) {
        const batch = authorizations.slice(i, i + 50).map((a) => services.pipeline.authenticateForHost(req(a)));
        await Promise.all(batch);
      }
      const used = process.cpuUsage(started);
      return (used.user + used.system) / authorizations.length;
    };
    const signed = (kind: 'rsa' | 'hmac', n: number) => Array.from({ length: n }, signer(kind, base));
    const apiToken = Array.from({ length: 100_000 }, () => `Bearer ${prepared.apiToken}`);
    await cpuPerRequest(apiToken.slice(0, 20_000));
    await cpuPerRequest(signed('hmac', 20_000));
    const figures = {
      'API token': await cpuPerRequest(apiToken),
      'HMAC-SHA1': await cpuPerRequest(signed('hmac', 100_000)),
      'RSA-SHA1': await cpuPerRequest(signed('rsa', 10_000)),
    };
    console.log(
      `authentication in process, CPU per request: ${Object.entries(figures)
        .map(([name, us]) => `${name} ${us.toFixed(1)} µs`)
        .join(', ')} (bare proxy: ${cpu('bare proxy').toFixed(0)} µs/request of CPU)`,
    );
  } finally {
    await services.close();
  }
} finally {
  await upstream.stop();
  setup.cleanup();
}
