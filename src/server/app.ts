import formbody from '@fastify/formbody';
import swagger from '@fastify/swagger';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { forwardAuth } from '../gateway/forward-auth.js';
import http, { type IncomingMessage } from 'node:http';
import FindMyWay, { type HTTPMethod } from 'find-my-way';
import { createGatewayHandler, gateway, isOwnedPath, ownedPrefixes } from '../gateway/gateway.js';
import { APPLINKS_VERSION } from '../services/identity.js';
import type { Services } from '../services/index.js';
import { AppError } from '../errors/index.js';
import { jsonErrorHandler, logError, sendJsonError, toAppError } from './errors.js';
import { accessLogIdentity, lazyChildLogger } from './logger.js';
import type { Logger } from 'pino';
import { accountPages } from './pages/account.js';
import { html, sendPage } from './pages/html.js';
import { ACCOUNT_PATH, signInPages } from './pages/sign-in.js';
import { adminApi } from './routes/admin-api.js';
import { discovery } from './routes/discovery.js';
import { validatorCompiler } from './validation.js';

/** Renders errors on the server-rendered pages as a page, not JSON. */
function htmlErrorHandler(s: Services) {
  return (error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const e = toAppError(error);
    logError(request, e);
    for (const [k, v] of Object.entries(e.headers)) reply.header(k, v);
    sendPage(reply, e.status, 'Error', html`<h1>Something went wrong</h1><p class="error">${e.message}</p><p><a href="${ACCOUNT_PATH}">Back to your account</a></p>`, s.config.appName);
    return reply;
  };
}

/**
 * Builds the Fastify instance: applinks' own endpoints (discovery, admin API, pages, every
 * protocol module's routes), then the gateway for every other path.
 */
export async function buildApp(s: Services): Promise<FastifyInstance> {
  const gatewayHandler = createGatewayHandler(s);
  // Every route applinks serves itself, as the router registers it. A listening server hands a
  // request that matches none of them straight to the gateway handler: the hot path of a
  // gateway in front of a host should not pay for a framework it does not use.
  const own = FindMyWay({ ignoreTrailingSlash: false, maxParamLength: 500 });
  const owned = ownedPrefixes(s);
  const isOwn = (req: IncomingMessage) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    return isOwnedPath(owned, path) || own.find((req.method ?? 'GET') as HTTPMethod, path) !== null;
  };
  const app = Fastify({
    serverFactory: (fastifyHandler) =>
      http.createServer((req, res) => {
        if (isOwn(req)) fastifyHandler(req, res);
        else void gatewayHandler.handle(req, res);
      }),
    loggerInstance: s.logger as FastifyBaseLogger,
    // The access log (APPLINKS_ACCESS_LOG) is written below, with the user the request acted as.
    logController: new LogController({ disableRequestLogging: true }),
    childLoggerFactory: (logger, bindings, options) => lazyChildLogger(logger as Logger, bindings, options as Record<string, unknown>) as FastifyBaseLogger,
    trustProxy: s.config.trustedProxies.length > 0 ? s.config.trustedProxies : false,
    bodyLimit: s.config.bodyLimit,
    forceCloseConnections: 'idle',
    return503OnClosing: true,
    routerOptions: { maxParamLength: 500 },
  });
  app.addHook('onRoute', (route) => {
    if ((route.config as { gateway?: boolean } | undefined)?.gateway) return;
    for (const method of Array.isArray(route.method) ? route.method : [route.method]) {
      if (!own.hasRoute(method as HTTPMethod, route.url)) own.on(method as HTTPMethod, route.url, () => undefined);
    }
  });
  app.addHook('onClose', async () => gatewayHandler.close());
  if (s.config.accessLog) {
    app.addHook('onResponse', async (request, reply) => {
      const principal = request.applinksPrincipal ? await request.applinksPrincipal.catch(() => undefined) : undefined;
      request.log.info({ req: request, res: { statusCode: reply.statusCode }, ...accessLogIdentity(principal), responseTime: reply.elapsedTime }, 'request completed');
    });
  }
  // The API answers with users, tokens shown once and client secrets: never for a cache to keep.
  app.addHook('onRequest', async (request, reply) => {
    if (request.url.startsWith('/api/')) reply.header('cache-control', 'no-store');
  });
  // Behind a reverse proxy that removes a path prefix (a base URL with a path), our own pages
  // and redirects must name paths with it. The gateway hijacks its replies, so the host's
  // answers pass untouched.
  const prefix = s.edge.basePath;
  if (prefix) {
    app.addHook('onSend', async (_request, reply, payload) => {
      const location = reply.getHeader('location');
      if (typeof location === 'string' && location.startsWith('/') && !location.startsWith('//')) reply.header('location', prefix + location);
      if (typeof payload !== 'string' || !String(reply.getHeader('content-type') ?? '').startsWith('text/html')) return payload;
      return payload.replace(/\b(action|href)="\/(?!\/)/g, `$1="${prefix}/`);
    });
  }
  app.setValidatorCompiler(validatorCompiler);
  app.setErrorHandler(jsonErrorHandler);
  // An owned path with a method no route takes (WebDAV verbs, TRACE): the catalog's shape, not Fastify's.
  app.setNotFoundHandler((_request, reply) => sendJsonError(reply, new AppError('not_found')));

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'applinks admin API', version: APPLINKS_VERSION, description: 'Users, application links, API tokens and the audit log. JSON, admin-only unless stated.' },
      servers: [{ url: s.config.baseUrl }],
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'A personal API token (alpat_...).' },
          basic: { type: 'http', scheme: 'basic', description: 'Username and password, or username and API token.' },
        },
      },
      security: [{ bearer: [] }, { basic: [] }],
    },
    hideUntagged: true,
  });
  app.get('/api/v1/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  await app.register(async (api) => {
    await discovery(api, s);
    await forwardAuth(api, s);
    await adminApi(api, s);
  });

  // Pages and the protocol endpoints read form bodies.
  await app.register(async (forms) => {
    await forms.register(formbody, { bodyLimit: s.config.bodyLimit });
    await forms.register(async (pages) => {
      pages.setErrorHandler(htmlErrorHandler(s));
      await signInPages(pages, s);
      await accountPages(pages, s);
    });
    for (const runtime of s.runtimes) {
      if (runtime.routes) await forms.register(async (scope) => runtime.routes!(scope));
    }
  });

  await app.register(async (proxy) => gateway(proxy, gatewayHandler));
  return app as unknown as FastifyInstance;
}
