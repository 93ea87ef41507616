import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UniqueViolation } from '../../src/storage/repositories/common.js';
import { Store } from '../../src/storage/store.js';
import { DIALECTS, testStore, type TestStore } from '../helpers/harness.js';
import { migrations } from '../../src/storage/migrations/index.js';

/** The repository contracts written in src/storage/repositories, held by both engines. */
describe.each(DIALECTS)('store contracts on %s', (dialect) => {
  let where: TestStore;
  let store: Store;
  const open = () => Store.open(where.databaseUrl, where.schema ? { schema: where.schema, poolSize: 4 } : {});

  beforeEach(async () => {
    where = testStore(dialect);
    store = await open();
  });
  afterEach(async () => {
    await store.close();
    await where.drop();
  });

  const user = (id: string, username: string) => ({ id, username, displayName: username, email: null, passwordHash: null, isAdmin: false, disabled: false, groups: ['g1', 'g2'], now: 1 });

  it('migrates once when several instances start together, and refuses a store from a newer version', async () => {
    const others = await Promise.all([open(), open(), open()]);
    await Promise.all(others.map((s) => s.close()));
    const rows = (await sql<{ name: string }>`select name from applinks_migrations`.execute(store.db)).rows;
    expect(rows.map((r) => r.name).sort()).toEqual(Object.keys(migrations).sort());
    await sql`insert into applinks_migrations (name, applied_at) values ('9999-future', 0)`.execute(store.db);
    await expect(open()).rejects.toThrow(/migrated by a newer applinks \(9999-future\)/);
  });

  it('keeps usernames and link names unique regardless of case', async () => {
    await store.users.create(user('u1', 'Alice'));
    await expect(store.users.create(user('u2', 'alice'))).rejects.toBeInstanceOf(UniqueViolation);
    expect((await store.users.findByUsername('ALICE'))?.groups).toEqual(['g1', 'g2']);
    await store.links.create({ id: 'l1', name: 'Jira', url: null, applicationType: 'jira', remoteApplicationId: null, createdAt: 1, updatedAt: 1 });
    await expect(store.links.create({ id: 'l2', name: 'JIRA', url: null, applicationType: 'jira', remoteApplicationId: null, createdAt: 1, updatedAt: 1 })).rejects.toBeInstanceOf(UniqueViolation);
  });

  it('deletes what belongs to a user or a link with it', async () => {
    await store.users.create(user('u1', 'bob'));
    await store.links.create({ id: 'l1', name: 'L', url: null, applicationType: 'generic', remoteApplicationId: null, createdAt: 1, updatedAt: 1 });
    await store.apiTokens.create({ id: 't1', userId: 'u1', name: 'a', tokenHash: 'h1', createdAt: 1, expiresAt: null, lastUsedAt: null, linkId: null });
    await store.apiTokens.create({ id: 't2', userId: 'u1', name: 'b', tokenHash: 'h2', createdAt: 1, expiresAt: null, lastUsedAt: null, linkId: 'l1' });
    await store.sessions.create({ idHash: 's1', userId: 'u1', createdAt: 1, expiresAt: 2, address: null, userAgent: null });
    await store.links.upsertAuth({ linkId: 'l1', direction: 'incoming', type: 'x', config: {}, secretsSealed: null, lookupKey: 'k', createdAt: 1, updatedAt: 1 });
    await store.links.delete('l1');
    expect(await store.apiTokens.findById('t2')).toBeUndefined();
    expect(await store.apiTokens.findById('t1')).toBeDefined();
    expect(await store.links.listAllAuth()).toEqual([]);
    await store.users.delete('u1');
    expect(await store.apiTokens.findById('t1')).toBeUndefined();
    expect(await store.sessions.find('s1')).toBeUndefined();
  });

  it('counts concurrent throttle hits exactly, and restarts the window when it has passed', async () => {
    const hits = await Promise.all(Array.from({ length: 20 }, () => store.throttle.hit('k', 1000, 60_000)));
    expect(hits.map((h) => h.count).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(await store.throttle.hit('k', 61_000, 60_000)).toEqual({ count: 1, windowStart: 61_000 });
  });

  it('agrees on one value for getOrCreate under concurrency', async () => {
    const values = await Promise.all(['a', 'b', 'c', 'd'].map((v) => store.meta.getOrCreate('id', v)));
    expect(new Set(values).size).toBe(1);
  });

  it('rolls a transaction back whole', async () => {
    await expect(
      store.transaction(async (repos) => {
        await repos.users.create(user('u9', 'carol'));
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(await store.users.findByUsername('carol')).toBeUndefined();
  });

  it('records last use without moving it backwards', async () => {
    await store.users.create(user('u1', 'dave'));
    await store.apiTokens.create({ id: 't1', userId: 'u1', name: 'a', tokenHash: 'h1', createdAt: 1, expiresAt: null, lastUsedAt: null, linkId: null });
    await store.apiTokens.touch(new Map([['t1', 500]]));
    await store.apiTokens.touch(new Map([['t1', 300]]));
    expect((await store.apiTokens.findById('t1'))?.lastUsedAt).toBe(500);
  });
});
