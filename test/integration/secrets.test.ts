import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Keyring } from '../../src/crypto/keyring.js';
import { hashToken } from '../../src/crypto/tokens.js';
import { writeKeyFile } from '../../src/services/master-key.js';
import { sealContext } from '../../src/services/links.js';
import { createBasicLink, createHarness, DIALECTS, json, userWithToken, type Harness, type LinkJson } from '../helpers/harness.js';
import { dance, formOf, registerConsumer, REQUEST_TOKEN, signedInject } from '../helpers/oauth1.js';
import { exchange, INTROSPECT, obtainCode, post, registerClient, signIn, TOKEN, type Tokens } from '../helpers/oauth2.js';

const PLANTED_SECRET = 'planted-outgoing-password-7f3c9a';

/** Everything the store holds, as raw bytes: the SQLite file and its WAL, or a pg_dump of the schema. */
function rawStore(h: Harness): string {
  if (h.store.schema) {
    return execFileSync('pg_dump', ['--schema', h.store.schema, '--data-only', h.store.databaseUrl], { encoding: 'latin1', maxBuffer: 64 * 1024 * 1024 });
  }
  const file = h.store.databaseUrl.slice('sqlite:'.length);
  return [file, `${file}-wal`].filter(existsSync).map((f) => readFileSync(f).toString('latin1')).join('');
}

describe.each(DIALECTS)('secrets at rest on %s', (dialect) => {
  let h: Harness;
  beforeEach(async () => {
    h = await createHarness(dialect, { config: { accessLog: true } });
  });
  afterEach(async () => h.close());

  it('never stores a secret or a bearer token in clear, nor logs or returns them', async () => {
    const created = await h.inject({
      method: 'POST',
      url: '/api/v1/links',
      headers: { authorization: h.adminBasic },
      payload: { name: 'Remote', url: 'https://remote.example', outgoing: { basic: { username: 'svc', password: PLANTED_SECRET } } },
    });
    expect(created.statusCode).toBe(201);
    expect(created.body).not.toContain(PLANTED_SECRET);
    const { token, bearer } = await userWithToken(h, 'alice');
    expect((await h.inject({ url: '/whoami', headers: { authorization: bearer } })).statusCode).toBe(200);
    await h.inject({ url: `/whoami?access_token=${token}`, headers: { authorization: `Basic ${Buffer.from(`alice:${token}`).toString('base64')}` } });
    await h.services.apiTokens.flushLastUsed();

    const raw = rawStore(h);
    expect(raw.length).toBeGreaterThan(1000);
    expect(raw).toContain('svc'); // the scan sees the row: the non-secret username is there in clear
    expect(raw).not.toContain(PLANTED_SECRET);
    expect(raw).not.toContain(token);
    expect(raw).not.toContain('alice-password');
    expect(raw).not.toContain('admin-password-1');

    const everything = [h.logs.join('\n'), JSON.stringify(json(await h.inject({ url: '/api/v1/audit', headers: { authorization: h.adminBasic } })))].join('\n');
    expect(everything).not.toContain(PLANTED_SECRET);
    expect(everything).not.toContain(token);
    expect(h.logs.some((l) => l.includes('[Redacted]'))).toBe(true);
    // The access log names who each request acted as: through the gateway and on our own routes.
    const access = h.logs.map((l) => JSON.parse(l) as { msg: string; req?: { method: string; url: string }; res?: { statusCode: number }; user?: string | null; auth?: string | null; responseTime?: number });
    expect(access.find((l) => l.msg === 'gateway request' && l.req?.url === '/whoami')).toMatchObject({ req: { method: 'GET' }, res: { statusCode: 200 }, user: 'alice', auth: 'api-token', responseTime: expect.any(Number) });
    expect(access.find((l) => l.msg === 'request completed' && l.req?.url === '/api/v1/links')).toMatchObject({ req: { method: 'POST' }, res: { statusCode: 201 }, user: 'admin', auth: 'basic' });

    // The secret is still usable where it belongs.
    const link = json<{ id: string }>(created);
    const [auth] = (await h.services.store.links.listAuth(link.id)).filter((a) => a.type === 'basic');
    expect(h.services.links.openSecrets(auth!)).toEqual({ password: PLANTED_SECRET });
  });

  it('re-seals every secret under a new master key and keeps them readable', async () => {
    const link = json<{ id: string }>(
      await h.inject({ method: 'POST', url: '/api/v1/links', headers: { authorization: h.adminBasic }, payload: { name: 'R', url: 'https://r.example', outgoing: { 'api-token': { token: PLANTED_SECRET } } } }),
    );
    await h.services.keys.activeKey('assertion', 'ES256');
    const oldKid = h.services.keyring.currentKid;
    const next = new Keyring([Keyring.generateKey(), ...readKeys(h)]);
    const { resealed: count } = await h.services.keys.reseal(next);
    expect(count).toBeGreaterThanOrEqual(3); // link secret, assertion key, installation secret
    const raw = rawStore(h);
    expect(raw).toContain(`v1.${next.currentKid}.`);
    expect(raw).not.toContain(`v1.${oldKid}.`);
    const [auth] = await h.services.store.links.listAuth(link.id);
    expect(next.open(auth!.secretsSealed!, `link_auth.secrets_sealed:${link.id}/outgoing/api-token`)).toContain(PLANTED_SECRET);
    // Without the new key the values do not open: they really were re-sealed.
    const onlyOld = new Keyring(readKeys(h));
    expect(() => onlyOld.open(auth!.secretsSealed!, `link_auth.secrets_sealed:${link.id}/outgoing/api-token`)).toThrow();
  });

  it('keeps OAuth 1.0a tokens as hashes and their secrets and shared secrets sealed, and re-seals them', async () => {
    await userWithToken(h, 'alice', { password: 'alice-password' });
    const consumer = await registerConsumer(h, { method: 'HMAC-SHA1' });
    const d = await dance(h, consumer, await signIn(h, 'alice', 'alice-password'));
    expect((await signedInject(h, consumer, { path: '/whoami', token: d.access })).statusCode).toBe(200);
    const pending = formOf(await signedInject(h, consumer, { method: 'POST', path: REQUEST_TOKEN, oauth: { oauth_callback: 'oob' } }));
    const planted = [consumer.secret!, d.access!.key, d.access!.secret, d.body.oauth_session_handle!, d.requestToken.key, pending.oauth_token!, pending.oauth_token_secret!];
    let raw = rawStore(h);
    expect(raw).toContain(consumer.key); // the scan sees the rows
    for (const value of planted) expect(raw).not.toContain(value);
    const everything = [h.logs.join('\n'), JSON.stringify(json(await h.inject({ url: '/api/v1/audit', headers: { authorization: h.adminBasic } })))].join('\n');
    for (const value of planted) expect(everything).not.toContain(value);

    // As `applinks keys rotate` does: the new key first in the key file, then everything re-sealed.
    const oldKid = h.services.keyring.currentKid;
    const keys = [Keyring.generateKey(), ...readKeys(h)];
    writeKeyFile(path.join(h.config.dataDir, 'master.key'), keys);
    const next = new Keyring(keys);
    expect((await h.services.keys.reseal(next)).resealed).toBeGreaterThanOrEqual(4); // + shared secret, two token secrets
    raw = rawStore(h);
    expect(raw).not.toContain(`v1.${oldKid}.`);
    // Still usable after the rotation: the token secret opened under the new key verifies the signature.
    h.services.revocations.all();
    expect((await signedInject(h, consumer, { path: '/whoami', token: d.access })).statusCode).toBe(200);
  });

  it('keeps OAuth 2.0 client secrets, codes and tokens only as hashes, out of logs and the audit log', async () => {
    await userWithToken(h, 'alice', { password: 'alice-password' });
    const client = await registerClient(h, { name: 'At-rest app' });
    const jar = await signIn(h, 'alice', 'alice-password');
    const pending = await obtainCode(h, jar, client);
    const redeemed = await obtainCode(h, jar, client);
    const tokens = await exchange(h, client, redeemed);
    expect((await h.inject({ url: '/whoami', headers: { authorization: `Bearer ${tokens.access_token}` } })).statusCode).toBe(200);
    const refreshed = json<Tokens>(await post(h, TOKEN, client, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token }));
    const rotated = json<{ clientSecret: string }>(
      await h.inject({ method: 'POST', url: `/api/v1/oauth2/clients/${client.clientId}/secret`, headers: { authorization: h.adminBasic }, payload: { graceSeconds: 60 } }),
    );
    // The scan runs in the rotation's grace period: both secrets are stored and both work.
    const fresh = { ...client, clientSecret: rotated.clientSecret };
    const withNew = await post(h, TOKEN, fresh, { grant_type: 'refresh_token', refresh_token: refreshed.refresh_token });
    expect(withNew.statusCode, withNew.body).toBe(200);
    const again = json<Tokens>(withNew);
    for (const c of [client, fresh]) expect(json(await post(h, INTROSPECT, c, { token: again.access_token }))).toMatchObject({ active: true });
    const secretRows = await sql<{ secret_hash: string }>`select secret_hash from oauth2_client_secrets`.execute(h.services.store.db);
    expect(secretRows.rows.map((r) => r.secret_hash).sort()).toEqual([hashToken(client.clientSecret!), hashToken(rotated.clientSecret)].sort());
    const planted = [client.clientSecret!, rotated.clientSecret, pending.code, redeemed.code, tokens.access_token, tokens.refresh_token, refreshed.access_token, refreshed.refresh_token!, again.access_token, again.refresh_token!];
    const raw = rawStore(h);
    expect(raw).toContain(client.clientId); // the scan sees the rows
    // ...and the very columns a clear value would be in: each secret's and live token's hash is there.
    for (const value of [client.clientSecret!, rotated.clientSecret, again.access_token, again.refresh_token!]) expect(raw).toContain(hashToken(value));
    for (const value of planted) expect(raw).not.toContain(value);
    const everything = [h.logs.join('\n'), JSON.stringify(json(await h.inject({ url: '/api/v1/audit', headers: { authorization: h.adminBasic } })))].join('\n');
    for (const value of planted) expect(everything).not.toContain(value);
    // Listing the client never shows a secret again.
    const listed = await h.inject({ url: `/api/v1/oauth2/clients/${client.clientId}`, headers: { authorization: h.adminBasic } });
    for (const value of planted) expect(listed.body).not.toContain(value);
  });

  it('lists links when one secret cannot be opened: that entry warns, the log says it once, no secret shows', async () => {
    const good = await createBasicLink(h, 'Good', PLANTED_SECRET);
    const lost = await createBasicLink(h, 'Lost', 'lost-password-9a');
    const legacy = await createBasicLink(h, 'Legacy', 'legacy-password-4c');
    // Lost: sealed under a key this installation does not have (as after a prune that went wrong).
    const foreign = new Keyring([Keyring.generateKey()]);
    await h.services.store.links.setSealedSecrets(lost.id, 'outgoing', 'basic', foreign.seal(JSON.stringify({ password: 'x' }), sealContext(lost.id, 'outgoing', 'basic')));
    // Legacy: a row from before the field names were kept, whose value does not open.
    const [authGood] = await h.services.store.links.listAuth(good.id);
    await sql`update link_auth set secret_fields = null, secrets_sealed = ${authGood!.secretsSealed} where link_id = ${legacy.id}`.execute(h.services.store.db);

    for (let i = 0; i < 2; i++) {
      const res = await h.inject({ url: '/api/v1/links', headers: { authorization: h.adminBasic } });
      expect(res.statusCode).toBe(200);
      const byName = Object.fromEntries(json<{ links: LinkJson[] }>(res).links.map((l) => [l.name, l.outgoing[0]!]));
      expect(byName.Good!.secretsSet).toEqual(['password']);
      expect(byName.Good!.warnings.join()).not.toMatch(/cannot be opened/);
      expect(byName.Lost!.secretsSet).toEqual(['password']);
      expect(byName.Lost!.warnings.join()).toMatch(/cannot be opened \(sealed under unknown key id/);
      expect(byName.Legacy!.secretsSet).toEqual([]);
      expect(byName.Legacy!.warnings.join()).toMatch(/cannot be opened \(sealed value failed authentication\)/);
      for (const secret of [PLANTED_SECRET, 'lost-password-9a', 'legacy-password-4c']) expect(res.body).not.toContain(secret);
    }
    const single = await h.inject({ url: `/api/v1/links/${lost.id}`, headers: { authorization: h.adminBasic } });
    expect(single.statusCode).toBe(200);
    const warned = h.logs.filter((l) => l.includes('a link secret cannot be opened'));
    expect(warned).toHaveLength(2);
    expect(warned.join('\n')).toContain(lost.id);
    expect(h.logs.join('\n')).not.toContain(PLANTED_SECRET);

    // An older row that opens still names its fields; setting a lost secret again repairs it.
    await sql`update link_auth set secret_fields = null where link_id = ${good.id}`.execute(h.services.store.db);
    const repaired = await h.inject({ method: 'PUT', url: `/api/v1/links/${lost.id}/outgoing/basic`, headers: { authorization: h.adminBasic }, payload: { username: 'svc', password: 'new-password-3e' } });
    expect(repaired.statusCode).toBe(200);
    const after = json<{ links: LinkJson[] }>(await h.inject({ url: '/api/v1/links', headers: { authorization: h.adminBasic } })).links;
    const byName = Object.fromEntries(after.map((l) => [l.name, l.outgoing[0]!]));
    expect(byName.Good!.secretsSet).toEqual(['password']);
    expect(byName.Lost!.secretsSet).toEqual(['password']);
    expect(byName.Lost!.warnings.join()).not.toMatch(/cannot be opened/);
  });

  it('binds a sealed value to its row: copied elsewhere it does not open', async () => {
    const a = json<{ id: string }>(await h.inject({ method: 'POST', url: '/api/v1/links', headers: { authorization: h.adminBasic }, payload: { name: 'A', url: 'https://a.example', outgoing: { basic: { username: 'u', password: 'p1-secret' } } } }));
    const b = json<{ id: string }>(await h.inject({ method: 'POST', url: '/api/v1/links', headers: { authorization: h.adminBasic }, payload: { name: 'B', url: 'https://b.example', outgoing: { basic: { username: 'u', password: 'p2-secret' } } } }));
    const [authA] = await h.services.store.links.listAuth(a.id);
    await h.services.store.links.setSealedSecrets(b.id, 'outgoing', 'basic', authA!.secretsSealed!);
    const [authB] = await h.services.store.links.listAuth(b.id);
    expect(() => h.services.links.openSecrets(authB!)).toThrow(/failed authentication/);
  });
});


describe('re-sealing beside another instance, on postgres', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await createHarness('postgres');
  });
  afterEach(async () => h.close());

  it('never puts back a secret that another instance replaced while it re-sealed', async () => {
    const link = await createBasicLink(h, 'Racing', 'the-old-password-1b');
    const context = sealContext(link.id, 'outgoing', 'basic');
    const replaced = h.services.keyring.seal(JSON.stringify({ password: 'the-new-password-2c' }), context);
    let resealing: Promise<unknown> | undefined;
    // Another instance writes the new password in a transaction that is still open when the
    // re-seal reads the old one; the re-seal's update waits for it, then finds the value changed.
    await h.services.store.db.connection().execute(async (other) => {
      await sql`begin`.execute(other);
      await sql`update link_auth set secrets_sealed = ${replaced} where link_id = ${link.id} and type = 'basic'`.execute(other);
      resealing = h.services.keys.reseal(new Keyring([Keyring.generateKey(), ...readKeys(h)]));
      const waiting = async () => Number((await sql<{ n: string }>`select count(*) as n from pg_stat_activity where wait_event_type = 'Lock' and datname = current_database()`.execute(h.services.store.db)).rows[0]!.n) > 0;
      for (let i = 0; i < 200 && !(await waiting()); i++) await new Promise((r) => setTimeout(r, 25));
      expect(await waiting()).toBe(true);
      await sql`commit`.execute(other);
    });
    await resealing;
    const [auth] = (await h.services.store.links.listAuth(link.id)).filter((a) => a.type === 'basic');
    expect(auth!.secretsSealed).toBe(replaced);
    expect(h.services.links.openSecrets(auth!)).toEqual({ password: 'the-new-password-2c' });
  });
});

function readKeys(h: Harness): Buffer[] {
  const file = path.join(h.config.dataDir, 'master.key');
  expect(statSync(file).mode & 0o777).toBe(0o600);
  return readFileSync(file, 'utf8').trim().split('\n').map((l) => Buffer.from(l, 'base64'));
}
