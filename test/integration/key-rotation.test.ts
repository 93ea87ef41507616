import path from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { Keyring } from '../../src/crypto/keyring.js';
import { createLogger } from '../../src/server/logger.js';
import { createServices, type Services } from '../../src/services/index.js';
import { KeyRotationRefused, pruneMasterKeys, rotateMasterKey } from '../../src/services/key-rotation.js';
import { readKeyFile } from '../../src/services/master-key.js';
import { sealContext } from '../../src/services/links.js';
import { createBasicLink, createHarness, DIALECTS, json, testStore, type Harness, type LinkJson } from '../helpers/harness.js';

const SECRET = 'rotation-planted-password-5d1e';
const FAST = { pollMs: 50, waitMs: 10_000 };


/**
 * What `applinks keys …` is: another process on the same store and data directory, with its own
 * keyring (from the key file, or from APPLINKS_MASTER_KEY when `masterKey` is given).
 */
async function cliProcess(h: Harness, masterKey?: string): Promise<Services> {
  const sink = new Writable({ write: (_c, _e, done) => done() });
  return createServices(
    { ...h.config, masterKey: masterKey ? masterKey.split(',') : h.config.masterKey },
    { logger: createLogger({ logLevel: 'warn' }, sink), ...(h.store.schema ? { storeOptions: { schema: h.store.schema, poolSize: 2 } } : {}) },
  );
}

const createLink = (h: Harness, name: string, password = SECRET) => createBasicLink(h, name, password);

const keyFile = (h: Harness) => path.join(h.config.dataDir, 'master.key');
const b64 = (key: Buffer) => key.toString('base64');

describe.each(DIALECTS)('master-key rotation on %s', (dialect) => {
  const open: Array<{ close(): Promise<void> }> = [];
  afterEach(async () => {
    // Later ones first: extra harnesses share the first one's store, which it drops.
    for (const x of open.splice(0).reverse()) await x.close();
  });
  const track = <T extends { close(): Promise<void> }>(x: T): T => {
    open.push(x);
    return x;
  };
  /** Stops one early (an instance going away), keeping the others for afterEach. */
  const stop = async (x: { close(): Promise<void> }) => {
    open.splice(open.indexOf(x), 1);
    await x.close();
  };

  it('a running instance adopts the rotated key, so after prune what it seals next still opens', async () => {
    const h = track(await createHarness(dialect, { instance: true }));
    const before = await createLink(h, 'Before');
    const oldKid = h.services.keyring.currentKid;

    const cli = track(await cliProcess(h));
    const rotated = await rotateMasterKey(cli, FAST);
    expect(rotated.instances).toBe(1);
    expect(rotated.oldKids).toEqual([oldKid]);
    expect(rotated.report.resealed).toBeGreaterThanOrEqual(2); // the link's password, the installation secret
    expect(rotated.report.unreadable).toEqual([]);
    // The running instance loaded the key before anything was sealed under it, and seals with it.
    expect(h.services.keyring.currentKid).toBe(rotated.kid);
    expect((await h.services.store.instances.list()).map((i) => i.sealingKid)).toEqual([rotated.kid]);

    const pruned = await pruneMasterKeys(cli, FAST);
    expect(pruned).toMatchObject({ removed: true, removable: [oldKid], orphans: [] });
    expect(readKeyFile(keyFile(h)).map((k) => Keyring.kidOf(k))).toEqual([rotated.kid]);

    // A secret the running instance seals now opens with what is left of the key file.
    const after = await createLink(h, 'After');
    const fresh = new Keyring(readKeyFile(keyFile(h)));
    for (const link of [before, after]) {
      const [auth] = await h.services.store.links.listAuth(link.id);
      expect(fresh.open(auth!.secretsSealed!, sealContext(link.id, 'outgoing', 'basic'))).toContain(SECRET);
    }
    // And a restarted instance lists and uses them.
    const restarted = track(await createHarness(dialect, { store: h.store }));
    const list = await restarted.inject({ url: '/api/v1/links', headers: { authorization: h.adminBasic } });
    expect(list.statusCode).toBe(200);
    expect(json<{ links: LinkJson[] }>(list).links.map((l) => l.outgoing[0]!.secretsSet)).toEqual([['password'], ['password']]);
    expect(list.body).not.toContain(SECRET);
  });

  it('an instance that cannot load the new key stops the rotation, and the key file stays as it was', async () => {
    const h = track(await createHarness(dialect, { instance: true }));
    await createLink(h, 'Kept');
    // A second instance on the same store whose keys come from elsewhere (its own variable).
    const current = readKeyFile(keyFile(h));
    const other = track(await createHarness(dialect, { store: h.store, instance: true, masterKey: b64(current[0]!) }));
    const cli = track(await cliProcess(h));
    const refused = await rotateMasterKey(cli, { ...FAST, waitMs: 500 }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(KeyRotationRefused);
    expect((refused as Error).message).toMatch(/did not load key .* APPLINKS_MASTER_KEY/s);
    expect(readKeyFile(keyFile(h))).toEqual(current);
    expect((await cli.keys.countSealed()).every((c) => c.kid === Keyring.kidOf(current[0]!))).toBe(true);
    expect(other.services.keyring.currentKid).toBe(h.services.keyring.currentKid);
  });

  it('prune refuses while a stored value is still sealed under the old key, naming where', async () => {
    const h = track(await createHarness(dialect, { instance: true }));
    const a = await createLink(h, 'A', 'password-a');
    const b = await createLink(h, 'B', 'password-b');
    // B's value is a copy of A's: it does not open in B's row, so it cannot be re-sealed.
    const [authA] = await h.services.store.links.listAuth(a.id);
    await h.services.store.links.setSealedSecrets(b.id, 'outgoing', 'basic', authA!.secretsSealed!);
    const oldKid = h.services.keyring.currentKid;

    const cli = track(await cliProcess(h));
    const rotated = await rotateMasterKey(cli, FAST);
    expect(rotated.report.unreadable).toEqual([{ where: 'link_auth.secrets_sealed', kid: oldKid, problem: 'sealed value failed authentication', count: 1 }]);

    const refused = await pruneMasterKeys(cli, FAST).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(KeyRotationRefused);
    expect((refused as Error).message).toContain(`link_auth.secrets_sealed: 1 value(s) under key ${oldKid} (sealed value failed authentication)`);
    expect(readKeyFile(keyFile(h)).map((k) => Keyring.kidOf(k))).toEqual([rotated.kid, oldKid]);

    // Setting the secret again repairs it; then the old key goes.
    const repaired = await h.inject({ method: 'PUT', url: `/api/v1/links/${b.id}/outgoing/basic`, headers: { authorization: h.adminBasic }, payload: { username: 'svc', password: 'password-b2' } });
    expect(repaired.statusCode).toBe(200);
    expect(await pruneMasterKeys(cli, FAST)).toMatchObject({ removed: true, removable: [oldKid] });
    expect(readKeyFile(keyFile(h)).map((k) => Keyring.kidOf(k))).toEqual([rotated.kid]);
  });

  it('with APPLINKS_MASTER_KEY: rotate and prune check every running instance and say what may be removed', async () => {
    const [keyA, keyB] = [Keyring.generateKey(), Keyring.generateKey()];
    const [kidA, kidB] = [Keyring.kidOf(keyA), Keyring.kidOf(keyB)];
    const store = testStore(dialect);
    track({ close: () => store.drop() });
    const first = track(await createHarness(dialect, { store, instance: true, masterKey: b64(keyA) }));
    await createLink(first, 'Env');

    // One key only: nothing to rotate to, and the way to do it.
    const single = track(await cliProcess(first, b64(keyA)));
    await expect(rotateMasterKey(single, FAST)).rejects.toThrow(/holds one key .*applinks keys generate/s);
    // The instance does not hold the new key yet: re-sealing would lock it out.
    const both = track(await cliProcess(first, `${b64(keyB)},${b64(keyA)}`));
    await expect(rotateMasterKey(both, FAST)).rejects.toThrow(new RegExp(`do not hold key ${kidB}`));
    expect((await both.keys.countSealed()).every((c) => c.kid === kidA)).toBe(true);

    // Restarted with new,old: rotation goes through.
    const second = track(await createHarness(dialect, { store, instance: true, masterKey: `${b64(keyB)},${b64(keyA)}` }));
    await stop(first);
    const rotated = await rotateMasterKey(both, FAST);
    expect(rotated).toMatchObject({ source: 'env', kid: kidB, oldKids: [kidA], instances: 1 });
    expect(rotated.report.resealed).toBeGreaterThanOrEqual(2);

    // An instance started with the keys the wrong way round still seals under A: prune refuses.
    const wrong = track(await createHarness(dialect, { store, instance: true, masterKey: `${b64(keyA)},${b64(keyB)}` }));
    await expect(pruneMasterKeys(both, FAST)).rejects.toThrow(new RegExp(`do not seal with key ${kidB}.*sealing with ${kidA}`, 's'));
    await stop(wrong);

    expect(await pruneMasterKeys(both, FAST)).toMatchObject({ source: 'env', kid: kidB, removable: [kidA], removed: false, orphans: [] });
    const onlyB = track(await cliProcess(first, b64(keyB)));
    expect(await pruneMasterKeys(onlyB, FAST)).toMatchObject({ removable: [], orphans: [] });
    const list = await second.inject({ url: '/api/v1/links', headers: { authorization: second.adminBasic } });
    const [entry] = json<{ links: LinkJson[] }>(list).links[0]!.outgoing;
    expect(entry!.secretsSet).toEqual(['password']);
    expect(entry!.warnings.join()).not.toMatch(/cannot be opened/);
  });
});
