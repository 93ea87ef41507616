import { AppError } from '../errors/index.js';
import { anonymousPrincipal, WARNINGS, type Principal, type Warning } from './principal.js';
import type { Authenticator } from './registry.js';
import type { AuthRequest } from './request.js';

const LOOPBACK = /^(127\.|::1$|::ffff:127\.)/;

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
  async authenticateForHost(req: AuthRequest): Promise<Principal> {
    const principal = await this.authenticate(req);
    for (const authorize of this.authorizers) authorize(principal, req);
    return principal;
  }

  async authenticate(req: AuthRequest): Promise<Principal> {
    let principal: Principal | undefined;
    try {
      for (const authenticator of this.authenticators) {
        // Authenticators that pass answer undefined synchronously: no promise, no microtask.
        const answer = authenticator.authenticate(req);
        principal = answer instanceof Promise ? await answer : answer;
        if (principal) break;
      }
      if (!principal && req.headers.authorization !== undefined) {
        throw new AppError('malformed_credentials', {
          message: 'The Authorization header holds no credential this server accepts.',
        });
      }
    } catch (error) {
      throw error instanceof AppError && error.status === 401 ? this.withChallenges(error, req) : error;
    }
    const transport = this.transportWarnings(req);
    if (!principal) return anonymousPrincipal(req.connection, transport);
    return transport.length === 0 ? principal : { ...principal, warnings: [...principal.warnings, ...transport] };
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
    return req.secure || LOOPBACK.test(req.remoteAddress) ? [] : [WARNINGS['insecure-transport']];
  }
}
