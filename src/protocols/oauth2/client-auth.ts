import { AppError } from '../../errors/index.js';
import type { OAuthParams } from './params.js';

export type ClientAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'none';

/** How a request identified its client. `none` is a public client naming itself (RFC 6749 §2.1). */
export type ClientCredentials =
  | { method: 'client_secret_basic' | 'client_secret_post'; clientId: string; clientSecret: string }
  | { method: 'none'; clientId: string };

/**
 * RFC 6749 Appendix B decoding (the inverse of the form-encoding §2.3.1 applies to the Basic
 * user name and password): `+` is a space, `%XX` a byte of UTF-8. Undefined when malformed.
 */
export function formDecode(value: string): string | undefined {
  // Most ids and secrets are unreserved characters: nothing to decode.
  if (!value.includes('%') && !value.includes('+')) return value;
  try {
    return decodeURIComponent(value.replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
}

/** RFC 6749 §2.3.1 encoding of a client id or secret for the Basic scheme. */
export function formEncode(value: string): string {
  return encodeURIComponent(value).replace(/%20/g, '+').replace(/[!'()*~]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** The `Basic` credentials of an Authorization header, undefined when the scheme is another. */
function basicCredentials(header: string): { clientId: string; clientSecret: string } | undefined {
  const space = header.indexOf(' ');
  const scheme = (space < 0 ? header : header.slice(0, space)).toLowerCase();
  if (scheme !== 'basic') return undefined;
  const value = space < 0 ? '' : header.slice(space + 1).trim();
  const decoded = BASE64.test(value) ? Buffer.from(value, 'base64').toString('utf8') : '';
  const colon = decoded.indexOf(':');
  const id = colon > 0 ? formDecode(decoded.slice(0, colon)) : undefined;
  const secret = colon > 0 ? formDecode(decoded.slice(colon + 1)) : undefined;
  if (!id || secret === undefined) {
    throw new AppError('oauth2_invalid_client', { message: 'The Basic credentials must be base64 of form-encoded client_id:client_secret (RFC 6749 §2.3.1).' });
  }
  return { clientId: id, clientSecret: secret };
}

/**
 * Reads the client's authentication from a token, revocation or introspection request:
 * `client_secret_basic` (RFC 6749 §2.3.1, id and secret form-encoded inside Basic),
 * `client_secret_post` (form fields), or a bare `client_id` (a public client). Using Basic and
 * a form secret together is invalid_request (§2.3: "MUST NOT use more than one authentication
 * method in each request"). Another Authorization scheme is left to the caller (`undefined`
 * header). Answers undefined when the request names no client at all.
 */
export function parseClientAuthentication(authorization: string | undefined, params: OAuthParams): ClientCredentials | undefined {
  const formId = params.get('client_id');
  const formSecret = params.get('client_secret');
  const basic = authorization ? basicCredentials(authorization) : undefined;
  if (basic) {
    if (formSecret !== undefined) {
      throw new AppError('oauth2_invalid_request', { message: 'The client authenticated with both client_secret_basic and client_secret_post; use one.' });
    }
    if (formId !== undefined && formId !== basic.clientId) {
      throw new AppError('oauth2_invalid_request', { message: 'client_id in the body differs from the one in the Authorization header.' });
    }
    return { method: 'client_secret_basic', ...basic };
  }
  if (formSecret !== undefined) {
    if (formId === undefined) throw new AppError('oauth2_invalid_request', { message: 'client_secret was sent without client_id.' });
    return { method: 'client_secret_post', clientId: formId, clientSecret: formSecret };
  }
  return formId === undefined ? undefined : { method: 'none', clientId: formId };
}
