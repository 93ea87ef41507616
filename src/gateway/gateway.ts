import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { principalView } from '../auth/principal.js';
import { createAuthRequest, streamBodySource } from '../auth/request.js';
import { AppError } from '../errors/index.js';
import { withoutCookie } from '../modules/core/cookies.js';
import type { Services } from '../services/index.js';
import { SESSION_COOKIE } from '../services/sessions.js';
import { CSRF_COOKIE } from '../server/csrf.js';
import { logError, toAppError } from '../server/errors.js';
import { Forwarder, upstreamHeaders } from './forward.js';
import { identityHeaders, isApplinksHeader } from './identity-headers.js';

/** Path prefixes applinks owns: an unknown path below them is a 404 here, never the host's. */
export const CORE_OWNED_PREFIXES = ['/api/v1/', '/rest/applinks/', '/applinks/'];

export function ownedPrefixes(s: Services): string[] {
  return [...CORE_OWNED_PREFIXES, ...s.modules.flatMap((m) => m.ownedPrefixes ?? [])];
}

/**
 * The authenticating gateway: every path applinks does not serve itself is authenticated and
 * forwarded to the host with the identity headers, or, with no upstream configured, answered
 * with the principal as JSON. Registered last, in its own context, where bodies are not parsed
 * but streamed through.
 */
export async function gateway(app: FastifyInstance, s: Services): Promise<void> {
  const owned = ownedPrefixes(s);
  const forwarder = s.config.upstreamUrl ? new Forwarder(s.config.upstreamUrl, s.config.upstreamTimeoutMs) : undefined;
  if (forwarder) app.addHook('onClose', async () => forwarder.close());

  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null, undefined));

  const handler = async (request: FastifyRequest, reply: FastifyReply) => {
    const raw = request.raw;
    const path = raw.url ?? '/';
    if (path === '/api/v1' || owned.some((p) => path.startsWith(p))) throw new AppError('not_found');
    const authRequest = createAuthRequest({
      method: request.method,
      url: s.edge.publicUrl(raw),
      headers: request.headers,
      remoteAddress: request.ip,
      secure: s.edge.secure(raw),
      connection: 'gateway',
      body: streamBodySource(raw),
      formLimit: s.config.bodyLimit,
    });
    const principal = await s.pipeline.authenticateForHost(authRequest);
    if (!forwarder) return reply.header('cache-control', 'no-store').send(principalView(principal));

    const incoming = request.headers;
    const add = await identityHeaders(principal, s.assertions);
    add['x-forwarded-for'] = forwardedFor(s, request);
    add['x-forwarded-proto'] = authRequest.secure ? 'https' : 'http';
    if (incoming.host) add['x-forwarded-host'] = s.edge.fromTrustedProxy(raw) ? String(incoming['x-forwarded-host'] ?? incoming.host) : incoming.host;
    if (incoming.cookie) {
      const cookie = withoutCookie(withoutCookie(incoming.cookie, SESSION_COOKIE) ?? '', CSRF_COOKIE);
      if (cookie) add.cookie = cookie;
    }
    const consumedAuthorization = principal.authType !== 'anonymous';
    const headers = upstreamHeaders(
      incoming,
      (name) => isApplinksHeader(name) || name === 'cookie' || name === 'x-forwarded-for' || (consumedAuthorization && name === 'authorization'),
      add,
    );
    const buffered = authRequest.bufferedBody();
    reply.hijack();
    try {
      await forwarder.forward(raw, reply.raw, { headers, body: buffered ?? raw });
    } catch (error) {
      const appError = toAppError(error);
      logError(request, appError);
      if (!reply.raw.headersSent) {
        reply.raw.writeHead(appError.status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
        reply.raw.end(JSON.stringify(appError.toJSON()));
      } else reply.raw.destroy();
    }
  };
  app.all('/*', handler);
  app.all('/', handler);
}

function forwardedFor(s: Services, request: FastifyRequest): string {
  const peer = request.raw.socket.remoteAddress ?? '';
  const prior = request.headers['x-forwarded-for'];
  if (prior && s.edge.fromTrustedProxy(request.raw)) return `${Array.isArray(prior) ? prior.join(', ') : prior}, ${peer}`;
  return peer;
}
