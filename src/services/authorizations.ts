import { AppError } from '../errors/index.js';
import type { Executor } from '../storage/repositories/common.js';
import type { Actor } from './audit.js';
import type { Services } from './index.js';

/** One application a user authorized to act for them (an OAuth 1.0a access token, an OAuth 2.0 grant). */
export interface Authorization {
  /** Unique across modules (modules prefix their ids). */
  id: string;
  /** The authentication type id (`oauth1`, `oauth2`...). */
  type: string;
  application: { name: string; linkId: string | null; linkName: string | null };
  /** Granted scopes, or null when the type has none. */
  scopes: string[] | null;
  createdAt: number;
  lastUsedAt: number | null;
  expiresAt: number | null;
}

/**
 * What a protocol module that issues per-user authorizations implements. Revocation takes
 * effect on the next request on this instance (drop caches through `Revocations`) and within
 * APPLINKS_AUTH_CACHE_TTL_MS on others.
 */
export interface AuthorizationProvider {
  list(userId: string): Promise<Authorization[]>;
  /** Revokes one authorization of this user; false when the id is unknown or not theirs. */
  revoke(userId: string, id: string, actor: Actor): Promise<boolean>;
  /** Revokes every authorization issued through a link; answers how many. */
  revokeForLink(linkId: string, actor: Actor): Promise<number>;
  /**
   * Inside the caller's transaction (a user disabled, or all of a user's authorizations revoked
   * by an administrator): revokes everything this module issued for the user; answers how many
   * applications. The caller audits and drops the user's cached credentials.
   */
  revokeForUser(trx: Executor, userId: string): Promise<number>;
}

/** The authorizations of every module, as one list. */
export class Authorizations {
  constructor(private readonly services: () => Services) {}

  private get providers(): AuthorizationProvider[] {
    return this.services().runtimes.flatMap((r) => (r.authorizations ? [r.authorizations] : []));
  }

  async list(userId: string): Promise<Authorization[]> {
    const all = await Promise.all(this.providers.map((p) => p.list(userId)));
    return all.flat().sort((a, b) => b.createdAt - a.createdAt);
  }

  async revoke(userId: string, id: string, actor: Actor): Promise<boolean> {
    for (const provider of this.providers) if (await provider.revoke(userId, id, actor)) return true;
    return false;
  }

  /** Everything issued through a link: each module's authorizations and the API tokens issued for it. */
  async revokeForLink(linkId: string, actor: Actor): Promise<number> {
    let count = await this.services().apiTokens.revokeForLink(linkId, actor);
    for (const provider of this.providers) count += await provider.revokeForLink(linkId, actor);
    return count;
  }

  /** Inside the caller's transaction: every module revokes what it issued for the user. */
  async revokeForUser(trx: Executor, userId: string): Promise<number> {
    let count = 0;
    for (const provider of this.providers) count += await provider.revokeForUser(trx, userId);
    return count;
  }

  /** An administrator revokes every application a user authorized, at once. */
  async revokeAllOfUser(userId: string, actor: Actor): Promise<number> {
    const s = this.services();
    const count = await s.store.transaction(async (repos, trx) => {
      const user = await repos.users.findById(userId);
      if (!user) throw new AppError('not_found', { message: 'No such user.' });
      const n = await this.revokeForUser(trx, userId);
      await s.audit.record(actor, { action: 'authorization.revoke-all', target: { type: 'user', id: userId, name: user.username }, details: { applications: n } }, repos);
      return n;
    });
    s.revocations.user(userId);
    return count;
  }
}
