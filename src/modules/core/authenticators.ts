import type { Principal } from '../../auth/principal.js';
import { WARNINGS } from '../../auth/principal.js';
import type { Authenticator } from '../../auth/registry.js';
import type { AuthRequest } from '../../auth/request.js';
import { AppError } from '../../errors/index.js';
import type { ApiTokenRecord } from '../../storage/repositories/api-tokens.js';
import type { UserRecord } from '../../storage/repositories/users.js';
import { API_TOKEN_PREFIX } from '../../services/api-tokens.js';
import type { Services } from '../../services/index.js';
import { SESSION_COOKIE } from '../../services/sessions.js';
import { toPrincipalUser } from '../../services/users.js';
import { andThen, guarded, type Awaitable } from '../../util/awaitable.js';
import { readCookie } from './cookies.js';

const quote = (s: string) => `"${s.replace(/["\\]/g, '\\$&')}"`;

/** `Authorization: <scheme> <rest>` split, the scheme lower-cased (schemes are case-insensitive, RFC 9110 §11.1). */
export function authorizationScheme(req: AuthRequest): { scheme: string; value: string } | undefined {
  const header = req.headers.authorization;
  if (!header) return undefined;
  const space = header.indexOf(' ');
  if (space < 0) return { scheme: header.toLowerCase(), value: '' };
  return { scheme: header.slice(0, space).toLowerCase(), value: header.slice(space + 1).trim() };
}

/**
 * The sign-in session cookie. A stale or unknown cookie is no credential: browsers keep cookies.
 * It runs last, and never stands in for an Authorization header that no authenticator before it
 * claimed: a client that sent a credential of its own (an unknown scheme) is refused
 * (malformed_credentials) rather than served as whoever the browser is signed in as.
 */
export function sessionAuthenticator(s: Services): Authenticator {
  return {
    id: 'session',
    authenticate(req) {
      if (req.headers.authorization !== undefined) return undefined;
      const cookie = readCookie(req.headers.cookie, SESSION_COOKIE);
      if (!cookie) return undefined;
      return (async () => {
        const session = await s.sessions.resolve(cookie);
        if (!session) return undefined;
        return { user: toPrincipalUser(session.user), link: null, authType: 'session', scopes: null, connection: req.connection, warnings: [], credentialId: session.idHash };
      })();
    },
  };
}

/** Personal API tokens as `Authorization: Bearer alpat_...` (Data Center style). */
export function apiTokenAuthenticator(s: Services): Authenticator {
  const realm = quote(s.config.appName);
  return {
    id: 'api-token',
    authenticate(req) {
      const auth = authorizationScheme(req);
      if (auth?.scheme !== 'bearer' || !auth.value.startsWith(API_TOKEN_PREFIX)) return undefined;
      return guarded(() => andThen(s.apiTokens.authenticate(auth.value), ({ token, user }) => tokenPrincipal(s, token, user, req)), fail);
    },
    challenge: () => `Bearer realm=${realm}`,
  };
  function fail(error: unknown): never {
    if (error instanceof AppError) {
      error.headers['www-authenticate'] = `Bearer realm=${realm}, error="invalid_token", error_description=${quote(error.message)}`;
    }
    throw error;
  }
}

/**
 * `Authorization: Basic` with a password (flagged as weaker, refusable by configuration) or
 * with an API token as the password (Cloud style, `username:alpat_...`).
 */
export function basicAuthenticator(s: Services): Authenticator {
  const challenge = `Basic realm=${quote(s.config.appName)}, charset="UTF-8"`;
  const fail = (error: unknown): never => {
    if (error instanceof AppError && error.status === 401) error.headers['www-authenticate'] = challenge;
    throw error;
  };
  return {
    id: 'basic',
    authenticate(req) {
      const auth = authorizationScheme(req);
      if (auth?.scheme !== 'basic') return undefined;
      return guarded(() => claim(auth.value, req), fail);
    },
    challenge: () => challenge,
  };
  function claim(value: string, req: AuthRequest): Awaitable<Principal> {
    const decoded = BASE64.test(value) ? Buffer.from(value, 'base64').toString('utf8') : '';
    const colon = decoded.indexOf(':');
    if (colon <= 0) throw new AppError('malformed_credentials', { message: 'Basic credentials must be base64 of username:password.' });
    const username = decoded.slice(0, colon);
    const secret = decoded.slice(colon + 1);
    if (secret.startsWith(API_TOKEN_PREFIX)) {
      return andThen(s.apiTokens.authenticate(secret), ({ token, user }) => {
        if (user.username.toLowerCase() !== username.toLowerCase()) {
          throw new AppError('invalid_credentials', { message: 'The API token does not belong to this user.' });
        }
        return tokenPrincipal(s, token, user, req);
      });
    }
    if (!s.config.basicPasswordAuth) throw new AppError('password_auth_disabled');
    return andThen(s.signIn.verify(username, secret, 'basic', req.remoteAddress), (user) => principalFor(user, 'basic', req, PASSWORD_WARNINGS));
  }
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const PASSWORD_WARNINGS = [WARNINGS['password-auth']];

function tokenPrincipal(s: Services, token: ApiTokenRecord, user: UserRecord, req: AuthRequest): Awaitable<Principal> {
  const p = principalFor(user, 'api-token', req, [], token.id);
  if (!token.linkId) return p;
  return andThen(s.links.cached(token.linkId), (link) => {
    if (!link) throw new AppError('credential_revoked', { message: 'The application link this token was issued for was deleted.' });
    p.link = { id: link.id, name: link.name };
    return p;
  });
}

function principalFor(
  user: Parameters<typeof toPrincipalUser>[0],
  authType: string,
  req: AuthRequest,
  warnings: Principal['warnings'],
  credentialId?: string,
): Principal {
  const p: Principal = { user: toPrincipalUser(user), link: null, authType, scopes: null, connection: req.connection, warnings };
  if (credentialId) p.credentialId = credentialId;
  return p;
}
