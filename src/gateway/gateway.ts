import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { principalView } from '../auth/principal.js';
import { createAuthRequest, streamBodySource } from '../auth/request.js';
import { AppError } from '../errors/index.js';
import { withoutCookie } from '../modules/core/cookies.js';
import type { Services } from '../services/index.js';
import { SESSION_COOKIE } from '../services/sessions.js';
import { CSRF_COOKIE } from '../server/csrf.js';
import { toAppError } from '../server/errors.js';
import { Forwarder, targetWithoutParameters, upstreamHeaders, withoutParameters } from './forward.js';
import { identityHeaders, isApplinksHeader } from './identity-headers.js';

/** Path prefixes applinks owns: an unknown path below them is a 404 here, never the host's. */
export const CORE_OWNED_PREFIXES = ['/api/v1/', '/rest/applinks/', '/applinks/'];

export function ownedPrefixes(s: Services): string[] {
  return [...CORE_OWNED_PREFIXES, ...s.modules.flatMap((m) => m.ownedPrefixes ?? [])];
}

/** True when a path is in applinks' own namespace (so it is never forwarded to the host). */
export function isOwnedPath(prefixes: readonly string[], path: string): boolean {
  if (path === '/api/v1') return true;
  for (const prefix of prefixes) if (path.startsWith(prefix)) return true;
  return false;
}

export interface GatewayHandler {
  /** Authenticates and forwards (or answers the principal); never throws, always answers. */
  handle(req: IncomingMessage, res: ServerResponse): Promise<void>;
  close(): Promise<void>;
}

/**
 * The authenticating gateway as a plain `node:http` handler: every path applinks does not serve
 * itself is authenticated and forwarded to the host with the identity headers, or, with no
 * upstream configured, answered with the principal as JSON. The listening server hands such
 * requests here directly, without the framework; `gateway()` below routes `inject()` here too.
 */
export function createGatewayHandler(s: Services): GatewayHandler {
  const owned = ownedPrefixes(s);
  const forwarder = s.config.upstreamUrl ? new Forwarder(s.config.upstreamUrl, s.config.upstreamTimeoutMs) : undefined;
  const accessLog = s.config.accessLog;

  async function respond(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = req.url ?? '/';
    const q = path.indexOf('?');
    if (isOwnedPath(owned, q < 0 ? path : path.slice(0, q))) throw new AppError('not_found');
    const authRequest = createAuthRequest({
      method: req.method ?? 'GET',
      url: () => s.edge.publicUrl(req),
      headers: req.headers,
      remoteAddress: s.edge.clientAddress(req),
      secure: s.edge.secure(req),
      connection: 'gateway',
      body: streamBodySource(req),
      formLimit: s.config.bodyLimit,
    });
    const principal = await s.pipeline.authenticateForHost(authRequest);
    if (!forwarder) {
      const body = JSON.stringify(principalView(principal));
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
      res.end(body);
      return;
    }
    const incoming = req.headers;
    const add = await identityHeaders(principal, s.assertions);
    const peer = req.socket.remoteAddress ?? '';
    const trusted = s.edge.fromTrustedProxy(req);
    const prior = incoming['x-forwarded-for'];
    add['x-forwarded-for'] = prior && trusted ? `${Array.isArray(prior) ? prior.join(', ') : prior}, ${peer}` : peer;
    add['x-forwarded-proto'] = authRequest.secure ? 'https' : 'http';
    if (incoming.host) add['x-forwarded-host'] = trusted ? String(incoming['x-forwarded-host'] ?? incoming.host) : incoming.host;
    if (incoming.cookie) {
      const cookie = withoutCookie(withoutCookie(incoming.cookie, SESSION_COOKIE) ?? '', CSRF_COOKIE);
      if (cookie) add.cookie = cookie;
    }
    const consumedAuthorization = principal.authType !== 'anonymous';
    // Credentials sent as parameters (OAuth 1.0a's query and body transports) stop here too.
    const consumed = authRequest.consumedParameters;
    let body: Buffer | undefined = authRequest.bufferedBody();
    let target: string | undefined;
    if (consumed) {
      target = targetWithoutParameters(req.url ?? '/', consumed);
      if (body && (await authRequest.form())) {
        body = Buffer.from(withoutParameters(body.toString('utf8'), consumed), 'utf8');
        add['content-length'] = String(body.length);
      }
    }
    const headers = upstreamHeaders(
      incoming,
      (name) => isApplinksHeader(name) || name === 'cookie' || name === 'x-forwarded-for' || (consumedAuthorization && name === 'authorization'),
      add,
    );
    await forwarder.forward(req, res, { headers, body: body ?? req, ...(target !== undefined ? { path: target } : {}) });
  }

  return {
    async handle(req, res) {
      const started = accessLog ? performance.now() : 0;
      try {
        await respond(req, res);
      } catch (error) {
        const e = toAppError(error);
        if (e.status >= 500) s.logger.error({ err: e.cause ?? e, code: e.code, req }, e.detail ?? e.message);
        else s.logger.debug({ code: e.code, detail: e.detail, req }, 'request refused');
        if (res.headersSent) {
          res.destroy();
          return;
        }
        const body = e.body ? e.body.payload : JSON.stringify(e.toJSON());
        res.writeHead(e.status, { ...e.headers, 'content-type': e.body?.contentType ?? 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      } finally {
        if (accessLog) s.logger.info({ req, res: { statusCode: res.statusCode }, responseTime: performance.now() - started }, 'gateway request');
      }
    },
    close: async () => forwarder?.close(),
  };
}

/**
 * The same gateway behind a framework route: the listening server bypasses it for speed, but
 * `inject()` (tests, embedding) goes through the router, so every other path lands here.
 * Registered last, in its own context, where bodies are not parsed but streamed through.
 */
export async function gateway(app: FastifyInstance, handler: GatewayHandler): Promise<void> {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null, undefined));
  const route = async (request: { raw: IncomingMessage }, reply: { hijack(): void; raw: ServerResponse }) => {
    reply.hijack();
    await handler.handle(request.raw, reply.raw);
  };
  app.all('/*', { config: { gateway: true } }, route);
  app.all('/', { config: { gateway: true } }, route);
}
