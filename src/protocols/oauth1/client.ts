import { randomBytes } from 'node:crypto';
import { percentEncode } from './encoding.js';
import { queryOf } from './parameters.js';
import { signatureBaseString, signBaseString, type SignatureMethod, type SigningSecrets } from './signature.js';

export interface ClientSignInput {
  method: string;
  /** Absolute URL, query included (the query is signed). */
  url: string;
  consumerKey: string;
  /** The token: undefined for a request-token call, `''` for 2-legged requests (Atlassian sends it empty). */
  token: string | undefined;
  signatureMethod: SignatureMethod;
  secrets: SigningSecrets;
  /** Further protocol parameters for the header (oauth_callback, oauth_verifier, oauth_session_handle). */
  extra?: Record<string, string>;
  /** The body parameters when the body is form-encoded: they are signed (RFC 5849 §3.4.1.3.1). */
  form?: URLSearchParams;
  /** Fixed values for tests; random and current otherwise. */
  nonce?: string;
  timestamp?: number;
}

/**
 * RFC 5849 §3.1 from the client's side: the protocol parameters, the signature over them, the
 * query and the form body, and the `Authorization: OAuth …` header carrying them (§3.5.1).
 */
export function authorizationHeader(input: ClientSignInput): string {
  const oauth: Array<[string, string]> = [
    ['oauth_consumer_key', input.consumerKey],
    ['oauth_nonce', input.nonce ?? randomBytes(16).toString('hex')],
    ['oauth_signature_method', input.signatureMethod],
    ['oauth_timestamp', String(input.timestamp ?? Math.floor(Date.now() / 1000))],
    ['oauth_version', '1.0'],
  ];
  if (input.token !== undefined) oauth.push(['oauth_token', input.token]);
  for (const [name, value] of Object.entries(input.extra ?? {})) oauth.push([name, value]);
  const signed: Array<readonly [string, string]> = [...oauth];
  for (const pair of new URLSearchParams(queryOf(input.url))) signed.push(pair);
  if (input.form) for (const pair of input.form) signed.push(pair);
  const signature = signBaseString(input.signatureMethod, signatureBaseString(input.method, input.url, signed), input.secrets);
  oauth.push(['oauth_signature', signature]);
  return `OAuth ${oauth.map(([n, v]) => `${percentEncode(n)}="${percentEncode(v)}"`).join(', ')}`;
}

/** Reads a form-encoded token response (`oauth_token=…&oauth_token_secret=…`). */
export function parseTokenResponse(body: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const [name, value] of new URLSearchParams(body.trim())) if (!out.has(name)) out.set(name, value);
  return out;
}

/** The `oauth_problem` of a provider's 401/400, from WWW-Authenticate or the body. */
export function problemOf(headers: Record<string, string | string[] | undefined>, body: string): string | undefined {
  const header = headers['www-authenticate'];
  const text = Array.isArray(header) ? header.join(', ') : header ?? '';
  const m = /oauth_problem="([^"]*)"/i.exec(text);
  if (m) {
    // A remote's header is not to be trusted to be well-formed: a bad escape is read as it is.
    try {
      return decodeURIComponent(m[1]!);
    } catch {
      return m[1]!;
    }
  }
  return parseTokenResponse(body).get('oauth_problem');
}
