import type { FastifyInstance } from 'fastify';
import { principalView } from '../auth/principal.js';
import { createAuthRequest } from '../auth/request.js';
import { firstValue } from '../auth/edge.js';
import type { Services } from '../services/index.js';
import { identityHeaders } from './identity-headers.js';

export const FORWARD_AUTH_PATH = '/rest/applinks/1.0/forward-auth';

/**
 * Forward-auth for nginx `auth_request` and Traefik ForwardAuth: authenticates the request the
 * proxy describes and answers 200 with the identity headers, or 401 with the challenges. The
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
      const trusted = s.edge.fromTrustedProxy(raw);
      const h = request.headers;
      const method = (trusted && (firstValue(h['x-forwarded-method']) ?? firstValue(h['x-original-method']))) || request.method;
      const uri = (trusted && (firstValue(h['x-forwarded-uri']) ?? firstValue(h['x-original-uri']))) || raw.url || '/';
      const path = uri.startsWith('/') ? uri : '/';
      const authRequest = createAuthRequest({
        method,
        url: s.edge.publicUrl(raw, path),
        headers: h,
        remoteAddress: request.ip,
        secure: s.edge.secure(raw),
        connection: 'forward-auth',
      });
      const principal = await s.pipeline.authenticateForHost(authRequest);
      const allowAnonymous = (request.query as Record<string, unknown>).anonymous === 'allow';
      if (!principal.user && !allowAnonymous) throw s.pipeline.unauthenticated(authRequest);
      return reply
        .headers(await identityHeaders(principal, s.assertions))
        .header('cache-control', 'no-store')
        .send(principalView(principal));
    },
  });
}
