/**
 * Housekeeping on the embedded store: how long pruning many expired OAuth 2.0 grants and access
 * tokens holds the event loop (better-sqlite3 is synchronous, so every request of the process
 * waits meanwhile), as the service prunes (batches of PRUNE_BATCH rows) and, as the baseline in
 * the same run, as one DELETE per table did before. BENCH_PRUNE_ROWS sets how many of each.
 */
import { randomUUID } from 'node:crypto';
import { applinksEnv, ROOT } from './lib/index.js';

const { createServices } = (await import(`${ROOT}/dist/services/index.js`)) as typeof import('../src/services/index.js');
const { loadConfig } = (await import(`${ROOT}/dist/config/loader.js`)) as typeof import('../src/config/loader.js');
const { SYSTEM_ACTOR } = (await import(`${ROOT}/dist/services/audit.js`)) as typeof import('../src/services/audit.js');
const { oauth2Of } = (await import(`${ROOT}/dist/modules/oauth2/index.js`)) as typeof import('../src/modules/oauth2/index.js');
const { ClientManager } = (await import(`${ROOT}/dist/modules/oauth2/management.js`)) as typeof import('../src/modules/oauth2/management.js');
const { OAuth2Repository } = (await import(`${ROOT}/dist/modules/oauth2/repository.js`)) as typeof import('../src/modules/oauth2/repository.js');
const { hashToken, randomToken } = (await import(`${ROOT}/dist/crypto/tokens.js`)) as typeof import('../src/crypto/tokens.js');
const { PRUNE_BATCH } = (await import(`${ROOT}/dist/storage/repositories/common.js`)) as typeof import('../src/storage/repositories/common.js');

const ROWS = Number(process.env.BENCH_PRUNE_ROWS ?? 100_000);

/** A store holding ROWS expired grants, each with an expired access token; `prune` runs on it while a 1 ms timer measures the longest stall. */
async function measure(name: string, prune: (s: Awaited<ReturnType<typeof createServices>>) => Promise<number>): Promise<{ ms: number; stall: number }> {
  const setup = applinksEnv({});
  const s = await createServices(loadConfig({ env: setup.env }), { bootstrapAdmin: true, logger: (await import('pino')).pino({ level: 'warn' }) });
  try {
    const alice = await s.users.create({ username: 'alice', password: 'alice-password-1' }, SYSTEM_ACTOR);
    const { client } = await new ClientManager(s, oauth2Of(s)).create({ name: 'Web app', redirectUris: ['https://app.example/cb'], scopes: ['READ'] }, SYSTEM_ACTOR);
    const now = Date.now();
    await s.store.transaction(async (_repos, trx) => {
      const repo = new OAuth2Repository(trx);
      for (let i = 0; i < ROWS; i++) {
        const grantId = randomUUID();
        const common = { linkId: client.linkId, userId: alice.id, clientId: client.clientId, createdAt: now - 10_000, expiresAt: now - 1000 };
        await repo.insertGrant({ id: grantId, ...common, scopes: ['READ'], redirectUri: 'https://app.example/cb', refreshGeneration: 0, version: 0, lastUsedAt: now - 10_000 });
        await repo.insertToken({ tokenHash: hashToken(randomToken('alat_')), ...common, scopes: ['READ'], kind: 'access', grantId, generation: 0, replacedAt: null });
      }
    });
    let stall = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const t = performance.now();
      stall = Math.max(stall, t - last);
      last = t;
    }, 1);
    await new Promise((r) => setTimeout(r, 50));
    stall = 0;
    last = performance.now();
    const started = performance.now();
    const deleted = await prune(s);
    const ms = performance.now() - started;
    await new Promise((r) => setTimeout(r, 20));
    clearInterval(timer);
    console.log(`${name.padEnd(34)} ${deleted} rows in ${ms.toFixed(0).padStart(5)} ms; longest event-loop stall ${stall.toFixed(0).padStart(5)} ms`);
    return { ms, stall };
  } finally {
    await s.close();
    setup.cleanup();
  }
}

const single = await measure('one DELETE per table (before)', async (s) => {
  const db = s.store.db as unknown as import('kysely').Kysely<Record<string, { expires_at: number }>>;
  const now = Date.now();
  let n = 0;
  for (const table of ['oauth2_tokens', 'oauth2_grants']) n += Number((await db.deleteFrom(table).where('expires_at', '<=', now).executeTakeFirst()).numDeletedRows);
  return n;
});
const batched = await measure(`the service's prune (${PRUNE_BATCH} a batch)`, (s) => oauth2Of(s).prune());
console.log(`\nlongest stall ${(batched.stall / single.stall).toFixed(2)}× the single DELETE's; whole prune ${(batched.ms / single.ms).toFixed(2)}× as long (it runs in the background)`);
