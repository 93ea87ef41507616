import type { Principal } from '../auth/principal.js';
import type { AssertionService } from '../services/assertions.js';
import { andThen, type Awaitable } from '../util/awaitable.js';

/** The headers of the gateway contract (ARCHITECTURE.md), in the order a host reads them. */
export const IDENTITY_HEADERS = ['x-applinks-user', 'x-applinks-auth', 'x-applinks-link', 'x-applinks-scopes', 'x-applinks-assertion'] as const;

/** The identity headers for a principal; absent ones are left out. Synchronous when the assertion is cached. */
export function identityHeaders(principal: Principal, assertions: AssertionService): Awaitable<Record<string, string>> {
  return andThen(assertions.assertion(principal), (assertion) => {
    const headers: Record<string, string> = { 'x-applinks-auth': principal.authType };
    if (principal.user) headers['x-applinks-user'] = principal.user.username;
    if (principal.link) headers['x-applinks-link'] = principal.link.id;
    if (principal.scopes) headers['x-applinks-scopes'] = principal.scopes.join(' ');
    headers['x-applinks-assertion'] = assertion;
    return headers;
  });
}

/**
 * True for the headers a client may never set itself (names as Node gives them: lower case).
 * `X-Applinks_User` counts too: CGI-style hosts (PHP, WSGI, Rack) turn `-` and `_` alike into
 * `HTTP_X_APPLINKS_USER`, so an underscore spelling would pass for ours.
 */
export function isApplinksHeader(name: string): boolean {
  if (name.charCodeAt(0) !== 120 /* x */ || name.length < 11) return false;
  return name.startsWith('x-applinks-') || /^x[-_]applinks[-_]/.test(name);
}
