import { AppError } from '../../errors/index.js';
import { isUriText } from '../../util/text.js';

/**
 * A loopback redirect URI as RFC 8252 §7.3 defines it: `http`, an IP literal of the loopback
 * interface, any port. `localhost` is deliberately not one (§8.3: NOT RECOMMENDED, a name can be
 * resolved elsewhere). Groups: host, port, rest (path, query).
 */
const LOOPBACK = /^http:\/\/(127\.0\.0\.1|\[::1\])(?::(\d{1,5}))?((?:[/?].*)?)$/;

export interface RedirectRules {
  /** Accept plain http redirect URIs that are not loopback (development only; a dangerous switch). */
  dangerouslyAllowHttp: boolean;
}

/** True for an RFC 8252 §7.3 loopback redirect URI. */
export function isLoopbackRedirect(uri: string): boolean {
  const m = LOOPBACK.exec(uri);
  return m !== null && (m[2] === undefined || Number(m[2]) <= 65535);
}

/**
 * Checks a redirect URI an admin or developer registers. RFC 6749 §3.1.2: absolute, no fragment;
 * §3.1.2.1 and RFC 8252 §8.3: TLS, except loopback redirects of native apps. No credentials in
 * the URI. Throws validation_failed naming the field; answers the URI unchanged (matching is by
 * exact string, so what is registered is what must be sent).
 */
export function checkRedirectUriRegistration(uri: string, rules: RedirectRules, field = 'redirectUris'): string {
  if (uri.length > 2000 || !isUriText(uri)) {
    throw new AppError('validation_failed', {
      field,
      message: `${field}: a redirect URI is at most 2000 characters of printable ASCII (RFC 3986): no spaces or control characters, and other characters percent-encoded.`,
    });
  }
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new AppError('validation_failed', { field, message: `${field}: "${uri}" is not an absolute URI.` });
  }
  if (uri.includes('#')) throw new AppError('validation_failed', { field, message: `${field}: a redirect URI must not contain a fragment (RFC 6749 §3.1.2).` });
  if (url.username || url.password) throw new AppError('validation_failed', { field, message: `${field}: a redirect URI must not contain credentials.` });
  if (url.protocol === 'https:') return uri;
  if (url.protocol === 'http:' && (isLoopbackRedirect(uri) || rules.dangerouslyAllowHttp)) return uri;
  if (url.protocol === 'http:') {
    throw new AppError('validation_failed', {
      field,
      message: `${field}: "${uri}" must use https; plain http is accepted only for loopback redirects of native apps (http://127.0.0.1 or http://[::1], RFC 8252 §7.3).`,
    });
  }
  throw new AppError('validation_failed', { field, message: `${field}: "${uri}" must be an https URI (or an http loopback URI for native apps).` });
}

/** The loopback URI with its port removed, for comparison (RFC 8252 §7.3: any port at request time). */
function withoutPort(uri: string): string | undefined {
  const m = LOOPBACK.exec(uri);
  if (!m || (m[2] !== undefined && Number(m[2]) > 65535)) return undefined;
  return `http://${m[1]}${m[3]}`;
}

/**
 * RFC 6749 §3.1.2.3 with simple string comparison (RFC 3986 §6.2.1): the requested redirect URI
 * must be one of the registered ones, character for character, except that a loopback redirect
 * may use any port (RFC 8252 §7.3). Answers the URI to redirect to, or undefined.
 */
export function matchRedirectUri(registered: readonly string[], requested: string): string | undefined {
  if (registered.includes(requested)) return requested;
  const bare = withoutPort(requested);
  if (bare === undefined) return undefined;
  return registered.some((r) => withoutPort(r) === bare) ? requested : undefined;
}

/**
 * The redirect URI of an authorization request (RFC 6749 §3.1.2.3 and §4.1.1): the requested one
 * when it matches a registration; when absent, the only registered one (a client with several
 * must say which). Throws oauth2_invalid_request; the caller shows it on a page, never redirects.
 */
export function resolveRedirectUri(registered: readonly string[], requested: string | undefined): string {
  let match: string | undefined;
  if (requested === undefined) {
    if (registered.length === 0) throw new AppError('oauth2_invalid_request', { message: 'The application has no registered redirect URI: it cannot ask users for authorization.' });
    if (registered.length > 1) throw new AppError('oauth2_invalid_request', { message: 'redirect_uri is required: the application has several registered redirect URIs.' });
    match = registered[0]!;
  } else {
    match = matchRedirectUri(registered, requested);
    if (match === undefined) throw new AppError('oauth2_invalid_request', { message: 'The redirect_uri is not registered for this application.' });
  }
  // Registered before registrations were held to URI characters: shown on a page, since no
  // browser could be sent there.
  if (!isUriText(match)) throw new AppError('oauth2_invalid_request', { message: 'The registered redirect URI is not a valid URI (characters outside RFC 3986); an administrator must correct it.' });
  return match;
}
