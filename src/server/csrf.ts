import { randomBytes } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { constantTimeEqual, hmacBase64url } from '../crypto/tokens.js';
import { AppError } from '../errors/index.js';
import { readCookie } from '../modules/core/cookies.js';
import type { Services } from '../services/index.js';
import { SESSION_COOKIE } from '../services/sessions.js';

export const CSRF_COOKIE = 'applinks_csrf';
export const CSRF_FIELD = 'csrf_token';
export const CSRF_HEADER = 'x-csrf-token';

/**
 * Signed double-submit CSRF protection: a random HttpOnly cookie, and forms (or the console's
 * X-CSRF-Token header) carry an HMAC of it and of the session cookie under the installation
 * secret. A cross-site page can neither read the cookies nor compute the HMAC, and a pair
 * planted from a sibling origin (which can set cookies) is bound to a session that is not the
 * victim's.
 */
export function issueCsrfToken(s: Services, request: FastifyRequest, reply: FastifyReply): string {
  let cookie = readCookie(request.headers.cookie, CSRF_COOKIE);
  if (!cookie || !/^[A-Za-z0-9_-]{32,}$/.test(cookie)) {
    cookie = randomBytes(24).toString('base64url');
    reply.header('set-cookie', cookieHeader(s, CSRF_COOKIE, cookie, undefined));
  }
  return csrfToken(s, request, cookie);
}

function csrfToken(s: Services, request: FastifyRequest, cookie: string): string {
  const session = readCookie(request.headers.cookie, SESSION_COOKIE) ?? '';
  return hmacBase64url(s.identity.hmacSecret, `csrf:${cookie}:${session}`);
}

export function checkCsrf(s: Services, request: FastifyRequest, supplied: unknown): void {
  const cookie = readCookie(request.headers.cookie, CSRF_COOKIE);
  if (!cookie || typeof supplied !== 'string' || !constantTimeEqual(csrfToken(s, request, cookie), supplied)) {
    throw new AppError('csrf_failed');
  }
}

/** A Set-Cookie value with applinks' attributes: HttpOnly, SameSite=Lax, Secure when the base URL is https. */
export function cookieHeader(s: Services, name: string, value: string, maxAgeSeconds: number | undefined, path = '/'): string {
  const parts = [`${name}=${value}`, `Path=${path}`, 'HttpOnly', 'SameSite=Lax'];
  if (s.config.baseUrl.startsWith('https:')) parts.push('Secure');
  if (maxAgeSeconds !== undefined) parts.push(`Max-Age=${maxAgeSeconds}`);
  return parts.join('; ');
}
