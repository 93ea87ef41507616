import type { Principal } from '../../auth/principal.js';
import type { Authenticator } from '../../auth/registry.js';
import type { AuthRequest } from '../../auth/request.js';
import { collectParameters, isOAuthAuthorization, MalformedOAuth, queryOf } from '../../protocols/oauth1/parameters.js';
import { oauthChallenge } from '../../protocols/oauth1/problems.js';
import type { Services } from '../../services/index.js';
import type { Awaitable } from '../../util/awaitable.js';
import { OAUTH1_TYPE } from './consumers.js';
import type { OAuth1Provider } from './provider.js';

const FORM_TYPE = /^application\/x-www-form-urlencoded\s*(;|$)/i;
const SIGNED_QUERY = /[?&]oauth_signature=/;

/**
 * OAuth 1.0a on every door (gateway, forward-auth, library, applinks' own API). Claims a request
 * that carries OAuth credentials in any transport RFC 5849 §3.5 allows: `Authorization: OAuth`,
 * `oauth_signature` in the query, or in a form-encoded body. A claimed request is authenticated
 * or refused with its problem, never passed on as anonymous.
 *
 * The body is read for the form transport only when it is declared form-encoded, with a
 * Content-Length within APPLINKS_BODY_LIMIT or chunked (read up to that limit): a host's
 * uploads in other encodings are never buffered.
 */
export function oauth1Authenticator(s: Services, provider: OAuth1Provider): Authenticator {
  return {
    id: OAUTH1_TYPE,
    authenticate(req: AuthRequest) {
      const authorization = req.headers.authorization;
      const inHeader = isOAuthAuthorization(authorization);
      if (!inHeader && authorization !== undefined) return undefined;
      const inQuery = !inHeader && SIGNED_QUERY.test(req.url);
      const withForm = mayCarryForm(req, s.config.bodyLimit);
      if (!inHeader && !inQuery && !withForm) return undefined;
      // Body parameters are signed too (RFC 5849 §3.4.1.3.1), whatever carries the protocol ones.
      if (withForm) return req.form().then((form) => (inHeader || inQuery || form?.has('oauth_signature') ? claim(req, authorization, form) : undefined));
      return claim(req, authorization, undefined);
    },
    challenge: () => oauthChallenge(provider.realm),
  };

  /** A request that carries OAuth credentials: synchronous while what it needs is cached. */
  function claim(req: AuthRequest, authorization: string | undefined, form: URLSearchParams | undefined): Awaitable<Principal> {
    const url = req.url;
    let message;
    try {
      message = collectParameters({ authorization, query: queryOf(url), form });
    } catch (error) {
      if (!(error instanceof MalformedOAuth)) throw error;
      throw provider.problem('oauth1_parameter_rejected', { advice: `The OAuth parameters cannot be read: ${error.message}.` });
    }
    return provider.authenticate({ method: req.method, url, secure: req.secure, consume: (drop) => (req.consumedParameters = drop) }, message, req.connection);
  }
}

function mayCarryForm(req: AuthRequest, limit: number): boolean {
  if (req.method === 'GET' || req.method === 'HEAD') return false;
  if (!FORM_TYPE.test(String(req.headers['content-type'] ?? ''))) return false;
  const length = req.headers['content-length'];
  // A chunked form (no Content-Length) may carry OAuth parameters too; it is read up to the
  // limit, and a longer one is refused (413) rather than half-read.
  if (length === undefined) return /chunked/i.test(String(req.headers['transfer-encoding'] ?? ''));
  const declared = Number(length);
  return Number.isFinite(declared) && declared <= limit;
}
