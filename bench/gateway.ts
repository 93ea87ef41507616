/**
 * Issue 2's gateway benchmark: requests/s, p99 and CPU µs/request through the gateway to a
 * trivial upstream with no credential, with a Bearer API token and with Basic password, as
 * ratios to a bare proxy (node:http + undici Pool) to the same upstream in the same run; and the
 * server's resident memory after 100,000 requests, and its live heap after those and after
 * 400,000 more (resident size alone is V8's sawtooth, not a leak).
 * Targets: API token ≥ 85% of the bare proxy, Basic password ≥ 70%, memory flat after warm-up.
 * A reference line, the bare proxy adding the same identity headers, shows how much of the
 * difference is the gateway contract's headers rather than authentication.
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { applinksEnv, freePort, interleave, printTargets, rssMb, startApplinks, startBareProxy, startUpstream, ROOT, type Configuration } from './lib/index.js';

const { createServices } = (await import(`${ROOT}/dist/services/index.js`)) as typeof import('../src/services/index.js');
const { loadConfig } = (await import(`${ROOT}/dist/config/loader.js`)) as typeof import('../src/config/loader.js');
const { SYSTEM_ACTOR } = (await import(`${ROOT}/dist/services/audit.js`)) as typeof import('../src/services/audit.js');
const { toPrincipalUser } = (await import(`${ROOT}/dist/services/users.js`)) as typeof import('../src/services/users.js');

const USER = 'bench-user';
const PASSWORD = 'bench-user-password';

/** A data directory with a user and an API token, prepared before the server starts. */
async function prepared(upstream: string) {
  const setup = applinksEnv({ APPLINKS_UPSTREAM_URL: upstream });
  const config = loadConfig({ env: setup.env });
  const services = await createServices(config, { bootstrapAdmin: true, logger: (await import('pino')).pino({ level: 'warn' }) });
  const user = await services.users.create({ username: USER, password: PASSWORD }, SYSTEM_ACTOR);
  const { token } = await services.apiTokens.create(user.id, { name: 'bench', expiresAt: null }, SYSTEM_ACTOR);
  // What the gateway adds to a request of this user with this token, for the reference configuration.
  const assertion = await services.assertions.assertion({ user: toPrincipalUser(user), link: null, authType: 'api-token', scopes: null, connection: 'gateway', warnings: [] });
  const identity = {
    'x-applinks-auth': 'api-token',
    'x-applinks-user': USER,
    'x-applinks-assertion': assertion,
    'x-forwarded-for': '127.0.0.1',
    'x-forwarded-proto': 'http',
    'x-forwarded-host': '127.0.0.1:8080',
  };
  await services.close();
  return { setup, token, identity };
}

const upstream = await startUpstream();
const { setup, token, identity } = await prepared(upstream.url);
const basic = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
const seesUser = (expected: string) => (res: { headers: Record<string, unknown> }) => {
  if (res.headers['x-seen-user'] !== expected) throw new Error(`upstream saw user "${String(res.headers['x-seen-user'])}", expected "${expected}"`);
};

async function applinks(headers: Record<string, string>, user: string, env: Record<string, string> = {}) {
  const port = await freePort();
  const proc = await startApplinks({ ...setup.copy(), ...env, APPLINKS_PORT: String(port) });
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
  {
    // Not a target: the bare proxy sending the identity headers the gateway sends for the API
    // token (the assertion, X-Forwarded-*), computed once. What that costs is the contract's.
    name: 'bare proxy + identity headers',
    start: async () => {
      const proc = await startBareProxy(upstream.url, undefined, identity);
      return { pid: proc.pid, stop: proc.stop, spec: { url: `${proc.url}/rest/api/2/issue/BENCH-1`, check: seesUser(USER) } };
    },
  },
  { name: 'gateway, no credential', start: () => applinks({}, '') },
  { name: 'gateway, Bearer API token', start: () => applinks({ authorization: `Bearer ${token}` }, USER) },
  { name: 'gateway, Basic password', start: () => applinks({ authorization: basic }, USER) },
];

// BENCH_ONLY=<regex> runs a subset (the bare proxy always runs: it is the baseline) and skips the memory run.
const only = process.env.BENCH_ONLY ? new RegExp(process.env.BENCH_ONLY) : undefined;
const selected = only ? configs.filter((c) => c.name === 'bare proxy' || only.test(c.name)) : configs;

try {
  const results = await interleave(selected, 'bare proxy');
  if (selected !== configs) process.exit(0);
  printTargets(results, [
    { label: 'gateway, Bearer API token vs bare proxy', name: 'gateway, Bearer API token', versus: 'bare proxy', target: 0.85, unit: '%' },
    { label: 'gateway, Basic password vs bare proxy', name: 'gateway, Basic password', versus: 'bare proxy', target: 0.7, unit: '%' },
  ]);

  // Memory on the API-token path: resident size after warm-up and after 100,000 requests, and
  // the live heap (the size of a heap snapshot, which collects everything unreachable first)
  // after those 100,000 and after 400,000 more. V8 lets old space grow with the live heap before
  // a full collection, so resident size alone is a sawtooth; the live heap tells a leak.
  const snapshots = mkdtempSync(path.join(tmpdir(), 'applinks-heap-'));
  const run = await applinks({ authorization: `Bearer ${token}` }, USER, { NODE_OPTIONS: `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${snapshots}` });
  const fire = (amount: number) =>
    new Promise<void>((resolve, reject) =>
      autocannon({ url: run.spec.url, connections: 50, amount, headers: run.spec.headers }, (e, r) => (e ? reject(e) : r.non2xx ? reject(new Error(`${r.non2xx} non-2xx`)) : resolve())),
    );
  const liveHeapMb = async () => {
    const before = new Set(readdirSync(snapshots));
    process.kill(run.pid, 'SIGUSR2');
    for (let i = 0; i < 600; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const file = readdirSync(snapshots).find((f) => !before.has(f));
      // Written when the size stops changing.
      if (file) {
        const size = statSync(path.join(snapshots, file)).size;
        await new Promise((r) => setTimeout(r, 1000));
        if (statSync(path.join(snapshots, file)).size === size && size > 0) {
          rmSync(path.join(snapshots, file));
          return size / 1_048_576;
        }
      }
    }
    throw new Error('no heap snapshot was written');
  };
  try {
    await fire(20_000);
    const warm = rssMb(run.pid);
    await fire(100_000);
    const after100k = rssMb(run.pid);
    // Snapshots after the resident figures: writing one grows the resident size by itself.
    const heap100k = await liveHeapMb();
    await fire(400_000);
    const heap500k = await liveHeapMb();
    const pct = (a: number, b: number) => `${a >= b ? '+' : ''}${(((a - b) / b) * 100).toFixed(0)}%`;
    console.log(`\nresident memory (API-token path): ${warm.toFixed(1)} MB after 20k warm-up, ${after100k.toFixed(1)} MB after +100k requests (${pct(after100k, warm)})`);
    console.log(`live heap (heap snapshot size): ${heap100k.toFixed(1)} MB after 100k, ${heap500k.toFixed(1)} MB after 400k more (${pct(heap500k, heap100k)}): ${heap500k <= heap100k * 1.05 ? 'flat' : 'GROWING'}`);
  } finally {
    await run.stop();
    rmSync(snapshots, { recursive: true, force: true });
  }
} finally {
  await upstream.stop();
  setup.cleanup();
}
