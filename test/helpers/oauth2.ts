import { createHash, randomBytes } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { expect } from 'vitest';
import { createHarness, json, type DialectName, type Harness } from './harness.js';
import { freePort } from './net.js';

export const AUTHORIZE = '/rest/oauth2/latest/authorize';
export const TOKEN = '/rest/oauth2/latest/token';
export const REVOKE = '/rest/oauth2/latest/revoke';
export const INTROSPECT = '/rest/oauth2/latest/introspect';
export const REDIRECT = 'https://client.example/callback';

export interface RegisteredClient {
  clientId: string;
  clientSecret: string | null;
  linkId: string;
}

/** Registers a client through the admin API. */
export async function registerClient(h: Harness, body: Record<string, unknown> = {}): Promise<RegisteredClient> {
  const res = await h.inject({
    method: 'POST',
    url: '/api/v1/oauth2/clients',
    headers: { authorization: h.adminBasic },
    payload: { name: `App ${randomBytes(3).toString('hex')}`, redirectUris: [REDIRECT], scopes: ['READ', 'WRITE'], ...body },
  });
  expect(res.statusCode, res.body).toBe(201);
  const c = json<{ clientId: string; clientSecret: string | null; linkId: string }>(res);
  return { clientId: c.clientId, clientSecret: c.clientSecret, linkId: c.linkId };
}

export function basicClient(c: RegisteredClient): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(c.clientId)}:${encodeURIComponent(c.clientSecret ?? '')}`).toString('base64')}`;
}

/** Collects Set-Cookie values into a Cookie header. */
export class CookieJar {
  private readonly cookies = new Map<string, string>();
  take(res: LightMyRequestResponse): void {
    const set = res.headers['set-cookie'];
    for (const line of Array.isArray(set) ? set : set ? [set] : []) {
      const [pair] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq);
      const value = pair!.slice(eq + 1);
      if (value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }
  get header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

export function hiddenFields(page: string): URLSearchParams {
  const out = new URLSearchParams();
  for (const m of page.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) {
    out.append(m[1]!, m[2]!.replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>'));
  }
  return out;
}

/** Signs a user in through the sign-in form; answers the browser's cookie jar. */
export async function signIn(h: Harness, username: string, password: string): Promise<CookieJar> {
  const jar = new CookieJar();
  const page = await h.inject({ url: '/applinks/login' });
  jar.take(page);
  const form = hiddenFields(page.body);
  form.set('username', username);
  form.set('password', password);
  const res = await h.inject({ method: 'POST', url: '/applinks/login', headers: { cookie: jar.header, 'content-type': 'application/x-www-form-urlencoded' }, payload: form.toString() });
  expect(res.statusCode, res.body).toBe(303);
  jar.take(res);
  return jar;
}

export function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

export function authorizeUrl(params: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) q.set(k, v);
  return `${AUTHORIZE}?${q.toString()}`;
}

/** Posts the consent form shown by a GET of the authorization endpoint; answers the redirect. */
export async function decide(h: Harness, jar: CookieJar, consentPage: LightMyRequestResponse, decision: 'allow' | 'deny'): Promise<LightMyRequestResponse> {
  jar.take(consentPage);
  const form = hiddenFields(consentPage.body);
  form.set('decision', decision);
  return h.inject({ method: 'POST', url: AUTHORIZE, headers: { cookie: jar.header, 'content-type': 'application/x-www-form-urlencoded' }, payload: form.toString() });
}

/** The query of a redirect's Location. */
export function redirectParams(res: LightMyRequestResponse): URLSearchParams {
  expect(res.statusCode, res.body).toBe(303);
  return new URL(String(res.headers.location)).searchParams;
}

/** Runs the code flow with consent as `jar`'s user; answers the code and the verifier. */
export async function obtainCode(
  h: Harness,
  jar: CookieJar,
  client: RegisteredClient,
  extra: Record<string, string | undefined> = {},
): Promise<{ code: string; verifier: string; state: string }> {
  const { verifier, challenge } = pkce();
  const state = randomBytes(8).toString('hex');
  const url = authorizeUrl({ response_type: 'code', client_id: client.clientId, redirect_uri: REDIRECT, state, code_challenge: challenge, code_challenge_method: 'S256', ...extra });
  let res = await h.inject({ url, headers: { cookie: jar.header } });
  if (res.statusCode === 200) res = await decide(h, jar, res, 'allow');
  const params = redirectParams(res);
  expect(params.get('state')).toBe(state);
  const code = params.get('code');
  expect(code, String(res.headers.location)).toMatch(/^alac_/);
  return { code: code!, verifier, state };
}

export function form(params: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) q.set(k, v);
  return q.toString();
}

/** POSTs a form to a token-family endpoint, authenticating with Basic when the client has a secret. */
export async function post(h: Harness, url: string, client: RegisteredClient | null, params: Record<string, string | undefined>, headers: Record<string, string> = {}) {
  return h.inject({
    method: 'POST',
    url,
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(client?.clientSecret ? { authorization: basicClient(client) } : {}), ...headers },
    payload: form({ ...(client && !client.clientSecret ? { client_id: client.clientId } : {}), ...params }),
  });
}

export interface Tokens {
  access_token: string;
  refresh_token?: string;
  token_type: string;
  expires_in: number;
  scope: string;
}

export async function exchange(h: Harness, client: RegisteredClient, code: { code: string; verifier: string }): Promise<Tokens> {
  const res = await post(h, TOKEN, client, { grant_type: 'authorization_code', code: code.code, redirect_uri: REDIRECT, code_verifier: code.verifier });
  expect(res.statusCode, res.body).toBe(200);
  return json<Tokens>(res);
}

/**
 * A harness listening on a loopback port whose URL is its base URL (real clients check the
 * issuer). The port is picked before the server exists, so another process may take it first:
 * then another is tried.
 */
export async function listeningHarness(dialect: DialectName, config: Record<string, unknown> = {}): Promise<{ h: Harness; base: string }> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const h = await createHarness(dialect, { config: { baseUrl: base, ...config } });
    try {
      await h.app.listen({ port, host: '127.0.0.1' });
      return { h, base };
    } catch (error) {
      await h.close();
      if ((error as { code?: string }).code !== 'EADDRINUSE' || attempt >= 5) throw error;
    }
  }
}
