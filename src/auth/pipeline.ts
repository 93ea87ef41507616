import { AppError } from '../errors/index.js';
import { isLoopback } from './edge.js';
import { anonymousPrincipal, WARNINGS, type Principal, type Warning } from './principal.js';
import type { Authenticator } from './registry.js';
import type { AuthRequest } from './request.js';
import { andThen, type Awaitable } from '../util/awaitable.js';


/**
 * The incoming pipeline: ordered authenticators, the first that claims the request decides.
 * Nobody claiming means anonymous, except that an Authorization header nobody understood is
 * refused: a credential that was not accepted never becomes anonymous access.
 */
export class Pipeline {
  private readonly authenticators: readonly Authenticator[];

  constructor(
    entries: ReadonlyArray<{ order: number; authenticator: Authenticator }>,
    private readonly authorizers: ReadonlyArray<(principal: Principal, req: AuthRequest) => void> = [],
  ) {
    this.authenticators = [...entries].sort((a, b) => a.order - b.order).map((e) => e.authenticator);
  }

  /** Authenticates, then applies the modules' rules for requests bound for the host. */
  authenticateForHost(req: AuthRequest): Awaitable<Principal> {
    return andThen(this.authenticate(req), (principal) => this.authorizeForHost(principal, req));
  }

  /** The modules' rules for requests bound for the host (e.g. a READ token only reads); throws when one refuses. */
  authorizeForHost(principal: Principal, req: AuthRequest): Principal {
    for (const authorize of this.authorizers) authorize(principal, req);
    return principal;
  }

  /**
   * The principal of a request. Synchronous when every authenticator asked answered
   * synchronously (credentials found in caches, or none at all); a promise otherwise.
   */
  authenticate(req: AuthRequest): Awaitable<Principal> {
    const list = this.authenticators;
    try {
      for (let i = 0; i < list.length; i++) {
        // Authenticators that pass answer undefined synchronously: no promise, no microtask.
        const answer = list[i]!.authenticate(req);
        if (answer instanceof Promise) return this.settle(answer, i, req);
        if (answer) return this.finish(answer, req);
      }
      return this.finish(undefined, req);
    } catch (error) {
      throw this.challenged(error, req);
    }
  }

  /** The rest of `authenticate` once authenticator `index` answered with a promise. */
  private async settle(pending: Promise<Principal | undefined>, index: number, req: AuthRequest): Promise<Principal> {
    const list = this.authenticators;
    try {
      let principal = await pending;
      for (let i = index + 1; !principal && i < list.length; i++) {
        const answer = list[i]!.authenticate(req);
        principal = answer instanceof Promise ? await answer : answer;
      }
      return this.finish(principal, req);
    } catch (error) {
      throw this.challenged(error, req);
    }
  }

  private finish(principal: Principal | undefined, req: AuthRequest): Principal {
    if (!principal && req.headers.authorization !== undefined) {
      throw new AppError('malformed_credentials', {
        message: 'The Authorization header holds no credential this server accepts.',
      });
    }
    const transport = this.transportWarnings(req);
    if (!principal) return anonymousPrincipal(req.connection, transport);
    return transport.length === 0 ? principal : { ...principal, warnings: [...principal.warnings, ...transport] };
  }

  private challenged(error: unknown, req: AuthRequest): unknown {
    return error instanceof AppError && error.status === 401 ? this.withChallenges(error, req) : error;
  }

  /** Every challenge the pipeline offers, for a 401 on a resource that needs authentication. */
  challenges(req: AuthRequest): string[] {
    const out: string[] = [];
    for (const a of this.authenticators) {
      const c = a.challenge?.(req);
      if (c) out.push(c);
    }
    return out;
  }

  /** A 401 that names every way to authenticate, unless the authenticator set its own challenge. */
  unauthenticated(req: AuthRequest, message?: string): AppError {
    return this.withChallenges(new AppError('unauthenticated', message ? { message } : {}), req);
  }

  private withChallenges(error: AppError, req: AuthRequest): AppError {
    if (error.headers['www-authenticate'] !== undefined) return error;
    error.headers['www-authenticate'] = this.challenges(req);
    return error;
  }

  private transportWarnings(req: AuthRequest): Warning[] {
    return req.secure || isLoopback(req.remoteAddress) ? [] : [WARNINGS['insecure-transport']];
  }
}
