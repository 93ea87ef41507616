import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import type { Principal } from '../auth/principal.js';
import { createAuthRequest } from '../auth/request.js';
import { loadConfig } from '../config/loader.js';
import type { ConfigKeyName } from '../config/schema.js';
import { AppError } from '../errors/index.js';
import type { OutgoingCall, OutgoingResult } from '../outgoing/client.js';
import { createServices, type CreateServicesOptions, type Services } from '../services/index.js';
import { toAppError } from '../server/errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The principal applinks authenticated this request as (anonymous when no credential was sent). */
    applinks: Principal;
  }
}

export interface GuardOptions {
  /** Answer 401 (with every challenge) when the request is anonymous. Default false. */
  required?: boolean;
}

export interface Applinks {
  /** The services behind the library (users, links, tokens...), for hosts that manage them in code. */
  readonly services: Services;
  /** Authenticates a Node request: a principal, or throws an error with `status` and `headers`. */
  authenticate(req: IncomingMessage, body?: unknown): Promise<Principal>;
  /** A Fastify plugin that sets `request.applinks` before handlers run. */
  readonly fastifyPlugin: FastifyPluginAsync<GuardOptions>;
  /** An Express/Connect middleware that sets `req.applinks`. */
  middleware(options?: GuardOptions): (req: IncomingMessage & { applinks?: Principal; body?: unknown }, res: ServerResponse, next: (error?: unknown) => void) => void;
  /** Calls a linked application with the link's outgoing authentication. */
  request(link: string, call: OutgoingCall): Promise<OutgoingResult>;
  close(): Promise<void>;
}

/**
 * applinks inside a Node host: the same store, pipeline and outgoing client as the server, no
 * extra hop. Options are configuration keys (see the README table) and win over APPLINKS_*
 * variables. Several hosts and servers may share one PostgreSQL store.
 */
export async function createApplinks(
  options: Partial<Record<ConfigKeyName, unknown>> = {},
  advanced: Pick<CreateServicesOptions, 'storeOptions' | 'logger' | 'clock'> = {},
): Promise<Applinks> {
  const config = loadConfig({ overrides: options });
  const services = await createServices(config, { ...advanced, background: true });

  // Express strips a mount path from req.url (app.use('/api', ...)); the client signed the whole.
  const publicUrl = (req: IncomingMessage) => services.edge.publicUrl(req, (req as { originalUrl?: string }).originalUrl ?? req.url ?? '/');
  const authenticate = async (req: IncomingMessage, body?: unknown): Promise<Principal> =>
    services.pipeline.authenticateForHost(
      createAuthRequest({
        method: req.method ?? 'GET',
        url: publicUrl(req),
        headers: req.headers,
        remoteAddress: services.edge.clientAddress(req),
        secure: services.edge.secure(req),
        connection: 'library',
        // Only a body the host already parsed: the library never consumes the host's stream.
        body: parsedForm(req, body),
      }),
    );

  /** A 401 naming every way to authenticate. */
  const unauthenticated = (req: IncomingMessage) =>
    services.pipeline.unauthenticated(createAuthRequest({ method: req.method ?? 'GET', url: publicUrl(req), headers: req.headers, remoteAddress: '', secure: false, connection: 'library' }));

  const guard = async (req: IncomingMessage, body: unknown, required: boolean): Promise<Principal> => {
    const principal = await authenticate(req, body);
    if (required && !principal.user) throw unauthenticated(req);
    return principal;
  };

  const fastifyPlugin: FastifyPluginAsync<GuardOptions> = fp(
    async (app, opts: GuardOptions) => {
      // Registered again in a narrower scope (e.g. with `required`), the plugin reuses the principal.
      if (!app.hasRequestDecorator('applinks')) app.decorateRequest('applinks', null as unknown as Principal);
      app.addHook('preHandler', async (request: FastifyRequest, reply) => {
        try {
          const known = request.applinks as Principal | null;
          if (known && opts.required && !known.user) throw unauthenticated(request.raw);
          request.applinks = known ?? (await guard(request.raw, request.body, opts.required ?? false));
        } catch (error) {
          const e = toAppError(error);
          const { contentType, payload } = rendering(e);
          return reply.code(e.status).headers(e.headers).header('cache-control', 'no-store').type(contentType).send(payload);
        }
      });
    },
    { name: 'applinks', fastify: '5.x' },
  );

  return {
    services,
    authenticate,
    fastifyPlugin,
    middleware: (opts = {}) => (req, res, next) => {
      guard(req, req.body, opts.required ?? false).then(
        (principal) => {
          req.applinks = principal;
          next();
        },
        (error: unknown) => {
          const e = toAppError(error);
          if (e.status >= 500) return next(error);
          const { contentType, payload } = rendering(e);
          res.writeHead(e.status, { ...e.headers, 'content-type': contentType, 'cache-control': 'no-store' });
          res.end(payload);
        },
      );
    },
    request: (link, call) => services.outgoing.request(link, call),
    close: () => services.close(),
  };
}

/** The body of a refusal: the protocol's own (an OAuth 1.0a problem is form-encoded, as Jira sends it), else JSON. */
function rendering(e: AppError): { contentType: string; payload: string } {
  return e.body ?? { contentType: 'application/json; charset=utf-8', payload: JSON.stringify(e.toJSON()) };
}

function parsedForm(req: IncomingMessage, body: unknown): URLSearchParams | Buffer | undefined {
  if (!/^application\/x-www-form-urlencoded/i.test(String(req.headers['content-type'] ?? ''))) return undefined;
  if (Buffer.isBuffer(body)) return body;
  if (typeof body === 'string') return Buffer.from(body);
  if (body && typeof body === 'object') {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(body as Record<string, unknown>)) {
      for (const value of Array.isArray(v) ? v : [v]) params.append(k, String(value));
    }
    return params;
  }
  return undefined;
}

export interface AssertionClaims extends JWTPayload {
  /** The authentication type. */
  auth: string;
  conn: string;
  uid?: string;
  name?: string;
  email?: string | null;
  admin?: boolean;
  groups?: string[];
  link?: string;
  scope?: string;
}

/**
 * For hosts behind the gateway that can also be reached another way: checks the
 * `X-Applinks-Assertion` header against applinks' published keys, so the identity headers can
 * be trusted only when they came from applinks. `audience` is the upstream URL applinks forwards to.
 */
export function assertionVerifier(options: { applinksUrl: string; audience: string }) {
  const base = options.applinksUrl.replace(/\/$/, '');
  const jwks = createRemoteJWKSet(new URL(`${base}/rest/applinks/1.0/jwks.json`));
  return async (assertion: string | undefined): Promise<AssertionClaims> => {
    if (!assertion) throw new AppError('unauthenticated', { message: 'No X-Applinks-Assertion header.' });
    const { payload } = await jwtVerify(assertion, jwks, { issuer: base, audience: options.audience, algorithms: ['ES256'] });
    return payload as AssertionClaims;
  };
}
