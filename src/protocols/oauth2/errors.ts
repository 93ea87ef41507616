import { errorCatalog, type ErrorCode } from '../../errors/index.js';

/**
 * RFC 6749 §5.2 (and §4.1.2.1, RFC 6750 §3): `error_description` values "MUST NOT include
 * characters outside the set %x20-21 / %x23-5B / %x5D-7E": printable ASCII without `"` and `\`.
 * Anything else becomes a space or is dropped, so a message can go in a header as it is.
 */
export function errorDescription(text: string): string {
  return text
    .replace(/["\\]/g, "'")
    .replace(/[^\x20-\x7e]/g, ' ')
    .replace(/ {2,}/g, ' ')
    .trim()
    .slice(0, 500);
}

/** The OAuth 2.0 `error` value of a catalog code, or `server_error` when it has none. */
export function oauth2ErrorOf(code: ErrorCode): string {
  const spec = errorCatalog[code] as { oauth2?: string; status: number };
  if (spec.oauth2) return spec.oauth2;
  return spec.status >= 500 ? 'server_error' : 'invalid_request';
}

/** RFC 6749 §5.2: the JSON body of an error from the token (and revocation, introspection) endpoint. */
export function tokenErrorBody(error: string, description: string | undefined): { error: string; error_description?: string } {
  const d = description === undefined ? '' : errorDescription(description);
  return d ? { error, error_description: d } : { error };
}

/**
 * Adds response parameters to a redirect URI's query (RFC 6749 §4.1.2: form-encoded, and §3.1.2:
 * the registered URI's own query "MUST be retained"). Absent values are left out.
 */
export function withQuery(redirectUri: string, params: Record<string, string | undefined>): string {
  const pairs = Object.entries(params)
    .filter((e): e is [string, string] => e[1] !== undefined)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
  if (pairs.length === 0) return redirectUri;
  const sep = redirectUri.includes('?') ? (redirectUri.endsWith('?') || redirectUri.endsWith('&') ? '' : '&') : '?';
  return redirectUri + sep + pairs.join('&');
}

/**
 * RFC 6749 §4.1.2.1 with RFC 9207 §2: the error redirect of an authorization request whose
 * redirect URI was validated: `error`, `error_description`, `state` exactly as received, `iss`.
 */
export function authorizationErrorLocation(redirectUri: string, e: { error: string; description?: string; state?: string; iss: string }): string {
  const d = e.description === undefined ? undefined : errorDescription(e.description) || undefined;
  return withQuery(redirectUri, { error: e.error, error_description: d, state: e.state, iss: e.iss });
}

/** RFC 6749 §4.1.2 with RFC 9207 §2: the successful authorization response. */
export function authorizationCodeLocation(redirectUri: string, e: { code: string; state?: string; iss: string }): string {
  return withQuery(redirectUri, { code: e.code, state: e.state, iss: e.iss });
}

/**
 * RFC 6750 §3: the `WWW-Authenticate: Bearer` challenge, with `error`, `error_description` and
 * `scope` when given. Values are quoted-strings; descriptions are reduced to the allowed set.
 */
export function bearerChallenge(c: { realm: string; error?: string; description?: string; scope?: string }): string {
  const q = (v: string) => `"${v.replace(/["\\]/g, '\\$&')}"`;
  const parts = [`Bearer realm=${q(c.realm)}`];
  if (c.error) parts.push(`error=${q(c.error)}`);
  if (c.description) parts.push(`error_description=${q(errorDescription(c.description))}`);
  if (c.scope) parts.push(`scope=${q(c.scope)}`);
  return parts.join(', ');
}

/** The `WWW-Authenticate` of an invalid_client answer (RFC 6749 §5.2: the scheme the client used, or Basic). */
export function clientChallenge(realm: string): string {
  return `Basic realm="${realm.replace(/["\\]/g, '\\$&')}", charset="UTF-8"`;
}
