import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import pg from 'pg';
import { Writable } from 'node:stream';
import { loadConfig } from '../../src/config/loader.js';
import type { Config, ConfigKeyName } from '../../src/config/schema.js';
import { buildApp } from '../../src/server/app.js';
import { createLogger } from '../../src/server/logger.js';
import { createServices, type Services } from '../../src/services/index.js';
import { SYSTEM_ACTOR } from '../../src/services/audit.js';
import { ManualClock } from '../../src/util/clock.js';

export type DialectName = 'sqlite' | 'postgres';
export const DIALECTS: DialectName[] = ['sqlite', 'postgres'];

export const ADMIN_PASSWORD = 'admin-password-1';

/** A store location for one test: a fresh SQLite file, or a fresh schema in the test PostgreSQL. */
export interface TestStore {
  databaseUrl: string;
  schema: string | undefined;
  dataDir: string;
  drop(): Promise<void>;
}

export function testStore(dialect: DialectName): TestStore {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'applinks-test-'));
  if (dialect === 'sqlite') {
    return { databaseUrl: `sqlite:${path.join(dataDir, 'applinks.db')}`, schema: undefined, dataDir, drop: async () => rmSync(dataDir, { recursive: true, force: true }) };
  }
  const url = process.env.APPLINKS_TEST_DATABASE_URL!;
  const schema = `t_${randomBytes(6).toString('hex')}`;
  return {
    databaseUrl: url,
    schema,
    dataDir,
    drop: async () => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      await client.query(`drop schema if exists ${schema} cascade`);
      await client.end();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface Harness {
  config: Config;
  services: Services;
  app: FastifyInstance;
  clock: ManualClock;
  store: TestStore;
  /** Everything the server logged, one JSON object per line. */
  logs: string[];
  inject: FastifyInstance['inject'];
  /** A Basic header for the bootstrap admin. */
  adminBasic: string;
  close(): Promise<void>;
}

export interface HarnessOptions {
  config?: Partial<Record<ConfigKeyName, unknown>>;
  clock?: ManualClock;
  /** Share a store with another harness (two instances on one database). */
  store?: TestStore;
  /** Reuse a master key (instances sharing a store must). */
  masterKey?: string;
  /**
   * Run as a registered serving instance (as `applinks serve` does, with a heartbeat every 250 ms,
   * so that tests may judge liveness in a second): follow the key file and
   * report the master keys held, so `keys rotate` waits for it and `keys prune` checks it.
   */
  instance?: boolean;
}

/** A whole server in process, on a fresh store of the given dialect, with a bootstrap admin. */
export async function createHarness(dialect: DialectName, options: HarnessOptions = {}): Promise<Harness> {
  const store = options.store ?? testStore(dialect);
  const clock = options.clock ?? new ManualClock(Date.now());
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir: store.dataDir,
      databaseUrl: store.databaseUrl,
      adminPassword: ADMIN_PASSWORD,
      baseUrl: 'http://applinks.test',
      logLevel: 'debug',
      ...(options.masterKey ? { masterKey: options.masterKey } : {}),
      ...options.config,
    },
  });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logs.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  const services = await createServices(config, {
    clock,
    logger: createLogger(config, sink),
    bootstrapAdmin: true,
    ...(options.instance ? { instance: true, instanceTiming: { keyPollMs: 100, heartbeatMs: 250 } } : {}),
    ...(store.schema ? { storeOptions: { schema: store.schema, poolSize: 4 } } : {}),
  });
  const app = await buildApp(services);
  await app.ready();
  return {
    config,
    services,
    app,
    clock,
    store,
    logs,
    inject: app.inject.bind(app),
    adminBasic: basic('admin', ADMIN_PASSWORD),
    async close() {
      await app.close();
      await services.close();
      if (!options.store) await store.drop();
    },
  };
}

export function basic(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

/** Creates a user and answers it with an API token of theirs. */
export async function userWithToken(h: Harness, username: string, extra: { isAdmin?: boolean; password?: string } = {}) {
  const user = await h.services.users.create({ username, password: extra.password ?? `${username}-password`, isAdmin: extra.isAdmin ?? false }, SYSTEM_ACTOR);
  const { token } = await h.services.apiTokens.create(user.id, { name: 'test', expiresAt: null }, SYSTEM_ACTOR);
  return { user, token, bearer: `Bearer ${token}` };
}

export function json<T = Record<string, unknown>>(res: LightMyRequestResponse): T {
  return JSON.parse(res.body) as T;
}

export type LinkJson = { id: string; name: string; outgoing: Array<{ type: string; secretsSet: string[]; warnings: string[] }> };

/** Creates a link through the API whose outgoing side holds a Basic password: a secret sealed at rest. */
export async function createBasicLink(h: Harness, name: string, password: string): Promise<LinkJson> {
  const res = await h.inject({
    method: 'POST',
    url: '/api/v1/links',
    headers: { authorization: h.adminBasic },
    payload: { name, url: `https://${name.toLowerCase()}.example`, outgoing: { basic: { username: 'svc', password } } },
  });
  if (res.statusCode !== 201) throw new Error(`creating link ${name}: ${res.statusCode} ${res.body}`);
  return json<LinkJson>(res);
}
