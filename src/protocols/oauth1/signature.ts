import { createHmac, createPrivateKey, createPublicKey, createSecretKey, sign as rsaSign, timingSafeEqual, verify as rsaVerify, type KeyObject } from 'node:crypto';
import { percentEncode } from './encoding.js';

/** The signature methods applinks knows (RFC 5849 §3.4, plus the SHA-256 variants). */
export const SIGNATURE_METHODS = ['RSA-SHA1', 'RSA-SHA256', 'HMAC-SHA1', 'HMAC-SHA256', 'PLAINTEXT'] as const;
export type SignatureMethod = (typeof SIGNATURE_METHODS)[number];

export function isSignatureMethod(value: string): value is SignatureMethod {
  return (SIGNATURE_METHODS as readonly string[]).includes(value);
}

export const isRsaMethod = (m: SignatureMethod) => m === 'RSA-SHA1' || m === 'RSA-SHA256';

/**
 * RFC 5849 §3.4.1.2: the base string URI, scheme and host lower-cased, the default port (80 for
 * http, 443 for https) dropped, the path as sent, no query or fragment. `http://EXAMPLE.COM:80/r%20v/X?id=123`
 * gives `http://example.com/r%20v/X`. Throws for a URL that is not absolute http(s).
 */
export function baseStringUri(url: string): string {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([^?#]*)/.exec(url);
  if (!m) throw new TypeError('not an absolute URL');
  const scheme = m[1]!.toLowerCase();
  if (scheme !== 'http' && scheme !== 'https') throw new TypeError('not an http(s) URL');
  let authority = m[2]!.toLowerCase();
  const at = authority.lastIndexOf('@');
  if (at >= 0) authority = authority.slice(at + 1);
  const defaultPort = scheme === 'http' ? ':80' : ':443';
  if (authority.endsWith(defaultPort)) authority = authority.slice(0, -defaultPort.length);
  const path = m[3] || '/';
  return `${scheme}://${authority}${path}`;
}

/** Names and values encoded (RFC 5849 §3.6) and sorted by encoded name, then value; `oauth_signature` left out. */
function sortedEncodedPairs(pairs: Iterable<readonly [string, string]>): Array<[string, string]> {
  const encoded: Array<[string, string]> = [];
  for (const [name, value] of pairs) {
    if (name === 'oauth_signature') continue;
    encoded.push([percentEncode(name), percentEncode(value)]);
  }
  // By encoded name, then encoded value (sorting the joined strings would put "a=" after "a-b=").
  // Encoded forms are ASCII, so string order is byte order.
  return encoded.sort(compareEncodedPairs);
}

function compareEncodedPairs(a: [string, string], b: [string, string]): number {
  if (a[0] !== b[0]) return a[0] < b[0] ? -1 : 1;
  return a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0;
}

/**
 * RFC 5849 §3.4.1.3.2: names and values encoded, sorted by name then value (byte order of the
 * encoded forms, duplicates kept), joined as `name=value` with `&`. `oauth_signature` is left out.
 */
export function normalizeParameters(pairs: Iterable<readonly [string, string]>): string {
  return sortedEncodedPairs(pairs)
    .map(([n, v]) => `${n}=${v}`)
    .join('&');
}

/**
 * The normalized parameters encoded once more, as the base string holds them (§3.4.1.1 step 5):
 * each piece is unreserved characters and `%`, so only `%` (→ `%25`), `=` (→ `%3D`) and `&`
 * (→ `%26`) change; built directly, without a second pass over the whole string.
 */
function encodedNormalizedParameters(pairs: Iterable<readonly [string, string]>): string {
  const sorted = sortedEncodedPairs(pairs);
  const again = (piece: string) => (piece.includes('%') ? piece.replaceAll('%', '%25') : piece);
  let out = '';
  for (let i = 0; i < sorted.length; i++) out += `${i === 0 ? '' : '%26'}${again(sorted[i]![0])}%3D${again(sorted[i]![1])}`;
  return out;
}

/** Encoded base string URIs by the URL before its query: a gateway sees the same few paths again and again. */
const encodedUris = new Map<string, string>();

function encodedBaseStringUri(url: string): string {
  const q = url.search(/[?#]/);
  const key = q < 0 ? url : url.slice(0, q);
  let encoded = encodedUris.get(key);
  if (encoded === undefined) {
    encoded = percentEncode(baseStringUri(key));
    if (encodedUris.size >= 1000) encodedUris.clear();
    encodedUris.set(key, encoded);
  }
  return encoded;
}

/** RFC 5849 §3.4.1.1: `METHOD&encoded base string URI&encoded normalized parameters`. */
export function signatureBaseString(method: string, url: string, pairs: Iterable<readonly [string, string]>): string {
  return `${percentEncode(method.toUpperCase())}&${encodedBaseStringUri(url)}&${encodedNormalizedParameters(pairs)}`;
}

/** The key material of one signature: shared secrets for HMAC and PLAINTEXT, an RSA key for RSA. */
export interface SigningSecrets {
  consumerSecret?: string;
  tokenSecret?: string;
  /** `hmacKeyObject(consumerSecret, tokenSecret)` made in advance (HMAC only; saves preparing the key per request). */
  hmacKey?: KeyObject;
  /** The consumer's RSA private key (signing) or public key (verifying). */
  rsaKey?: KeyObject;
}

/** RFC 5849 §3.4.2 and §3.4.4: `encode(consumer secret)&encode(token secret)`, the `&` always present. */
export function hmacKey(consumerSecret: string, tokenSecret: string | undefined): string {
  return `${percentEncode(consumerSecret)}&${percentEncode(tokenSecret ?? '')}`;
}

/** The HMAC key of §3.4.2 as a KeyObject, for a verifier that checks many requests with the same secrets. */
export function hmacKeyObject(consumerSecret: string, tokenSecret: string | undefined): KeyObject {
  return createSecretKey(Buffer.from(hmacKey(consumerSecret, tokenSecret), 'utf8'));
}

/** Signs a base string; answers the `oauth_signature` value (base64, not yet percent-encoded). */
export function signBaseString(method: SignatureMethod, baseString: string, secrets: SigningSecrets): string {
  switch (method) {
    case 'HMAC-SHA1':
    case 'HMAC-SHA256':
      return createHmac(method === 'HMAC-SHA1' ? 'sha1' : 'sha256', secrets.hmacKey ?? hmacKey(secrets.consumerSecret ?? '', secrets.tokenSecret))
        .update(baseString, 'utf8')
        .digest('base64');
    case 'PLAINTEXT':
      return hmacKey(secrets.consumerSecret ?? '', secrets.tokenSecret);
    case 'RSA-SHA1':
    case 'RSA-SHA256':
      if (!secrets.rsaKey) throw new TypeError('RSA signing needs a private key');
      return rsaSign(method === 'RSA-SHA1' ? 'sha1' : 'sha256', Buffer.from(baseString, 'utf8'), secrets.rsaKey).toString('base64');
  }
}

/**
 * Checks `oauth_signature` against a base string, in constant time for the shared-secret
 * methods. RSA (RFC 5849 §3.4.3): RSASSA-PKCS1-v1_5 verification with the consumer's public key.
 */
export function verifySignature(method: SignatureMethod, baseString: string, signature: string, secrets: SigningSecrets): boolean {
  if (isRsaMethod(method)) {
    if (!secrets.rsaKey) return false;
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(signature)) return false;
    return rsaVerify(method === 'RSA-SHA1' ? 'sha1' : 'sha256', Buffer.from(baseString, 'utf8'), secrets.rsaKey, Buffer.from(signature, 'base64'));
  }
  const expected = Buffer.from(signBaseString(method, baseString, secrets), 'utf8');
  const given = Buffer.from(signature, 'utf8');
  if (expected.length !== given.length) {
    timingSafeEqual(expected, expected);
    return false;
  }
  return timingSafeEqual(expected, given);
}

/** An RSA public key a consumer registered, parsed and measured. */
export interface ConsumerPublicKey {
  key: KeyObject;
  bits: number;
  /** The SubjectPublicKeyInfo as PEM, the form we store and show. */
  pem: string;
}

/**
 * Reads an RSA public key in the forms administrators paste: PEM `PUBLIC KEY` (X.509
 * SubjectPublicKeyInfo), PEM `RSA PUBLIC KEY` (PKCS#1), a PEM certificate, or the bare base64
 * of a SubjectPublicKeyInfo (what Atlassian's consumer-info and many guides show). Throws a
 * TypeError saying why it is not one.
 */
export function parseRsaPublicKey(text: string): ConsumerPublicKey {
  const trimmed = text.trim();
  let key: KeyObject;
  try {
    if (/-----BEGIN CERTIFICATE-----/.test(trimmed)) {
      key = createPublicKey(trimmed);
    } else if (/-----BEGIN (RSA )?PUBLIC KEY-----/.test(trimmed)) {
      key = createPublicKey({ key: trimmed, format: 'pem' });
    } else if (/-----BEGIN/.test(trimmed)) {
      throw new TypeError('not a public key (is it a private key?)');
    } else {
      const der = Buffer.from(trimmed.replace(/\s+/g, ''), 'base64');
      if (der.length === 0 || !/^[A-Za-z0-9+/=\s]+$/.test(trimmed)) throw new TypeError('not PEM or base64');
      key = createPublicKey({ key: der, format: 'der', type: 'spki' });
    }
  } catch (error) {
    if (error instanceof TypeError && !('code' in error)) throw error;
    throw new TypeError('the key does not parse as an RSA public key');
  }
  if (key.asymmetricKeyType !== 'rsa') throw new TypeError(`the key is ${key.asymmetricKeyType ?? 'not RSA'}, not RSA`);
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  return { key, bits, pem: key.export({ format: 'pem', type: 'spki' }).toString() };
}

/** The bare base64 of a key's SubjectPublicKeyInfo (the consumer-info `<publicKey>` form). */
export function publicKeyBase64(key: KeyObject): string {
  return (key.type === 'private' ? createPublicKey(key) : key).export({ format: 'der', type: 'spki' }).toString('base64');
}

/** A private key from PEM (our own consumer key, opened from its sealed form). */
export function privateKeyFromPem(pem: string): KeyObject {
  return createPrivateKey(pem);
}
