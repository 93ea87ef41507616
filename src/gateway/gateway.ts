import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { principalView, type Principal } from '../auth/principal.js';
import { createAuthRequest, streamBodySource, type AuthRequest } from '../auth/request.js';
import { AppError } from '../errors/index.js';
import { withoutCookie } from '../modules/core/cookies.js';
import type { Services } from '../services/index.js';
import { SESSION_COOKIE } from '../services/sessions.js';
import { leaveBodiesUnread } from '../server/body-parsers.js';
import { CSRF_COOKIE } from '../server/csrf.js';
import { toAppError } from '../server/errors.js';
import { accessLogIdentity } from '../server/logger.js';
import { andThen, type Awaitable } from '../util/awaitable.js';
import { Forwarder, targetWithoutParameters, type ForwardOptions as Outbound, upstreamHeaders, withoutParameters } from './forward.js';
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
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** The authenticating half of `handle`, without forwarding (benchmarks measure it alone). */
  prepare(req: IncomingMessage, res: ServerResponse): Awaitable<Outbound | undefined>;
  close(): Promise<void>;
}

/**
 * The authenticating gateway as a plain `node:http` handler: every path applinks does not serve
 * itself is authenticated and forwarded to the host with the identity headers, or, with no
 * upstream configured, answered with the principal as JSON. The listening server hands such
 * requests here directly, without the framework; `gateway()` below routes `inject()` here too.
 *
 * This is the hot path of a gateway in front of a host. A request whose credential is cached
 * goes from the socket to the upstream without a promise: authentication, identity headers and
 * forwarding all answer synchronously on a cache hit (util/awaitable.ts), and the forwarder
 * reports back through one callback shared by every request.
 */
export function createGatewayHandler(s: Services): GatewayHandler {
  const owned = ownedPrefixes(s);
  const accessLog = s.config.accessLog;
  /** The principal of each request in flight, for its access log line. */
  const principals = accessLog ? new WeakMap<IncomingMessage, Principal>() : undefined;

  /** Answers a request that could not be forwarded: the error as its protocol renders it. */
  const refuse = (req: IncomingMessage, res: ServerResponse, error: unknown): void => {
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
  };
  const forwarder = s.config.upstreamUrl
    ? new Forwarder(s.config.upstreamUrl, s.config.upstreamTimeoutMs, (req, res, error) => {
        if (error) refuse(req, res, error);
      })
    : undefined;
  const dispatch = (req: IncomingMessage, res: ServerResponse, outbound: Outbound | undefined): void => {
    if (outbound) forwarder!.forward(req, res, outbound);
  };

  /**
   * Authenticates a request bound for the host and answers what goes upstream: the headers with
   * the identity added and credentials removed, and the body and target when credentials
   * travelled in them. Undefined when the request was answered here (no upstream configured).
   */
  function prepare(req: IncomingMessage, res: ServerResponse): Awaitable<Outbound | undefined> {
    const path = req.url ?? '/';
    // Only origin-form targets (RFC 9112 §3.2.1) name a resource of the host: `*` and absolute
    // forms are for servers and forward proxies, which the gateway is not.
    if (path.charCodeAt(0) !== 47 /* / */) throw new AppError('invalid_request', { message: 'The request target must be a path (origin-form).' });
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
    return andThen(s.pipeline.authenticateForHost(authRequest), (principal) => {
      principals?.set(req, principal);
      if (!forwarder) {
        const body = JSON.stringify(principalView(principal));
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
        res.end(body);
        return undefined;
      }
      return andThen(identityHeaders(principal, s.assertions), (add) => outbound(req, authRequest, principal, add));
    });
  }

  function outbound(req: IncomingMessage, authRequest: AuthRequest, principal: Principal, add: Record<string, string>): Awaitable<Outbound> {
    const incoming = req.headers;
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
    const dropAuthorization = principal.authType !== 'anonymous';
    const drop = trusted ? (dropAuthorization ? dropWithAuthorization : dropAlways) : dropAuthorization ? dropUntrustedWithAuthorization : dropUntrusted;
    // Credentials sent as parameters (OAuth 1.0a's query and body transports) stop here too.
    const consumed = authRequest.consumedParameters;
    const body = authRequest.bufferedBody();
    if (!consumed) return { headers: upstreamHeaders(incoming, drop, add), body: body ?? req };
    const path = targetWithoutParameters(req.url ?? '/', consumed);
    if (!body) return { headers: upstreamHeaders(incoming, drop, add), body: req, path };
    return authRequest.form().then((form) => {
      let sent = body;
      if (form) {
        sent = Buffer.from(withoutParameters(body.toString('utf8'), consumed), 'utf8');
        add['content-length'] = String(sent.length);
      }
      return { headers: upstreamHeaders(incoming, drop, add), body: sent, path };
    });
  }

  return {
    handle(req, res) {
      if (accessLog) {
        const started = performance.now();
        res.once('close', () => s.logger.info({ req, res: { statusCode: res.statusCode }, ...accessLogIdentity(principals!.get(req)), responseTime: performance.now() - started }, 'gateway request'));
      }
      let pending: Awaitable<Outbound | undefined>;
      try {
        pending = prepare(req, res);
      } catch (error) {
        refuse(req, res, error);
        return;
      }
      if (!(pending instanceof Promise)) dispatch(req, res, pending);
      else pending.then((outbound) => dispatch(req, res, outbound), (error: unknown) => refuse(req, res, error));
    },
    prepare,
    close: async () => forwarder?.close(),
  };
}

/** What never goes upstream: X-Applinks-* (applinks sets them), cookies and X-Forwarded-For (rebuilt). */
const dropAlways = (name: string): boolean => isApplinksHeader(name) || name === 'cookie' || name === 'x-forwarded-for';
/** The same, and the Authorization header a credential was taken from. */
const dropWithAuthorization = (name: string): boolean => dropAlways(name) || name === 'authorization';
/**
 * Headers a host may believe came from its proxy (the client's address, scheme, prefix, original
 * request): from a peer that is not a trusted proxy they are the client's own words, and go.
 */
const PROXY_HEADERS = new Set(['forwarded', 'x-real-ip', 'x-forwarded-port', 'x-forwarded-prefix', 'x-forwarded-server', 'x-forwarded-method', 'x-forwarded-uri', 'x-original-uri', 'x-original-method', 'x-original-url', 'x-client-ip', 'true-client-ip', 'client-ip']);
const dropUntrusted = (name: string): boolean => dropAlways(name) || PROXY_HEADERS.has(name);
const dropUntrustedWithAuthorization = (name: string): boolean => dropWithAuthorization(name) || PROXY_HEADERS.has(name);

/**
 * The same gateway behind a framework route: the listening server bypasses it for speed, but
 * `inject()` (tests, embedding) goes through the router, so every other path lands here.
 * Registered last, in its own context, where bodies are not parsed but streamed through.
 */
export async function gateway(app: FastifyInstance, handler: GatewayHandler): Promise<void> {
  leaveBodiesUnread(app);
  const route = async (request: { raw: IncomingMessage }, reply: { hijack(): void; raw: ServerResponse }) => {
    reply.hijack();
    handler.handle(request.raw, reply.raw);
  };
  app.all('/*', { config: { gateway: true } }, route);
  app.all('/', { config: { gateway: true } }, route);
}
