import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { Keyring } from '../../src/crypto/keyring.js';
import { createLogger } from '../../src/server/logger.js';
import { createServices, type Services } from '../../src/services/index.js';
import { KEY_LEASE, KeyRotationRefused, pruneMasterKeys, rotateMasterKey } from '../../src/services/key-rotation.js';
import { LeaseBusy } from '../../src/services/leases.js';
import { readKeyFile } from '../../src/services/master-key.js';
import { sealContext } from '../../src/services/links.js';
import type { LeaseRecord } from '../../src/storage/repositories/leases.js';
import { processScope } from '../../src/util/process-scope.js';
import { createBasicLink, createHarness, DIALECTS, json, type Harness, type LinkJson } from '../helpers/harness.js';

const SECRET = 'lease-planted-password-7c2a';
const FAST = { pollMs: 50, waitMs: 10_000 };
const BUSY = /nothing changed: keys (rotate|prune) by .+ on .+ \(pid \d+\) holds the store's master-keys lease, since \d{4}-\d\d-\d\dT[\d:.]+Z\. One such operation runs at a time\..*--wait-for-lease/s;

/** `applinks keys …` in another process: its own services on the same store and data directory. */
async function cliProcess(h: Harness): Promise<Services> {
  const sink = new Writable({ write: (_c, _e, done) => done() });
  return createServices(h.config, { logger: createLogger({ logLevel: 'warn' }, sink), ...(h.store.schema ? { storeOptions: { schema: h.store.schema, poolSize: 2 } } : {}) });
}

const keyFile = (h: Harness) => path.join(h.config.dataDir, 'master.key');

/** A pid that no process has any more (a child that already exited). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '']);
  return r.pid!;
}

/** A lease row left by a holder that crashed (on another machine unless `scope` says otherwise). */
function crashedLease(over: Partial<LeaseRecord> = {}): LeaseRecord {
  const now = Date.now();
  return { name: KEY_LEASE, holder: 'crashed-holder', owner: 'keys rotate by ghost', host: 'elsewhere.example', pid: 4242, scope: 'another-machine', acquiredAt: now - 60_000, expiresAt: now + 60_000, ...over };
}

describe.each(DIALECTS)('one key operation at a time on %s', (dialect) => {
  const open: Array<{ close(): Promise<void> }> = [];
  afterEach(async () => {
    for (const x of open.splice(0).reverse()) await x.close();
  });
  const track = <T extends { close(): Promise<void> }>(x: T): T => {
    open.push(x);
    return x;
  };

  /** Every link's password still opens with the key file as it is now, and the server lists it. */
  async function secretsOpen(h: Harness, ids: string[]): Promise<void> {
    const keyring = new Keyring(readKeyFile(keyFile(h)));
    for (const id of ids) {
      const [auth] = await h.services.store.links.listAuth(id);
      expect(keyring.open(auth!.secretsSealed!, sealContext(id, 'outgoing', 'basic'))).toContain(SECRET);
    }
    const list = await h.inject({ url: '/api/v1/links', headers: { authorization: h.adminBasic } });
    for (const l of json<{ links: LinkJson[] }>(list).links) {
      expect(l.outgoing[0]!.secretsSet).toEqual(['password']);
      expect(l.outgoing[0]!.warnings.join()).not.toMatch(/cannot be opened/);
    }
  }

  it('two rotations at once: one proceeds, the other is refused naming the holder, and the secrets still open', async () => {
    const h = track(await createHarness(dialect, { instance: true }));
    const link = await createBasicLink(h, 'Raced', SECRET);
    const before = readKeyFile(keyFile(h));
    const [a, b] = [track(await cliProcess(h)), track(await cliProcess(h))];

    const results = await Promise.allSettled([rotateMasterKey(a, FAST), rotateMasterKey(b, FAST)]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(lost[0]!.reason).toBeInstanceOf(LeaseBusy);
    expect((lost[0]!.reason as Error).message).toMatch(BUSY);
    expect((lost[0]!.reason as Error).message).toContain(`on ${hostname()} (pid ${process.pid})`);

    // Exactly one new key, sealing; the old one kept; every secret under the new key.
    const kid = (won[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof rotateMasterKey>>>).value.kid;
    expect(readKeyFile(keyFile(h)).map((k) => Keyring.kidOf(k))).toEqual([kid, ...before.map((k) => Keyring.kidOf(k))]);
    expect((await a.keys.countSealed()).every((c) => c.kid === kid)).toBe(true);
    expect(h.services.keyring.currentKid).toBe(kid);
    // The lease is released: prune goes through, and the link still opens.
    expect(await a.store.leases.get(KEY_LEASE)).toBeUndefined();
    expect(await pruneMasterKeys(b, FAST)).toMatchObject({ removed: true });
    await secretsOpen(h, [link.id]);
  });

  it('a rotation keeps its lease while it waits (renewed), so a prune meanwhile is refused', async () => {
    const h = track(await createHarness(dialect, { instance: true }));
    // An instance that cannot load the new key: the rotation waits for it, longer than the lease lasts unrenewed.
    track(await createHarness(dialect, { store: h.store, instance: true, masterKey: readKeyFile(keyFile(h))[0]!.toString('base64') }));
    const [a, b] = [track(await cliProcess(h)), track(await cliProcess(h))];
    const lease = { ttlMs: 300, renewMs: 50 };
    const rotating = rotateMasterKey(a, { ...FAST, waitMs: 1200, lease }).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 800));
    const refused = await pruneMasterKeys(b, { ...FAST, lease }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(LeaseBusy);
    expect((refused as Error).message).toMatch(/keys rotate by .* holds the store's master-keys lease/);
    expect(await rotating).toBeInstanceOf(KeyRotationRefused);
    // Released on failure too.
    expect(await a.store.leases.get(KEY_LEASE)).toBeUndefined();
  });

  it('a lease whose holder crashed is taken over once it lapses, and at once when its process is seen gone', async () => {
    const h = track(await createHarness(dialect));
    const link = await createBasicLink(h, 'Stale', SECRET);
    const cli = track(await cliProcess(h));

    // On another machine: refused while it lasts, naming it.
    expect(await cli.store.leases.acquire(crashedLease({ expiresAt: Date.now() + 1500 }), Date.now())).toBe(true);
    const refused = await rotateMasterKey(cli, FAST).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(LeaseBusy);
    expect((refused as Error).message).toMatch(BUSY);
    expect((refused as Error).message).toContain('keys rotate by ghost on elsewhere.example (pid 4242)');
    // Waiting for it: taken over once it lapsed.
    const progress: string[] = [];
    const started = Date.now();
    const rotated = await rotateMasterKey(cli, { ...FAST, leaseWaitMs: 10_000, lease: { pollMs: 50 }, progress: (l) => progress.push(l) });
    expect(Date.now() - started).toBeLessThan(5000);
    expect(progress[0]).toMatch(/waiting up to 10 s for keys rotate by ghost on elsewhere\.example/);
    expect(readKeyFile(keyFile(h)).map((k) => Keyring.kidOf(k))[0]).toBe(rotated.kid);
    await secretsOpen(h, [link.id]);

    if (processScope() === undefined) return; // not Linux: only expiry tells
    // On this machine, its process gone: no need to wait for the expiry.
    expect(await cli.store.leases.acquire(crashedLease({ holder: 'crashed-here', host: hostname(), pid: deadPid(), scope: processScope(), expiresAt: Date.now() + 600_000 }), Date.now())).toBe(true);
    const lines: string[] = [];
    expect(await pruneMasterKeys(cli, { ...FAST, progress: (l) => lines.push(l) })).toMatchObject({ removed: true });
    expect(lines.join('\n')).toMatch(/taking over the master-keys lease of keys rotate by ghost .*: that process has exited/);
    await secretsOpen(h, [link.id]);
  });

  it('an instance killed without deregistering: not waited for when its process is seen gone, and named while waited for', async () => {
    const h = track(await createHarness(dialect, { instance: true }));
    const link = await createBasicLink(h, 'Killed', SECRET);
    const cli = track(await cliProcess(h));
    const kid = h.services.keyring.currentKid;
    const ghost = { host: hostname(), keySource: 'file' as const, sealingKid: kid, kids: [kid], startedAt: Date.now() - 60_000, seenAt: Date.now() };

    if (processScope() !== undefined) {
      // Killed on this machine a moment ago (its last heartbeat is fresh): its row goes, nothing waits.
      await h.services.store.instances.report({ ...ghost, id: 'killed-here', pid: deadPid(), scope: processScope() });
      const started = Date.now();
      expect(await rotateMasterKey(cli, FAST)).toMatchObject({ instances: 1 });
      expect(Date.now() - started).toBeLessThan(3000);
      expect((await h.services.store.instances.list()).map((i) => i.id)).not.toContain('killed-here');
    }

    // Killed on another machine: waited for, by name, until it is not heard from for liveMs.
    // Its last heartbeat just now (not when `ghost` was made: the rotation above may have taken longer than liveMs).
    await h.services.store.instances.report({ ...ghost, seenAt: Date.now(), sealingKid: h.services.keyring.currentKid, kids: h.services.keyring.kids, id: 'killed-elsewhere', host: 'other.example', pid: 4242, scope: 'another-machine' });
    const progress: string[] = [];
    const rotated = await rotateMasterKey(cli, { ...FAST, liveMs: 1000, progress: (l) => progress.push(l) });
    expect(rotated.instances).toBe(2);
    expect(progress.join('\n')).toMatch(/waiting for other\.example pid 4242 to load key \S+ \(up to 10 s; an instance not heard from for 1 s counts as stopped/);
    expect(h.services.keyring.currentKid).toBe(rotated.kid);
    await secretsOpen(h, [link.id]);
  });
});
