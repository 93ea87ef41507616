import type { Selectable } from 'kysely';
import type { UsersTable } from '../schema.js';
import { uniquely, bool, int, type Executor } from './common.js';

export interface UserRecord {
  id: string;
  username: string;
  displayName: string;
  email: string | null;
  passwordHash: string | null;
  isAdmin: boolean;
  disabled: boolean;
  groups: string[];
  createdAt: number;
  updatedAt: number;
}

export type NewUser = Omit<UserRecord, 'createdAt' | 'updatedAt'> & { now: number };
export type UserPatch = Partial<Pick<UserRecord, 'username' | 'displayName' | 'email' | 'passwordHash' | 'isAdmin' | 'disabled' | 'groups'>>;

export interface UserListQuery {
  limit: number;
  offset: number;
  /** Case-insensitive substring of username, display name or email. */
  search?: string;
}

/**
 * Users and their groups. Contracts: usernames are unique regardless of case (`create` and
 * `update` throw UniqueViolation); `update` and `delete` answer undefined/false for unknown ids;
 * deleting a user deletes their groups, sessions and API tokens (foreign-key cascade).
 */
export interface UserRepository {
  create(user: NewUser): Promise<UserRecord>;
  findById(id: string): Promise<UserRecord | undefined>;
  findByUsername(username: string): Promise<UserRecord | undefined>;
  list(query: UserListQuery): Promise<{ users: UserRecord[]; total: number }>;
  update(id: string, patch: UserPatch, now: number): Promise<UserRecord | undefined>;
  delete(id: string): Promise<boolean>;
  /** Enabled administrators. */
  countAdmins(): Promise<number>;
}

export class KyselyUserRepository implements UserRepository {
  constructor(private readonly db: Executor) {}

  async create(user: NewUser): Promise<UserRecord> {
    await uniquely(() =>
      this.db
        .insertInto('users')
        .values({
          id: user.id,
          username: user.username,
          username_key: user.username.toLowerCase(),
          display_name: user.displayName,
          email: user.email,
          password_hash: user.passwordHash,
          is_admin: int(user.isAdmin),
          disabled: int(user.disabled),
          created_at: user.now,
          updated_at: user.now,
        })
        .execute(),
    );
    await this.replaceGroups(user.id, user.groups);
    return (await this.findById(user.id))!;
  }

  async findById(id: string): Promise<UserRecord | undefined> {
    const row = await this.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? this.withGroups(row) : undefined;
  }

  async findByUsername(username: string): Promise<UserRecord | undefined> {
    // Names come from the wire (Basic, xoauth_requestor_id...): no user has a NUL, and PostgreSQL refuses one in text.
    if (username.includes('\u0000')) return undefined;
    const row = await this.db.selectFrom('users').selectAll().where('username_key', '=', username.toLowerCase()).executeTakeFirst();
    return row ? this.withGroups(row) : undefined;
  }

  async list(query: UserListQuery): Promise<{ users: UserRecord[]; total: number }> {
    let base = this.db.selectFrom('users');
    if (query.search) {
      const like = `%${query.search.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      base = base.where((eb) =>
        eb.or([
          eb('username_key', 'like', eb.val(like)),
          eb(eb.fn('lower', ['display_name']), 'like', like),
          eb(eb.fn('lower', ['email']), 'like', like),
        ]),
      );
    }
    const [rows, total] = await Promise.all([
      base.selectAll().orderBy('username_key').limit(query.limit).offset(query.offset).execute(),
      base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
    ]);
    const groups = await this.groupsOf(rows.map((r) => r.id));
    return { users: rows.map((r) => toRecord(r, groups.get(r.id) ?? [])), total: Number(total.n) };
  }

  async update(id: string, patch: UserPatch, now: number): Promise<UserRecord | undefined> {
    const values: Record<string, unknown> = { updated_at: now };
    if (patch.username !== undefined) {
      values.username = patch.username;
      values.username_key = patch.username.toLowerCase();
    }
    if (patch.displayName !== undefined) values.display_name = patch.displayName;
    if (patch.email !== undefined) values.email = patch.email;
    if (patch.passwordHash !== undefined) values.password_hash = patch.passwordHash;
    if (patch.isAdmin !== undefined) values.is_admin = int(patch.isAdmin);
    if (patch.disabled !== undefined) values.disabled = int(patch.disabled);
    const result = await uniquely(() => this.db.updateTable('users').set(values).where('id', '=', id).executeTakeFirst());
    if (Number(result.numUpdatedRows) === 0) return undefined;
    if (patch.groups !== undefined) await this.replaceGroups(id, patch.groups);
    return this.findById(id);
  }

  async delete(id: string): Promise<boolean> {
    const result = await this.db.deleteFrom('users').where('id', '=', id).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  async countAdmins(): Promise<number> {
    const row = await this.db
      .selectFrom('users')
      .where('is_admin', '=', 1)
      .where('disabled', '=', 0)
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  private async replaceGroups(userId: string, groups: string[]): Promise<void> {
    await this.db.deleteFrom('user_groups').where('user_id', '=', userId).execute();
    const unique = [...new Set(groups)];
    if (unique.length > 0) {
      await this.db.insertInto('user_groups').values(unique.map((group_name) => ({ user_id: userId, group_name }))).execute();
    }
  }

  private async groupsOf(ids: string[]): Promise<Map<string, string[]>> {
    const map = new Map<string, string[]>();
    if (ids.length === 0) return map;
    const rows = await this.db.selectFrom('user_groups').selectAll().where('user_id', 'in', ids).orderBy('group_name').execute();
    for (const row of rows) map.set(row.user_id, [...(map.get(row.user_id) ?? []), row.group_name]);
    return map;
  }

  private async withGroups(row: UserRow): Promise<UserRecord> {
    const groups = await this.groupsOf([row.id]);
    return toRecord(row, groups.get(row.id) ?? []);
  }
}

type UserRow = Selectable<UsersTable>;

function toRecord(row: UserRow, groups: string[]): UserRecord {
  return {
    id: row.id,
    username: row.username,
    displayName: row.display_name,
    email: row.email,
    passwordHash: row.password_hash,
    isAdmin: bool(row.is_admin),
    disabled: bool(row.disabled),
    groups,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}
