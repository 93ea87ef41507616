import type { IncomingHttpHeaders } from 'node:http';
import type { Principal } from '../auth/principal.js';
import type { AssertionService } from '../services/assertions.js';

/** The headers of the gateway contract (ARCHITECTURE.md), in the order a host reads them. */
export const IDENTITY_HEADERS = ['x-applinks-user', 'x-applinks-auth', 'x-applinks-link', 'x-applinks-scopes', 'x-applinks-assertion'] as const;

/** The identity headers for a principal; absent ones are left out. */
export async function identityHeaders(principal: Principal, assertions: AssertionService): Promise<Record<string, string>> {
  const headers: Record<string, string> = { 'x-applinks-auth': principal.authType };
  if (principal.user) headers['x-applinks-user'] = principal.user.username;
  if (principal.link) headers['x-applinks-link'] = principal.link.id;
  if (principal.scopes) headers['x-applinks-scopes'] = principal.scopes.join(' ');
  headers['x-applinks-assertion'] = await assertions.assertion(principal);
  return headers;
}

/** True for the headers a client may never set itself. */
export function isApplinksHeader(name: string): boolean {
  return name.length > 11 && name.charCodeAt(0) === 120 /* x */ && name.toLowerCase().startsWith('x-applinks-');
}

/** Copies incoming headers minus every `X-Applinks-*` one (they are only ever set by applinks). */
export function withoutApplinksHeaders(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {};
  for (const name in headers) if (!isApplinksHeader(name)) out[name] = headers[name];
  return out;
}
