import { execFileSync } from 'node:child_process';
import { createHmac, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import OAuth from 'oauth-1.0a';
import { expect } from 'vitest';
import { json, type Harness } from './harness.js';
import { CookieJar, hiddenFields } from './oauth2.js';

export const REQUEST_TOKEN = '/plugins/servlet/oauth/request-token';
export const AUTHORIZE = '/plugins/servlet/oauth/authorize';
export const ACCESS_TOKEN = '/plugins/servlet/oauth/access-token';
export const CALLBACK = 'https://addin.example/oauth/callback';

/** One RSA key pair for every test that needs a consumer key (generating one costs ~50 ms). */
let shared: { privateKey: KeyObject; publicPem: string } | undefined;
export function consumerKeyPair(): { privateKey: KeyObject; publicPem: string } {
  if (!shared) {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    shared = { privateKey, publicPem: publicKey.export({ format: 'pem', type: 'spki' }).toString() };
  }
  return shared;
}

export interface TestConsumer {
  linkId: string;
  key: string;
  method: 'RSA-SHA1' | 'HMAC-SHA1';
  privateKey: KeyObject | undefined;
  secret: string | undefined;
}

/** Creates a link with an incoming OAuth 1.0a consumer through the admin API. */
export async function registerConsumer(h: Harness, options: { method?: 'RSA-SHA1' | 'HMAC-SHA1'; config?: Record<string, unknown>; name?: string } = {}): Promise<TestConsumer> {
  const method = options.method ?? 'RSA-SHA1';
  const key = `consumer-${randomBytes(4).toString('hex')}`;
  const secret = method === 'HMAC-SHA1' ? `shared-${randomBytes(12).toString('hex')}` : undefined;
  const res = await h.inject({
    method: 'POST',
    url: '/api/v1/links',
    headers: { authorization: h.adminBasic },
    payload: {
      name: options.name ?? `Add-in ${key}`,
      incoming: {
        oauth1: {
          consumerKey: key,
          name: 'Outlook add-in',
          ...(method === 'RSA-SHA1' ? { publicKey: consumerKeyPair().publicPem } : { sharedSecret: secret }),
          ...options.config,
        },
      },
    },
  });
  expect(res.statusCode, res.body).toBe(201);
  return { linkId: json<{ id: string }>(res).id, key, method, privateKey: method === 'RSA-SHA1' ? consumerKeyPair().privateKey : undefined, secret };
}

/**
 * npm oauth-1.0a, a signer nobody on this team wrote, configured for the consumer. `now` (ms)
 * and `nonce` fix what it would take from the wall clock and chance (tests move a manual clock).
 */
export function signerFor(c: Pick<TestConsumer, 'key' | 'method' | 'privateKey' | 'secret'>, fixed: { now?: number; nonce?: string } = {}): OAuth {
  const oauth = new OAuth({
    consumer: { key: c.key, secret: c.secret ?? '' },
    signature_method: c.method,
    hash_function: (base, key) =>
      c.method === 'RSA-SHA1' ? sign('sha1', Buffer.from(base), c.privateKey!).toString('base64') : createHmac('sha1', key).update(base).digest('base64'),
  });
  if (fixed.now !== undefined) oauth.getTimeStamp = () => Math.floor(fixed.now! / 1000);
  if (fixed.nonce !== undefined) oauth.getNonce = () => fixed.nonce!;
  return oauth;
}

export interface SignOptions {
  method?: string;
  /** Path and query on the harness base URL (http://applinks.test). */
  path: string;
  token?: { key: string; secret: string };
  /** Extra OAuth parameters to sign and send in the header (oauth_callback, oauth_verifier...). */
  oauth?: Record<string, string>;
  /** Form body parameters (signed). */
  form?: Record<string, string>;
  base?: string;
  /** Sign at this time (ms) instead of the wall clock; signedInject uses the harness clock. */
  now?: number;
  nonce?: string;
}

/** The Authorization header of a signed request. */
export function authHeader(c: TestConsumer, o: SignOptions): string {
  const oauth = signerFor(c, { ...(o.now !== undefined ? { now: o.now } : {}), ...(o.nonce !== undefined ? { nonce: o.nonce } : {}) });
  const url = `${o.base ?? 'http://applinks.test'}${o.path}`;
  const data = { ...(o.oauth ?? {}), ...(o.form ?? {}) };
  const signed = oauth.authorize({ url, method: o.method ?? 'GET', data }, o.token);
  // Only the protocol parameters go in the header; body parameters stay in the body.
  const header: Record<string, string | number> = {};
  for (const [k, v] of Object.entries(signed)) if (k.startsWith('oauth_') || k === 'xoauth_requestor_id') header[k] = v as string;
  for (const k of Object.keys(o.form ?? {})) delete header[k];
  for (const [k, v] of new URL(url).searchParams) if (header[k] === v) delete header[k];
  return oauth.toHeader(header as unknown as OAuth.Authorization).Authorization;
}

/** Sends a signed request through inject. */
export function signedInject(h: Harness, c: TestConsumer, o: SignOptions, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
  return h.inject({
    method: (o.method ?? 'GET') as 'GET',
    url: o.path,
    headers: { authorization: authHeader(c, { now: h.clock.now(), ...o }), ...(o.form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}), ...headers },
    ...(o.form ? { payload: new URLSearchParams(o.form).toString() } : {}),
  });
}

export function formOf(res: LightMyRequestResponse): Record<string, string> {
  return Object.fromEntries(new URLSearchParams(res.body));
}

export function problemOf(res: LightMyRequestResponse): string | undefined {
  return formOf(res).oauth_problem;
}

/** Request token → consent (Allow) as the jar's user → access token. */
export async function dance(h: Harness, c: TestConsumer, jar: CookieJar, decision: 'allow' | 'deny' = 'allow') {
  const rt = await signedInject(h, c, { method: 'POST', path: REQUEST_TOKEN, oauth: { oauth_callback: CALLBACK } });
  expect(rt.statusCode, rt.body).toBe(200);
  const request = formOf(rt);
  const page = await h.inject({ url: `${AUTHORIZE}?oauth_token=${encodeURIComponent(request.oauth_token!)}`, headers: { cookie: jar.header } });
  expect(page.statusCode, page.body).toBe(200);
  jar.take(page);
  const form = hiddenFields(page.body);
  if (decision === 'allow') form.set('approve', 'Allow');
  else form.set('deny', 'Deny');
  const decided = await h.inject({ method: 'POST', url: AUTHORIZE, headers: { cookie: jar.header, 'content-type': 'application/x-www-form-urlencoded' }, payload: form.toString() });
  expect(decided.statusCode, decided.body).toBe(303);
  const back = new URL(String(decided.headers.location));
  expect(back.origin + back.pathname).toBe(CALLBACK);
  expect(back.searchParams.get('oauth_token')).toBe(request.oauth_token);
  const verifier = back.searchParams.get('oauth_verifier')!;
  const requestToken = { key: request.oauth_token!, secret: request.oauth_token_secret! };
  const at = await signedInject(h, c, { method: 'POST', path: ACCESS_TOKEN, token: requestToken, oauth: { oauth_verifier: verifier } });
  return { requestToken, verifier, accessResponse: at, access: at.statusCode === 200 ? { key: formOf(at).oauth_token!, secret: formOf(at).oauth_token_secret! } : undefined, body: formOf(at) };
}

/**
 * An XML document as Python's xml.etree reads it from the raw bytes (a parser nobody here wrote;
 * it refuses what is not well-formed): the root element's name and its children, in order, with their text.
 */
export function xmlAsPythonReadsIt(raw: Buffer): { root: string; children: Array<[string, string]> } {
  const script = 'import json, sys, xml.etree.ElementTree as ET\nroot = ET.fromstring(sys.stdin.buffer.read())\nprint(json.dumps({"root": root.tag, "children": [[c.tag, c.text or ""] for c in root]}))';
  return JSON.parse(execFileSync('/usr/bin/python3', ['-c', script], { input: raw, encoding: 'utf8' })) as { root: string; children: Array<[string, string]> };
}
