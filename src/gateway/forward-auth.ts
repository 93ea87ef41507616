import type { FastifyInstance } from 'fastify';
import { principalView } from '../auth/principal.js';
import { createAuthRequest, type AuthRequest } from '../auth/request.js';
import { AppError, isAppError } from '../errors/index.js';
import type { IncomingMessage } from 'node:http';
import { firstValue, type Edge } from '../auth/edge.js';
import type { Services } from '../services/index.js';
import { IDENTITY_HEADERS, identityHeaders } from './identity-headers.js';

export const FORWARD_AUTH_PATH = '/rest/applinks/1.0/forward-auth';

/**
 * The request the proxy asks about: method and URI from Traefik's `X-Forwarded-Method`/
 * `X-Forwarded-Uri` or nginx's `X-Original-Method`/`X-Original-URI`, believed only from a
 * trusted proxy; otherwise the forward-auth request itself.
 */
export function originalRequest(edge: Edge, raw: IncomingMessage): { method: string; methodKnown: boolean; url: string } {
  const h = raw.headers;
  const trusted = edge.fromTrustedProxy(raw);
  const named = trusted ? (firstValue(h['x-forwarded-method']) ?? firstValue(h['x-original-method'])) : undefined;
  const method = named || raw.method || 'GET';
  const uri = (trusted && (firstValue(h['x-forwarded-uri']) ?? firstValue(h['x-original-uri']))) || raw.url || '/';
  return { method: method.toUpperCase(), methodKnown: Boolean(named), url: edge.publicUrl(raw, uri.startsWith('/') ? uri : '/') };
}

/**
 * A refusal as the proxy can pass it on. nginx's `auth_request` lets 401 and 403 through and
 * answers any other status with a 500 of its own, so a client whose credential is malformed
 * (400: a bad OAuth 1.0a parameter, an empty Bearer) or throttled (429) would see a server
 * error. Those refusals become 401, with the protocol's own challenge and body kept (every
 * challenge of the pipeline when the refusal had none) and the status the protocol gives in
 * `X-Applinks-Status`. Server errors (5xx) stay what they are.
 */
function refusalForProxy(error: unknown, s: Services, req: AuthRequest): unknown {
  if (!isAppError(error) || error.status < 400 || error.status >= 500 || error.status === 401 || error.status === 403) return error;
  const headers: Record<string, string | string[]> = { ...error.headers, 'x-applinks-status': String(error.status) };
  if (headers['www-authenticate'] === undefined) headers['www-authenticate'] = s.pipeline.challenges(req);
  return new AppError(error.code, {
    status: 401,
    message: error.message,
    ...(error.detail !== undefined ? { detail: error.detail } : {}),
    ...(error.field !== undefined ? { field: error.field } : {}),
    ...(error.body !== undefined ? { body: error.body } : {}),
    headers,
    params: error.params,
    cause: error,
  });
}

/**
 * Forward-auth for nginx `auth_request` and Traefik ForwardAuth: authenticates the request the
 * proxy describes and answers 200 with the identity headers, 401 with the challenges (for every
 * refusal of a credential, see `refusalForProxy`) or 403 (a rule of a module refused). The
 * original method and URI come from `X-Forwarded-Method`/`X-Original-Method` and
 * `X-Forwarded-Uri`/`X-Original-URI`, believed only from trusted proxies. Anonymous requests get
 * 401 unless the proxy asks with `?anonymous=allow`.
 */
export async function forwardAuth(app: FastifyInstance, s: Services): Promise<void> {
  app.route({
    method: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
    url: FORWARD_AUTH_PATH,
    schema: { hide: true },
    handler: async (request, reply) => {
      const raw = request.raw;
      const original = originalRequest(s.edge, raw);
      const authRequestInput = {
        method: original.method,
        url: original.url,
        headers: request.headers,
        remoteAddress: request.ip,
        secure: s.edge.secure(raw),
        connection: 'forward-auth' as const,
      };
      const authRequest = createAuthRequest(authRequestInput);
      let principal;
      try {
        principal = await s.pipeline.authenticate(authRequest);
        // nginx's auth_request always asks with GET: unless a trusted proxy names the original
        // method, it is unknown, and the rules hold it to the strictest (a change: a READ-only
        // token is refused).
        s.pipeline.authorizeForHost(principal, original.methodKnown ? authRequest : createAuthRequest({ ...authRequestInput, method: 'UNKNOWN' }));
      } catch (error) {
        throw refusalForProxy(error, s, authRequest);
      }
      const allowAnonymous = (request.query as Record<string, unknown>).anonymous === 'allow';
      if (!principal.user && !allowAnonymous) throw s.pipeline.unauthenticated(authRequest);
      // Every identity header, empty when it does not apply: a proxy that copies them replaces
      // the client's own (a forged X-Applinks-Link must not survive because ours was absent).
      const headers: Record<string, string> = Object.fromEntries(IDENTITY_HEADERS.map((name) => [name, '']));
      Object.assign(headers, await identityHeaders(principal, s.assertions));
      return reply
        .headers(headers)
        .header('cache-control', 'no-store')
        .send(principalView(principal));
    },
  });
}
