import type { Principal } from '../../auth/principal.js';
import type { Authenticator } from '../../auth/registry.js';
import type { AuthRequest } from '../../auth/request.js';
import { AppError } from '../../errors/index.js';
import { bearerChallenge } from '../../protocols/oauth2/errors.js';
import { capAt, closure } from '../../protocols/oauth2/scopes.js';
import type { Services } from '../../services/index.js';
import { toPrincipalUser } from '../../services/users.js';
import { OAUTH2_TYPE, type Client } from './clients.js';
import { andThen, guarded, type Awaitable } from '../../util/awaitable.js';
import { ACCESS_TOKEN_PREFIX, type AccessGrant, type OAuth2Service } from './service.js';

const BEARER_PREFIX = /^bearer +alat_/i;
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * RFC 6750 §2.1: `Authorization: Bearer alat_...`. Claims only our access tokens (anything else
 * is another authenticator's); a bad one is 401 with `WWW-Authenticate: Bearer
 * error="invalid_token"` (§3.1), never anonymous. Runs before the API-token authenticator.
 */
export function bearerAuthenticator(s: Services, oauth: OAuth2Service): Authenticator {
  const realm = s.config.appName;
  // The scopes of a cached token record capped at its client's scopes, expanded to what they
  // include; recomputed when the client's configuration (a new Client object) changes.
  const scopes = new WeakMap<object, { client: Client; granted: readonly string[] }>();
  return {
    id: OAUTH2_TYPE,
    authenticate(req: AuthRequest): Awaitable<Principal> | undefined {
      const header = req.headers.authorization;
      // A first-letter check before the regex: every other scheme (OAuth's long headers too) leaves at once.
      if (header === undefined || (header.charCodeAt(0) | 0x20) !== 0x62 || !BEARER_PREFIX.test(header)) return undefined;
      const token = header.slice(header.indexOf(ACCESS_TOKEN_PREFIX)).trim();
      return guarded(() => andThen(oauth.accessToken(token), (grant) => principalOf(grant, req)), fail);
    },
  };
  function principalOf({ record, user, link, client }: AccessGrant, req: AuthRequest): Principal {
    let hit = scopes.get(record);
    if (hit?.client !== client) scopes.set(record, (hit = { client, granted: closure(capAt(record.scopes, client.scopes)) }));
    let granted = hit.granted;
    // A user who lost administrator rights since the grant takes them from the token at once
    // (a closure lists READ, WRITE first; what follows is administration).
    if (!user.isAdmin && granted.length > 2) granted = granted.slice(0, 2);
    return {
      user: toPrincipalUser(user),
      link: { id: link.id, name: link.name },
      authType: OAUTH2_TYPE,
      scopes: granted,
      connection: req.connection,
      warnings: [],
      credentialId: record.grantId ?? record.tokenHash,
    };
  }
  function fail(error: unknown): never {
    if (error instanceof AppError && error.status === 401) {
      error.headers['www-authenticate'] = bearerChallenge({ realm, error: 'invalid_token', description: error.message });
    }
    throw error;
  }
}

/**
 * The scope rule for requests bound for the host: a token without WRITE (READ only) may use only
 * safe methods. RFC 6750 §3.1: insufficient_scope is 403 with the scope that would do.
 */
export function scopeRule(s: Services) {
  const realm = s.config.appName;
  return (principal: Principal, req: AuthRequest): void => {
    if (principal.authType !== OAUTH2_TYPE || SAFE_METHODS.has(req.method)) return;
    // Principal scopes are the closure (WRITE → READ WRITE), so WRITE or above lists WRITE.
    if (principal.scopes?.includes('WRITE')) return;
    const description = `A READ token may only use GET, HEAD and OPTIONS; ${req.method === 'UNKNOWN' ? 'a request whose method the proxy does not name' : req.method} needs WRITE.`;
    throw new AppError('oauth2_insufficient_scope', {
      message: description,
      headers: { 'www-authenticate': bearerChallenge({ realm, error: 'insufficient_scope', description, scope: 'WRITE' }) },
    });
  };
}

/**
 * RFC 6750 §3.1 for a `Bearer` header nobody claimed (not an access token of ours, nor an API
 * token): no token at all is `invalid_request` (400); any other token is `invalid_token` (401).
 * Runs after every token authenticator and before the session cookie, so a bad bearer token is
 * never answered from the browser's session instead.
 */
export function unclaimedBearerAuthenticator(s: Services): Authenticator {
  const realm = s.config.appName;
  return {
    id: 'bearer-unclaimed',
    authenticate(req: AuthRequest): undefined {
      const header = req.headers.authorization;
      if (header === undefined || !/^bearer(?: |$)/i.test(header)) return undefined;
      if (header.slice(6).trim() === '') {
        const error = new AppError('oauth2_invalid_request', { message: 'The Authorization header names the Bearer scheme but carries no token.' });
        error.headers['www-authenticate'] = bearerChallenge({ realm, error: 'invalid_request', description: error.message });
        throw error;
      }
      const error = new AppError('oauth2_invalid_token', { message: 'The access token is not valid.' });
      error.headers['www-authenticate'] = bearerChallenge({ realm, error: 'invalid_token', description: error.message });
      throw error;
    },
  };
}
