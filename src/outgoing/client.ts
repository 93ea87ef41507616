import { request as undiciRequest } from 'undici';
import type { PrincipalUser } from '../auth/principal.js';
import { AppError } from '../errors/index.js';
import type { Services } from '../services/index.js';
import { toPrincipalUser } from '../services/users.js';
import type { OutgoingRequest } from './types.js';

export interface OutgoingCall {
  method?: string;
  /** A path below the link's URL (`/rest/api/2/myself`) or an absolute URL on the link's origin. */
  url: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** The user to act for: a username, a principal user, or null/absent for the application itself. */
  asUser?: string | PrincipalUser | null;
  /** An outgoing type to use instead of the link's primary one. */
  type?: string;
  timeoutMs?: number;
}

export type OutgoingResult =
  | { kind: 'response'; authType: string; status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }
  | { kind: 'authorization-required'; authType: string; authorizationUrl: string; message: string };

/**
 * The client host code uses to call a linked application: it signs with the link's primary
 * outgoing type (highest weight) or the one asked for, and never sends a link's credentials to
 * an origin other than the link's.
 */
export class OutgoingClient {
  constructor(private readonly s: Services) {}

  async request(linkRef: string, call: OutgoingCall): Promise<OutgoingResult> {
    const link = (await this.s.store.links.findById(linkRef)) ?? (await this.s.store.links.findByName(linkRef));
    if (!link) throw new AppError('not_found', { message: `No application link "${linkRef}".` });
    if (!link.url) throw new AppError('validation_failed', { field: 'link', message: 'The link is incoming-only: it has no URL to call.' });
    const auths = (await this.s.store.links.listAuth(link.id)).filter((a) => a.direction === 'outgoing');
    const asUser = await this.userOf(call.asUser);
    // A call for no user takes the primary type among those that do not act for a user.
    const descriptor = call.type ? this.s.registry.get(call.type) : this.s.registry.primary(auths.map((a) => a.type), { withoutUser: asUser === null });
    const auth = descriptor && auths.find((a) => a.type === descriptor.id);
    if (!descriptor || !auth) {
      const missing = call.type
        ? `The link has no outgoing ${call.type} configuration.`
        : auths.length > 0 && asUser === null
          ? 'Every outgoing type of the link signs for a user: name the user (asUser).'
          : 'The link has no outgoing authentication configured.';
      throw new AppError('validation_failed', { field: call.type || auths.length === 0 ? 'type' : 'asUser', message: missing });
    }
    const signer = descriptor.outgoing?.signer;
    if (!signer) throw new AppError('validation_failed', { field: 'type', message: `${descriptor.id} cannot sign requests.` });

    const url = resolveOnOrigin(link.url, call.url);
    const request: OutgoingRequest = { method: (call.method ?? 'GET').toUpperCase(), url, headers: { ...(call.headers ?? {}) }, ...(call.body !== undefined ? { body: call.body } : {}) };
    const context = { link, config: auth.config, secrets: this.s.links.openSecrets(auth), asUser, services: this.s };
    const signed = await signer.sign(request, context);
    if (signed.kind === 'authorization-required') return { ...signed, authType: descriptor.id };
    const res = await undiciRequest(signed.request.url, {
      method: signed.request.method as 'GET',
      headers: signed.request.headers,
      body: signed.request.body ?? null,
      headersTimeout: call.timeoutMs ?? 30_000,
      bodyTimeout: call.timeoutMs ?? 30_000,
    });
    const body = Buffer.from(await res.body.arrayBuffer());
    if (res.statusCode === 401 && signer.rejected) {
      const again = await signer.rejected({ status: res.statusCode, headers: res.headers, body }, context);
      if (again) return { ...again, authType: descriptor.id };
    }
    return { kind: 'response', authType: descriptor.id, status: res.statusCode, headers: res.headers, body };
  }

  private async userOf(asUser: OutgoingCall['asUser']): Promise<PrincipalUser | null> {
    if (asUser === undefined || asUser === null) return null;
    if (typeof asUser !== 'string') return asUser;
    const user = await this.s.users.findByUsername(asUser);
    if (!user || user.disabled) throw new AppError('validation_failed', { field: 'asUser', message: `No enabled user "${asUser}".` });
    return toPrincipalUser(user);
  }
}

/** The absolute URL of `target` below `base`, refusing any other origin (credentials stay with their link). */
export function resolveOnOrigin(base: string, target: string): string {
  const baseUrl = new URL(base.endsWith('/') ? base : `${base}/`);
  const url = /^[a-z][a-z0-9+.-]*:/i.test(target) ? new URL(target) : new URL(target.replace(/^\//, ''), baseUrl);
  if (url.origin !== baseUrl.origin) throw new AppError('validation_failed', { field: 'url', message: `Refusing to send the link's credentials to ${url.origin}.` });
  return url.toString();
}
