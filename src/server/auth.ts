import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Connection, Principal } from '../auth/principal.js';
import { createAuthRequest, type AuthRequest } from '../auth/request.js';
import { AppError } from '../errors/index.js';
import type { Services } from '../services/index.js';
import { checkCsrf, CSRF_HEADER } from './csrf.js';

declare module 'fastify' {
  interface FastifyRequest {
    applinksPrincipal?: Promise<Principal>;
  }
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export function isSafeMethod(method: string): boolean {
  return SAFE_METHODS.has(method.toUpperCase());
}

/** The AuthRequest of a route whose body Fastify already parsed (or that has none). */
export function authRequestOf(s: Services, request: FastifyRequest, connection: Connection = 'direct', body?: Buffer | URLSearchParams): AuthRequest {
  return createAuthRequest({
    method: request.method,
    url: s.edge.publicUrl(request.raw),
    headers: request.headers,
    remoteAddress: request.ip,
    secure: s.edge.secure(request.raw),
    connection,
    body,
  });
}

/** The request's principal, authenticated once per request. Throws 401 AppErrors for bad credentials. */
export function principalOf(s: Services, request: FastifyRequest): Promise<Principal> {
  request.applinksPrincipal ??= Promise.resolve().then(() => s.pipeline.authenticate(authRequestOf(s, request)));
  return request.applinksPrincipal;
}

/**
 * A signed-in user, or a 401 that offers every challenge. Requests authenticated by the session
 * cookie must also carry the CSRF header when they change something.
 */
export async function requireUser(s: Services, request: FastifyRequest): Promise<Principal & { user: NonNullable<Principal['user']> }> {
  const principal = await principalOf(s, request);
  if (!principal.user) throw s.pipeline.unauthenticated(authRequestOf(s, request));
  if (principal.authType === 'session' && !isSafeMethod(request.method)) checkCsrf(s, request, request.headers[CSRF_HEADER]);
  // A read-only grant (OAuth 2.0 READ) changes nothing here either, as on the host.
  if (principal.scopes !== null && !isSafeMethod(request.method) && !principal.scopes.includes('WRITE')) {
    throw new AppError('forbidden', { message: 'The token is granted READ only: it may not change anything.' });
  }
  return principal as Principal & { user: NonNullable<Principal['user']> };
}

/** Like requireUser, and the user must be an administrator with an unscoped (or ADMIN-scoped) credential. */
export async function requireAdmin(s: Services, request: FastifyRequest): Promise<Principal & { user: NonNullable<Principal['user']> }> {
  const principal = await requireUser(s, request);
  if (!principal.user.isAdmin) throw new AppError('forbidden', { message: 'Only administrators may do this.' });
  if (principal.scopes !== null && !principal.scopes.some((sc) => sc === 'ADMIN' || sc === 'SYSTEM_ADMIN')) {
    throw new AppError('forbidden', { message: 'The token is not granted administration.' });
  }
  return principal;
}

/**
 * Refuses a credential an application holds for its user: an OAuth token (scoped, or OAuth 1.0a
 * with the user's full rights) or anything else that arrived through an application link.
 * Passwords, API tokens and administrator rights are permanent credentials, and an application's
 * grant, which the user or an administrator can revoke (or end by deleting the link), must never
 * mint one that outlives it.
 */
export function requireUnscoped(principal: Principal, what: string): void {
  if (principal.scopes !== null || principal.link !== null) {
    throw new AppError('forbidden', { message: `${what} only with the user's own credential (a password, session or personal API token), not one an application holds through a link.` });
  }
}

/** A preHandler form of the checks above, for route options. */
export const adminOnly = (s: Services) => async (request: FastifyRequest, _reply: FastifyReply) => {
  await requireAdmin(s, request);
};
/** Administration that creates or changes credentials (API tokens, clients, consumers, link authentication): unscoped only. */
export const credentialAdminOnly = (s: Services) => async (request: FastifyRequest, _reply: FastifyReply) => {
  requireUnscoped(await requireAdmin(s, request), 'Credentials and authentication settings can be managed');
};
export const usersOnly = (s: Services) => async (request: FastifyRequest, _reply: FastifyReply) => {
  await requireUser(s, request);
};
