import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createHarness, DIALECTS, json, userWithToken, type Harness } from '../helpers/harness.js';
import { consumerKeyPair } from '../helpers/oauth1.js';
import { hiddenFields, signIn } from '../helpers/oauth2.js';

/**
 * Every operation of the admin API's own OpenAPI document, fed hostile input: each leaf of a
 * plausible body replaced by values of every wrong kind (and by strings PostgreSQL or SQLite
 * might choke on), unknown and missing fields, raw bodies that are not objects, hostile path ids
 * and query values. Whatever arrives, the answer is a 4xx or a success, never a 500; an error is
 * JSON with an `error` code; a refused write leaves the audit log as it was; nothing is logged at
 * error level. The operations come from the document, so a new one is covered when it lands.
 */
const HOSTILE_VALUES: unknown[] = [
  null,
  true,
  0,
  -1,
  1e308,
  2 ** 53 + 1,
  '',
  ' ',
  'x'.repeat(70_000),
  'nul\u0000byte',
  'lone \ud800 surrogate',
  "' or 1=1 --",
  '../../etc/passwd',
  '\u202e\u0007<script>',
  [],
  [null],
  {},
  { $gt: '' },
];

const HOSTILE_IDS = ['nope', '0', '-1', '%00', '%ff', '%', '..%2F..%2Fadmin', 'a'.repeat(5000), "'%20or%201=1", '%F0%9F%98%80', '1e308', 'null'];

const HOSTILE_QUERY = ['-1', '0', 'abc', '1e308', '99999999999999999999', '%00', '%ff', 'a'.repeat(5000), '2026-13-45T99:99:99Z'];

const RAW_BODIES: Array<[string, string]> = [
  ['application/json', '{'],
  ['application/json', '[]'],
  ['application/json', 'null'],
  ['application/json', '"a string"'],
  ['application/json', '12'],
  ['application/json', '{"__proto__":{"admin":true,"polluted":1}}'],
  ['application/json', '{"constructor":{"prototype":{"polluted":1}}}'],
  ['application/json', '['.repeat(20_000) + ']'.repeat(20_000)],
  ['application/json', '{"a":' + '{"a":'.repeat(5000) + '1' + '}'.repeat(5001)],
  ['application/json', `{"name":"${'y'.repeat(3 * 1024 * 1024)}"}`],
  ['application/json; charset=utf-16', '{}'],
  ['application/x-www-form-urlencoded', 'name=x&admin=true'],
  ['text/plain', '{"name":"x"}'],
  ['application/xml', '<name>x</name>'],
];

type Op = { method: string; path: string; params: Array<{ name: string; in: string }>; hasBody: boolean };

/** Every path to a leaf of a JSON value, arrays included. */
function leaves(value: unknown, at: Array<string | number> = []): Array<Array<string | number>> {
  if (Array.isArray(value)) return value.length === 0 ? [at] : value.flatMap((v, i) => leaves(v, [...at, i]));
  if (value && typeof value === 'object') {
    const entries = Object.entries(value);
    return entries.length === 0 ? [at] : entries.flatMap(([k, v]) => leaves(v, [...at, k]));
  }
  return [at];
}

/** Every path to an object inside a JSON value (where an unknown property can go). */
function objects(value: unknown, at: Array<string | number> = []): Array<Array<string | number>> {
  if (Array.isArray(value)) return value.flatMap((v, i) => objects(v, [...at, i]));
  if (value && typeof value === 'object') return [at, ...Object.entries(value).flatMap(([k, v]) => objects(v, [...at, k]))];
  return [];
}

function withValue(base: unknown, at: Array<string | number>, value: unknown, mode: 'set' | 'delete' = 'set'): unknown {
  const copy = structuredClone(base) as Record<string | number, unknown>;
  if (at.length === 0) return mode === 'set' ? value : copy;
  let node = copy;
  for (const key of at.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  const last = at[at.length - 1]!;
  if (mode === 'delete') {
    if (Array.isArray(node)) node.splice(Number(last), 1);
    else delete node[last];
  } else node[last] = value;
  return copy;
}

// Thousands of requests per dialect: seconds alone, longer beside the rest of the suite.
describe.each(DIALECTS)('admin API under hostile input on %s', { timeout: 180_000 }, (dialect) => {
  let h: Harness;
  let actor: string;
  let ops: Op[];
  const valid: Record<string, string> = {};
  const bases: Record<string, unknown> = {};

  beforeAll(async () => {
    h = await createHarness(dialect, { config: { oauth2DeveloperApps: true } });
    // The actor is an admin of its own, so that changing passwords or tokens of `/me` never
    // locks the test out; every id in a path belongs to someone else.
    actor = (await userWithToken(h, 'hostile-admin', { isAdmin: true })).bearer;
    const target = await userWithToken(h, 'target');
    const as = (method: string, url: string, payload?: unknown) =>
      h.inject({ method: method as 'POST', url, headers: { authorization: actor }, ...(payload === undefined ? {} : { payload: payload as object }) });
    const link = json<{ id: string }>(await as('POST', '/api/v1/links', { name: 'Target link', url: 'http://127.0.0.1:9', incoming: { oauth1: { consumerKey: 'target-consumer', name: 'Target', publicKey: consumerKeyPair().publicPem } } }));
    const client = json<{ clientId: string }>(await as('POST', '/api/v1/oauth2/clients', { name: 'Target client', redirectUris: ['https://client.example/cb'] }));
    const own = json<{ clientId: string }>(await as('POST', '/api/v1/me/oauth2/clients', { name: 'Own app', redirectUris: ['https://own.example/cb'] }));
    const token = (await h.services.apiTokens.list(target.user.id))[0]!;
    Object.assign(valid, { id: target.user.id, tokenId: token.id, linkId: link.id, clientId: client.clientId, ownClientId: own.clientId });
    await h.services.users.get(target.user.id).then((u) => expect(u).toBeTruthy());

    const doc = json<{ paths: Record<string, Record<string, { parameters?: Array<{ name: string; in: string }>; requestBody?: unknown }>> }>(await as('GET', '/api/v1/openapi.json'));
    ops = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, op]) => ({ method: method.toUpperCase(), path, params: op.parameters ?? [], hasBody: op.requestBody !== undefined })),
    );
    const redirect = { redirectUris: ['https://x.example/cb'], scopes: ['READ', 'WRITE'] };
    Object.assign(bases, {
      'POST /api/v1/me/tokens': { name: 'a token', expiresAt: '2099-01-01T00:00:00Z', linkId: null },
      'PUT /api/v1/me/password': { currentPassword: 'hostile-admin-password', newPassword: 'hostile-admin-password' },
      'POST /api/v1/users': { username: 'newcomer', displayName: 'New Comer', email: 'new@example.com', password: 'a-long-password', admin: false, disabled: false, groups: ['g1', 'g2'] },
      'PATCH /api/v1/users/{id}': { displayName: 'Target', email: 'target@example.com', admin: false, disabled: false, groups: ['g1'] },
      'POST /api/v1/users/{id}/tokens': { name: 'for target', expiresAt: null, linkId: link.id },
      'POST /api/v1/links': {
        name: 'Another link',
        url: 'https://another.example/jira',
        applicationType: 'jira',
        incoming: { oauth1: { consumerKey: 'another', name: 'Another', description: 'd', sharedSecret: 'a-shared-secret-of-length', callback: 'https://another.example/cb', allow3LO: true, allow2LO: true, executeAs: 'target', allow2LOImpersonation: false } },
        outgoing: { oauth1: {} },
      },
      'PATCH /api/v1/links/{id}': { name: 'Target link', url: 'http://127.0.0.1:9', applicationType: 'generic' },
      'PUT /api/v1/links/{id}/incoming/oauth1': { consumerKey: 'target-consumer', name: 'Target', sharedSecret: 'a-shared-secret-of-length', allow2LO: true, executeAs: 'target' },
      'PUT /api/v1/links/{id}/incoming/oauth2': { clientId: 'target-client-id', name: 'Target', confidential: true, ...redirect, requirePkce: true, serviceAccountUserId: target.user.id },
      'PUT /api/v1/links/{id}/outgoing/oauth1': { signatureMethod: 'HMAC-SHA1', consumerKey: 'us-there', sharedSecret: 'a-shared-secret-of-length', requestTokenUrl: 'https://r.example/rt', authorizeUrl: 'https://r.example/a', accessTokenUrl: 'https://r.example/at' },
      'PUT /api/v1/links/{id}/outgoing/oauth1-2lo': { signatureMethod: 'RSA-SHA1', consumerKey: 'us-there' },
      'PUT /api/v1/links/{id}/outgoing/oauth1-2lo-impersonation': { signatureMethod: 'HMAC-SHA256', consumerKey: 'us-there', sharedSecret: 'a-shared-secret-of-length' },
      'PUT /api/v1/links/{id}/outgoing/api-token': { token: 'alpat_a-token-of-the-remote' },
      'PUT /api/v1/links/{id}/outgoing/basic': { username: 'remote-user', password: 'remote-password' },
      'POST /api/v1/links/{id}/incoming/oauth1/auto-configure': { allow3LO: true, allow2LO: true, executeAs: 'target', allow2LOImpersonation: false },
      'POST /api/v1/oauth2/clients': { name: 'Another client', url: 'https://c.example', applicationType: 'generic', confidential: true, ...redirect, serviceAccount: 'target' },
      'PATCH /api/v1/oauth2/clients/{clientId}': { name: 'Target client', confidential: true, ...redirect },
      'POST /api/v1/oauth2/clients/{clientId}/secret': { graceSeconds: 60 },
      'POST /api/v1/me/oauth2/clients': { name: 'Mine too', confidential: false, ...redirect },
      'PATCH /api/v1/me/oauth2/clients/{clientId}': { name: 'Own app', ...redirect },
      'POST /api/v1/me/oauth2/clients/{clientId}/secret': { graceSeconds: 0 },
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  // A wrong current password is a failed sign-in, which the audit log records by design.
  const auditCount = async () =>
    Number((await h.services.store.db.selectFrom('audit_log').where('action', '!=', 'signin.failed').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);

  /** The id a path parameter takes when it should name something that exists. */
  function validPath(op: Op): string {
    return op.path.replace(/\{(\w+)\}/g, (_m, name: string) => {
      if (name === 'direction') return 'incoming';
      if (name === 'type') return 'oauth1';
      if (name === 'clientId') return op.path.startsWith('/api/v1/me/') ? valid.ownClientId! : valid.clientId!;
      if (name === 'id' && op.path.startsWith('/api/v1/links')) return valid.linkId!;
      return valid[name] ?? 'missing';
    });
  }

  let failures: string[] = [];
  beforeEach(() => {
    failures = [];
  });
  async function check(label: string, op: Op, send: () => Promise<LightMyRequestResponse>): Promise<void> {
    const before = op.method === 'GET' ? 0 : await auditCount();
    let res: LightMyRequestResponse;
    try {
      res = await send();
    } catch (error) {
      failures.push(`${label}: threw ${String(error)}`);
      return;
    }
    const why: string[] = [];
    // 502 is the one server-side answer allowed: auto-configure fetches from the link's URL, which
    // refuses connections here.
    const remoteFailed = res.statusCode === 502 && /"upstream_unavailable"/.test(res.body);
    if (res.statusCode >= 500 && !remoteFailed) why.push(`status ${res.statusCode}`);
    if (res.statusCode >= 400) {
      let body: { error?: unknown } | undefined;
      try {
        body = JSON.parse(res.body) as { error?: unknown };
      } catch {
        why.push('error body is not JSON');
      }
      if (body && typeof body.error !== 'string') why.push('error body has no error code');
      if (op.method !== 'GET' && (await auditCount()) !== before) why.push('a refused request was audited as a change');
    }
    if (why.length) failures.push(`${label}: ${why.join(', ')} → ${res.statusCode} ${res.body.slice(0, 200)}`);
  }

  it('answers every operation with a 4xx or a success, whatever the body', async () => {
    for (const op of ops.filter((o) => o.hasBody)) {
      const key = `${op.method} ${op.path}`;
      const base = bases[key];
      expect(base, `a plausible body for ${key}`).toBeDefined();
      const url = validPath(op);
      const send = (payload: unknown) => () => h.inject({ method: op.method as 'POST', url, headers: { authorization: actor, 'content-type': 'application/json' }, payload: JSON.stringify(payload) });
      for (const at of leaves(base)) {
        for (const value of HOSTILE_VALUES) await check(`${key} ${at.join('.')}=${JSON.stringify(value)?.slice(0, 30)}`, op, send(withValue(base, at, value)));
        if (at.length) await check(`${key} without ${at.join('.')}`, op, send(withValue(base, at, undefined, 'delete')));
      }
      for (const at of objects(base)) await check(`${key} unknown property at ${at.join('.') || 'top'}`, op, send(withValue(base, [...at, 'unexpected'], 1)));
      for (const [type, raw] of RAW_BODIES) {
        await check(`${key} raw ${type} ${raw.slice(0, 30)}`, op, () => h.inject({ method: op.method as 'POST', url, headers: { authorization: actor, 'content-type': type }, payload: raw }));
      }
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
    expect(failures).toEqual([]);
  });

  it('answers hostile path ids and query values with a 4xx, not a 500', async () => {
    for (const op of ops) {
      const key = `${op.method} ${op.path}`;
      for (const param of op.params.filter((p) => p.in === 'path')) {
        for (const id of HOSTILE_IDS) {
          // Substitute only this parameter; the others keep naming something that exists.
          const path = validPath({ ...op, path: op.path.replace(`{${param.name}}`, id) });
          await check(`${key} ${param.name}=${id.slice(0, 30)}`, op, () => h.inject({ method: op.method as 'GET', url: path, headers: { authorization: actor }, ...(op.hasBody ? { payload: (bases[key] ?? {}) as object } : {}) }));
        }
      }
      if (op.method === 'DELETE') continue;
      for (const param of op.params.filter((p) => p.in === 'query')) {
        for (const value of HOSTILE_QUERY) {
          await check(`${key} ?${param.name}=${value.slice(0, 30)}`, op, () => h.inject({ method: op.method as 'GET', url: `${validPath(op)}?${param.name}=${value}`, headers: { authorization: actor } }));
        }
        await check(`${key} ?${param.name} twice`, op, () => h.inject({ method: op.method as 'GET', url: `${validPath(op)}?${param.name}=1&${param.name}=2`, headers: { authorization: actor } }));
      }
    }
    expect(failures).toEqual([]);
  });

  it('answers hostile parameters of the protocol endpoints and pages with a 4xx or a page, not a 500', async () => {
    const jar = await signIn(h, 'target', 'target-password');
    const account = await h.inject({ url: '/applinks/account', headers: { cookie: jar.header } });
    jar.take(account);
    const csrf = hiddenFields(account.body).get('csrf_token') ?? '';
    expect(csrf).not.toBe('');
    const cookie = jar.header;
    const formHeaders = { cookie, 'content-type': 'application/x-www-form-urlencoded' };
    const oauthHeader = (v: string) =>
      `OAuth oauth_consumer_key="${v}", oauth_token="${v}", oauth_signature_method="HMAC-SHA1", oauth_signature="${v}", oauth_timestamp="${Math.floor(h.clock.now() / 1000)}", oauth_nonce="${v}", oauth_version="1.0", oauth_verifier="${v}", oauth_callback="${v}"`;
    // Each builds a request from one URL-encoded hostile value.
    const requests: Array<[string, (v: string) => InjectOptions]> = [
      ['OAuth 1.0a authorize page', (v) => ({ url: `/plugins/servlet/oauth/authorize?oauth_token=${v}`, headers: { cookie } })],
      ['OAuth 1.0a decision', (v) => ({ method: 'POST', url: '/plugins/servlet/oauth/authorize', headers: formHeaders, payload: `csrf_token=${csrf}&oauth_token=${v}&approve=Allow` })],
      ['OAuth 1.0a request-token', (v) => ({ method: 'POST', url: '/plugins/servlet/oauth/request-token', headers: { authorization: oauthHeader(v) } })],
      ['OAuth 1.0a request-token by form', (v) => ({ method: 'POST', url: '/plugins/servlet/oauth/request-token', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `oauth_consumer_key=${v}&oauth_signature_method=PLAINTEXT&oauth_signature=${v}&oauth_timestamp=1&oauth_nonce=${v}&oauth_callback=${v}` })],
      ['OAuth 1.0a access-token', (v) => ({ method: 'POST', url: '/plugins/servlet/oauth/access-token', headers: { authorization: oauthHeader(v) } })],
      ['OAuth 1.0a signed gateway request', (v) => ({ url: `/rest/api/2/myself?xoauth_requestor_id=${v}`, headers: { authorization: oauthHeader(v) } })],
      ['consumer-info', (v) => ({ url: `/plugins/servlet/oauth/consumer-info?x=${v}`, headers: { accept: v } })],
      ['login-dance start', (v) => ({ url: `/plugins/servlet/applinks/oauth/login-dance/authorize?applicationLinkID=${v}&redirect=${v}`, headers: { cookie } })],
      ['login-dance callback', (v) => ({ url: `/plugins/servlet/applinks/oauth/login-dance/access?applicationLinkID=${v}&oauth_token=${v}&oauth_verifier=${v}`, headers: { cookie } })],
      ['forget an outgoing token', (v) => ({ method: 'POST', url: `/applinks/account/oauth1/${v}/forget`, headers: formHeaders, payload: `csrf_token=${csrf}` })],
      ['OAuth 2.0 authorize', (v) => ({ url: `/rest/oauth2/latest/authorize?response_type=code&client_id=${v}&redirect_uri=${v}&scope=${v}&state=${v}&code_challenge=${v}&code_challenge_method=S256`, headers: { cookie } })],
      ['OAuth 2.0 authorize, known client', (v) => ({ url: `/rest/oauth2/latest/authorize?response_type=code&client_id=${valid.clientId}&redirect_uri=https%3A%2F%2Fclient.example%2Fcb&scope=${v}&state=${v}&code_challenge=${v}&code_challenge_method=${v}&prompt=${v}`, headers: { cookie } })],
      ['OAuth 2.0 decision', (v) => ({ method: 'POST', url: '/rest/oauth2/latest/authorize', headers: formHeaders, payload: `csrf_token=${csrf}&request=${v}&client_id=${v}&approve=Allow` })],
      ['OAuth 2.0 code exchange', (v) => ({ method: 'POST', url: '/rest/oauth2/latest/token', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `grant_type=authorization_code&code=${v}&client_id=${v}&client_secret=${v}&redirect_uri=${v}&code_verifier=${v}` })],
      ['OAuth 2.0 refresh', (v) => ({ method: 'POST', url: '/rest/oauth2/latest/token', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${valid.clientId}:${v}`).toString('base64')}` }, payload: `grant_type=refresh_token&refresh_token=${v}&scope=${v}&redirect_uri=${v}` })],
      ['OAuth 2.0 client credentials', (v) => ({ method: 'POST', url: '/rest/oauth2/latest/token', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `grant_type=${v}&client_id=${v}&client_secret=${v}&scope=${v}` })],
      ['OAuth 2.0 revoke', (v) => ({ method: 'POST', url: '/rest/oauth2/latest/revoke', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `token=${v}&token_type_hint=${v}&client_id=${v}` })],
      ['OAuth 2.0 introspect', (v) => ({ method: 'POST', url: '/rest/oauth2/latest/introspect', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: actor }, payload: `token=${v}&token_type_hint=${v}` })],
      ['bearer through the gateway', (v) => ({ url: `/rest/api/2/myself?access_token=${v}`, headers: { authorization: `Bearer ${v}` } })],
      ['Basic through the gateway', (v) => ({ url: '/rest/api/2/myself', headers: { authorization: `Basic ${Buffer.from(`${v}:${v}`).toString('base64')}` } })],
      ['forward-auth', (v) => ({ url: '/rest/applinks/1.0/forward-auth', headers: { 'x-original-uri': `/${v}`, 'x-original-method': v.slice(0, 20), authorization: `Bearer ${v}` } })],
      ['sign-in page', (v) => ({ url: `/applinks/login?next=${v}` })],
      ['sign-in', (v) => ({ method: 'POST', url: `/applinks/login?next=${v}`, headers: formHeaders, payload: `csrf_token=${csrf}&username=${v}&password=${v}&next=${v}` })],
      ['account page', (v) => ({ url: `/applinks/account?x=${v}`, headers: { cookie: `${cookie}; applinks_device=${v}` } })],
      ['manifest', (v) => ({ url: `/rest/applinks/1.0/manifest?x=${v}`, headers: { accept: v } })],
    ];
    const values = ['%00', 'a%00b', '%ff', '%', '%ED%A0%80', 'x'.repeat(5000), '%27%20or%201%3D1', '..%2F..%2F', '', '%20', '%0d%0aX-Injected:%201', 'oob', 'http%3A%2F%2F127.0.0.1%2Fcb', '%2F%E2%82%AC', '%2F%FC', 'https%3A%2F%2Fclient.example%2F%E2%82%AC'];
    const pageOp: Op = { method: 'GET', path: '', params: [], hasBody: false };
    for (const [name, build] of requests) {
      for (const v of values) {
        await check(`${name} with ${v.slice(0, 30)}`, pageOp, async () => {
          const res = await h.inject(build(v));
          // Pages answer HTML and protocols their own formats; only the status is common ground.
          return Object.assign(Object.create(res) as LightMyRequestResponse, { body: res.statusCode >= 400 ? '{"error":"any"}' : res.body });
        });
      }
    }
    expect(failures).toEqual([]);
  });

  it('still serves, and logged nothing at error level', async () => {
    const me = await h.inject({ url: '/api/v1/me', headers: { authorization: actor } });
    expect(me.statusCode).toBe(200);
    expect((await h.services.users.get(valid.id!))?.username).toBeTruthy();
    const errors = h.logs.map((line) => JSON.parse(line) as { level: number; msg?: string; err?: { message?: string } }).filter((l) => l.level >= 50);
    expect(errors.map((l) => `${l.msg} ${l.err?.message ?? ''}`)).toEqual([]);
  });
});
