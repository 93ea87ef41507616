import { hashToken, randomToken } from '../crypto/tokens.js';
import { AppError } from '../errors/index.js';
import type { ApiTokenRecord } from '../storage/repositories/api-tokens.js';
import type { UserRecord } from '../storage/repositories/users.js';
import type { Store } from '../storage/store.js';
import type { Clock } from '../util/clock.js';
import { uuidv7 } from '../util/ids.js';
import { LastUse } from '../util/last-use.js';
import { andThen, type Awaitable } from '../util/awaitable.js';
import { TtlCache } from '../util/ttl-cache.js';
import { isStorableName } from '../util/text.js';
import type { Actor, AuditService } from './audit.js';
import type { Revocations } from './revocations.js';
import type { UserService } from './users.js';

/** Personal API tokens start with this prefix, so they are recognised wherever they are sent. */
export const API_TOKEN_PREFIX = 'alpat_';

export type ApiTokenView = Omit<ApiTokenRecord, 'tokenHash'>;

export function apiTokenView(t: ApiTokenRecord): ApiTokenView {
  return { id: t.id, userId: t.userId, name: t.name, createdAt: t.createdAt, expiresAt: t.expiresAt, lastUsedAt: t.lastUsedAt, linkId: t.linkId };
}

/**
 * Personal API tokens: shown once at creation, optionally issued for one application link (the
 * principal then names the link, and deleting the link deletes the token), stored as a SHA-256 hash, accepted as Bearer or
 * as the password in Basic. Last use is recorded in memory and written in batches, so a request
 * never waits for a write.
 */
export class ApiTokenService {
  private readonly cache: TtlCache<ApiTokenRecord>;
  private readonly lastUsed = new LastUse();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly users: UserService,
    private readonly audit: AuditService,
    private readonly revocations: Revocations,
    private readonly cacheTtlMs: number,
  ) {
    this.cache = revocations.register(new TtlCache(50_000, () => clock.now()));
  }

  async create(userId: string, input: { name: string; expiresAt: number | null; linkId?: string | null }, actor: Actor): Promise<{ token: string; record: ApiTokenRecord }> {
    const now = this.clock.now();
    // The API's schema bounds the length; the CLI reaches here directly, and a name is shown in lists and the audit log.
    if (!isStorableName(input.name, 200)) throw new AppError('validation_failed', { field: 'name', message: 'name: 1 to 200 characters, no control characters.' });
    if (input.expiresAt !== null && input.expiresAt <= now) {
      throw new AppError('validation_failed', { field: 'expiresAt', message: 'expiresAt: must be in the future.' });
    }
    const token = randomToken(API_TOKEN_PREFIX);
    const record: ApiTokenRecord = { id: uuidv7(now), userId, name: input.name, tokenHash: hashToken(token), createdAt: now, expiresAt: input.expiresAt, lastUsedAt: null, linkId: input.linkId ?? null };
    await this.store.transaction(async (repos) => {
      const user = await repos.users.findById(userId);
      if (!user) throw new AppError('not_found', { message: 'No such user.' });
      const link = record.linkId !== null ? await repos.links.findById(record.linkId) : undefined;
      if (record.linkId !== null && !link) throw new AppError('validation_failed', { field: 'linkId', message: 'linkId: no such application link.' });
      await repos.apiTokens.create(record);
      await this.audit.record(
        actor,
        { action: 'token.create', target: { type: 'api-token', id: record.id, name: record.name }, details: { user: user.username, expiresAt: record.expiresAt, link: link?.name ?? null } },
        repos,
      );
    });
    return { token, record };
  }

  async list(userId: string): Promise<ApiTokenRecord[]> {
    const tokens = await this.store.apiTokens.listForUser(userId);
    // Unflushed last-use times are newer than the stored ones.
    return tokens.map((t) => ({ ...t, lastUsedAt: this.lastUsed.get(t.id) ?? t.lastUsedAt }));
  }

  /** Revokes a token; with `ownerId`, only if it belongs to that user. */
  async revoke(id: string, actor: Actor, ownerId?: string): Promise<void> {
    await this.store.transaction(async (repos) => {
      const token = await repos.apiTokens.findById(id);
      if (!token || (ownerId !== undefined && token.userId !== ownerId)) throw new AppError('not_found', { message: 'No such token.' });
      await repos.apiTokens.delete(id);
      await this.audit.record(actor, { action: 'token.revoke', target: { type: 'api-token', id, name: token.name } }, repos);
    });
    this.revocations.credential(id);
  }

  /** Revokes every token issued for a link (the link stays); answers how many. */
  async revokeForLink(linkId: string, actor: Actor): Promise<number> {
    const count = await this.store.transaction(async (repos) => {
      const n = await repos.apiTokens.deleteForLink(linkId);
      if (n > 0) await this.audit.record(actor, { action: 'token.link.revoke', target: { type: 'link', id: linkId }, details: { tokens: n } }, repos);
      return n;
    });
    this.revocations.link(linkId);
    return count;
  }

  /**
   * Checks a presented token. Throws invalid_credentials, credential_expired or user_disabled.
   * Synchronous when the token and its user are cached. The cache is keyed by the token as
   * presented, so a hit costs no hash; the store holds only the hash.
   */
  authenticate(token: string): Awaitable<{ token: ApiTokenRecord; user: UserRecord }> {
    const record = this.cache.get(token);
    return record ? this.check(record) : this.load(token).then((found) => this.check(found));
  }

  private async load(token: string): Promise<ApiTokenRecord> {
    const record = await this.store.apiTokens.findByHash(hashToken(token));
    if (!record) throw new AppError('invalid_credentials', { message: 'The API token is not valid.', detail: 'unknown api token' });
    this.cache.set(token, record, this.cacheTtlMs, [`user:${record.userId}`, `cred:${record.id}`, ...(record.linkId ? [`link:${record.linkId}`] : [])]);
    return record;
  }

  private check(record: ApiTokenRecord): Awaitable<{ token: ApiTokenRecord; user: UserRecord }> {
    const now = this.clock.now();
    if (record.expiresAt !== null && record.expiresAt <= now) throw new AppError('credential_expired', { message: 'The API token has expired.' });
    return andThen(this.users.cached(record.userId), (user) => {
      if (!user) throw new AppError('invalid_credentials', { message: 'The API token is not valid.' });
      if (user.disabled) throw new AppError('user_disabled');
      this.lastUsed.note(record.id, now);
      return { token: record, user };
    });
  }

  /** Writes the batched last-use times. */
  async flushLastUsed(): Promise<void> {
    await this.lastUsed.flush((batch) => this.store.apiTokens.touch(batch));
  }
}
