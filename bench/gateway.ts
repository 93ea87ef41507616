/**
 * Issue 2's gateway benchmark: requests/s, p99 and CPU µs/request through the gateway to a
 * trivial upstream with no credential, with a Bearer API token and with Basic password, as
 * ratios to a bare proxy (node:http + undici Pool) to the same upstream in the same run; and the
 * server's resident memory after 100,000 requests.
 * Targets: API token ≥ 85% of the bare proxy, Basic password ≥ 70%, memory flat after warm-up.
 */
import autocannon from 'autocannon';
import { applinksEnv, freePort, interleave, rssMb, startApplinks, startBareProxy, startUpstream, ROOT, type Configuration } from './lib/index.js';

const { createServices } = (await import(`${ROOT}/dist/services/index.js`)) as typeof import('../src/services/index.js');
const { loadConfig } = (await import(`${ROOT}/dist/config/loader.js`)) as typeof import('../src/config/loader.js');
const { SYSTEM_ACTOR } = (await import(`${ROOT}/dist/services/audit.js`)) as typeof import('../src/services/audit.js');

const USER = 'bench-user';
const PASSWORD = 'bench-user-password';

/** A data directory with a user and an API token, prepared before the server starts. */
async function prepared(upstream: string) {
  const setup = applinksEnv({ APPLINKS_UPSTREAM_URL: upstream });
  const config = loadConfig({ env: setup.env });
  const services = await createServices(config, { bootstrapAdmin: true, logger: (await import('pino')).pino({ level: 'warn' }) });
  const user = await services.users.create({ username: USER, password: PASSWORD }, SYSTEM_ACTOR);
  const { token } = await services.apiTokens.create(user.id, { name: 'bench', expiresAt: null }, SYSTEM_ACTOR);
  await services.close();
  return { setup, token };
}

const upstream = await startUpstream();
const { setup, token } = await prepared(upstream.url);
const basic = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
const seesUser = (expected: string) => (res: { headers: Record<string, unknown> }) => {
  if (res.headers['x-seen-user'] !== expected) throw new Error(`upstream saw user "${String(res.headers['x-seen-user'])}", expected "${expected}"`);
};

async function applinks(headers: Record<string, string>, user: string) {
  const port = await freePort();
  const proc = await startApplinks({ ...setup.env, APPLINKS_PORT: String(port) });
  return { pid: proc.pid, stop: proc.stop, spec: { url: `${proc.url}/rest/api/2/issue/BENCH-1`, headers, check: seesUser(user) } };
}

const configs: Configuration[] = [
  {
    name: 'bare proxy',
    start: async () => {
      const proc = await startBareProxy(upstream.url);
      return { pid: proc.pid, stop: proc.stop, spec: { url: `${proc.url}/rest/api/2/issue/BENCH-1` } };
    },
  },
  { name: 'gateway, no credential', start: () => applinks({}, '') },
  { name: 'gateway, Bearer API token', start: () => applinks({ authorization: `Bearer ${token}` }, USER) },
  { name: 'gateway, Basic password', start: () => applinks({ authorization: basic }, USER) },
];

try {
  await interleave(configs, 'bare proxy');

  // Memory: resident size after warm-up and after 100,000 more requests on the API-token path.
  const run = await applinks({ authorization: `Bearer ${token}` }, USER);
  const fire = (amount: number) =>
    new Promise<void>((resolve, reject) =>
      autocannon({ url: run.spec.url, connections: 50, amount, headers: run.spec.headers }, (e, r) => (e ? reject(e) : r.non2xx ? reject(new Error(`${r.non2xx} non-2xx`)) : resolve())),
    );
  await fire(20_000);
  const warm = rssMb(run.pid);
  await fire(100_000);
  const after = rssMb(run.pid);
  await fire(100_000);
  const after2 = rssMb(run.pid);
  await run.stop();
  console.log(`\nresident memory (API-token path): ${warm.toFixed(1)} MB after 20k warm-up, ${after.toFixed(1)} MB after +100k requests, ${after2.toFixed(1)} MB after +200k (${(((after2 - warm) / warm) * 100).toFixed(1)}% over warm-up)`);
} finally {
  await upstream.stop();
  setup.cleanup();
}
