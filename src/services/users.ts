import { randomUUID } from 'node:crypto';
import type { PrincipalUser } from '../auth/principal.js';
import { hashPassword } from '../crypto/password.js';
import { fullFormats } from 'ajv-formats/dist/formats.js';
import { isStorableName } from '../util/text.js';
import { AppError } from '../errors/index.js';
import { UniqueViolation, type Executor } from '../storage/repositories/common.js';
import type { UserListQuery, UserPatch, UserRecord } from '../storage/repositories/users.js';
import type { Repositories, Store } from '../storage/store.js';
import type { Clock } from '../util/clock.js';
import type { Awaitable } from '../util/awaitable.js';
import { TtlCache } from '../util/ttl-cache.js';
import type { Actor, AuditService } from './audit.js';
import type { Revocations } from './revocations.js';

/** Usernames travel in HTTP headers (X-Applinks-User), so they are limited to a header-safe set. */
export const USERNAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}$';
const USERNAME = new RegExp(USERNAME_PATTERN);
/** The API schema's `format: 'email'` (ajv-formats), so the CLI accepts exactly what the API does. */
const EMAIL = fullFormats.email as RegExp;

export interface UserInput {
  username: string;
  displayName?: string;
  email?: string | null;
  password?: string | null;
  isAdmin?: boolean;
  disabled?: boolean;
  groups?: string[];
}

export type UserUpdate = Partial<Omit<UserInput, 'username'>> & { username?: string };

const principalUsers = new WeakMap<UserRecord, PrincipalUser>();

/**
 * The principal's view of a user record. Records are never changed in place (an update makes a
 * new one), so the view of a cached record is built once and shared by every request.
 */
export function toPrincipalUser(u: UserRecord): PrincipalUser {
  let view = principalUsers.get(u);
  if (!view) {
    view = { id: u.id, username: u.username, displayName: u.displayName, email: u.email, isAdmin: u.isAdmin, groups: u.groups };
    principalUsers.set(u, view);
  }
  return view;
}

/**
 * The built-in user directory. Disabling, deleting or changing the password of a user ends their
 * sessions and drops every cached credential of theirs on this instance at once.
 */
export class UserService {
  private readonly cache: TtlCache<UserRecord>;
  /** Set once the modules are set up: revokes, inside the disabling transaction, what the user authorized. */
  onDisable?: (trx: Executor, userId: string) => Promise<unknown>;
  /** Set once the modules are set up: inside the deleting transaction, drops references to the user; answers the links it changed. */
  onDelete?: (repos: Repositories, userId: string) => Promise<readonly string[]>;
  private readonly byName: TtlCache<UserRecord | null>;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly audit: AuditService,
    private readonly revocations: Revocations,
    private readonly cacheTtlMs: number,
  ) {
    this.cache = revocations.register(new TtlCache<UserRecord>(10_000, () => clock.now()));
    this.byName = revocations.register(new TtlCache<UserRecord | null>(10_000, () => clock.now()));
  }

  /** The user, from a cache that lives APPLINKS_AUTH_CACHE_TTL_MS: the hot path of every request. */
  cached(id: string): Awaitable<UserRecord | undefined> {
    return this.cache.get(id) ?? this.load(id);
  }

  private async load(id: string): Promise<UserRecord | undefined> {
    const user = await this.store.users.findById(id);
    if (user) this.cache.set(id, user, this.cacheTtlMs, [`user:${id}`]);
    return user;
  }

  /**
   * The user by username, cached like `cached` (for protocols that name users: 2-legged OAuth's
   * "execute as", impersonation). An unknown name is remembered as unknown for the same short time.
   */
  async cachedByUsername(username: string): Promise<UserRecord | undefined> {
    const key = username.toLowerCase();
    const hit = this.byName.get(key);
    if (hit !== undefined) return hit ?? undefined;
    const user = await this.store.users.findByUsername(username);
    this.byName.set(key, user ?? null, this.cacheTtlMs, user ? [`user:${user.id}`] : []);
    return user;
  }

  async get(id: string): Promise<UserRecord> {
    const user = await this.store.users.findById(id);
    if (!user) throw new AppError('not_found', { message: 'No such user.' });
    return user;
  }

  findByUsername(username: string): Promise<UserRecord | undefined> {
    return this.store.users.findByUsername(username);
  }

  list(query: UserListQuery): Promise<{ users: UserRecord[]; total: number }> {
    return this.store.users.list(query);
  }

  async create(input: UserInput, actor: Actor): Promise<UserRecord> {
    checkUsername(input.username);
    checkProfile(input);
    const passwordHash = input.password ? await hashPassword(checkPassword(input.password)) : null;
    const now = this.clock.now();
    try {
      const created = await this.store.transaction(async (repos) => {
        const user = await repos.users.create({
          id: randomUUID(),
          username: input.username,
          displayName: input.displayName ?? input.username,
          email: input.email ?? null,
          passwordHash,
          isAdmin: input.isAdmin ?? false,
          disabled: input.disabled ?? false,
          groups: input.groups ?? [],
          now,
        });
        await this.audit.record(actor, { action: 'user.create', target: { type: 'user', id: user.id, name: user.username }, details: { admin: user.isAdmin } }, repos);
        return user;
      });
      // The name may be cached as unknown on this instance.
      this.byName.delete(created.username.toLowerCase());
      return created;
    } catch (error) {
      if (error instanceof UniqueViolation) throw new AppError('conflict', { message: `A user named "${input.username}" already exists.`, field: 'username' });
      throw error;
    }
  }

  async update(id: string, update: UserUpdate, actor: Actor): Promise<UserRecord> {
    if (update.username !== undefined) checkUsername(update.username);
    checkProfile(update);
    const patch: UserPatch = {};
    if (update.username !== undefined) patch.username = update.username;
    if (update.displayName !== undefined) patch.displayName = update.displayName;
    if (update.email !== undefined) patch.email = update.email;
    if (update.isAdmin !== undefined) patch.isAdmin = update.isAdmin;
    if (update.disabled !== undefined) patch.disabled = update.disabled;
    if (update.groups !== undefined) patch.groups = update.groups;
    if (update.password !== undefined) patch.passwordHash = update.password === null ? null : await hashPassword(checkPassword(update.password));
    try {
      const user = await this.store.transaction(async (repos, trx) => {
        const before = await repos.users.findById(id);
        if (!before) throw new AppError('not_found', { message: 'No such user.' });
        const after = (await repos.users.update(id, patch, this.clock.now()))!;
        const disabling = patch.disabled === true && !before.disabled;
        if (disabling || patch.passwordHash !== undefined) await repos.sessions.deleteForUser(id);
        // Disabling ends the user's API tokens and revokes what applications were given, so
        // re-enabling brings none of it back (a disabled account is often a compromised one).
        if (disabling) {
          await repos.apiTokens.deleteForUser(id);
          await this.onDisable?.(trx, id);
        }
        await this.audit.record(
          actor,
          {
            action: disabling ? 'user.disable' : patch.disabled === false && before.disabled ? 'user.enable' : 'user.update',
            target: { type: 'user', id, name: after.username },
            // Field names only: never the values of passwords.
            details: { fields: Object.keys(update).filter((k) => (update as Record<string, unknown>)[k] !== undefined) },
          },
          repos,
        );
        return after;
      });
      this.revocations.user(id);
      return user;
    } catch (error) {
      if (error instanceof UniqueViolation) throw new AppError('conflict', { message: `A user named "${update.username}" already exists.`, field: 'username' });
      throw error;
    }
  }

  async delete(id: string, actor: Actor): Promise<void> {
    const changedLinks = await this.store.transaction(async (repos, trx) => {
      // First, so that a write naming the user (a service account) either commits before this
      // reads what names them, or waits and finds them gone.
      await this.store.capabilities.lockRow(trx, 'users', id, 'update');
      const user = await repos.users.findById(id);
      if (!user) throw new AppError('not_found', { message: 'No such user.' });
      const changed = (await this.onDelete?.(repos, id)) ?? [];
      await repos.users.delete(id);
      await this.audit.record(actor, { action: 'user.delete', target: { type: 'user', id, name: user.username }, ...(changed.length > 0 ? { details: { linksChanged: changed } } : {}) }, repos);
      return changed;
    });
    this.revocations.user(id);
    for (const linkId of changedLinks) this.revocations.link(linkId);
  }
}

function checkUsername(username: string): void {
  if (!USERNAME.test(username)) {
    throw new AppError('validation_failed', {
      field: 'username',
      message: 'username: 1 to 100 letters, digits or . _ @ + -, starting with a letter or digit.',
    });
  }
}

/** The checks the API's schema makes, for every caller (the CLI too): the store keeps only these. */
function checkProfile(input: Pick<UserInput, 'displayName' | 'email' | 'groups'>): void {
  if (input.displayName !== undefined && !isStorableName(input.displayName, 200)) {
    throw new AppError('validation_failed', { field: 'displayName', message: 'displayName: 1 to 200 characters, no control characters.' });
  }
  if (input.email !== undefined && input.email !== null && (input.email.length > 320 || !EMAIL.test(input.email))) {
    throw new AppError('validation_failed', { field: 'email', message: `email: "${input.email.slice(0, 100)}" is not an email address.` });
  }
  if (input.groups !== undefined && (input.groups.length > 200 || input.groups.some((g) => !isStorableName(g, 100)))) {
    throw new AppError('validation_failed', { field: 'groups', message: 'groups: at most 200 names of 1 to 100 characters, no control characters.' });
  }
}

function checkPassword(password: string): string {
  if (password.length < 8 || password.length > 1024) {
    throw new AppError('validation_failed', { field: 'password', message: 'password: 8 to 1024 characters.' });
  }
  return password;
}
