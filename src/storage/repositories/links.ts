import type { Selectable } from 'kysely';
import type { LinkAuthTable, LinksTable } from '../schema.js';
import { uniquely, type Executor } from './common.js';

export type Direction = 'incoming' | 'outgoing';

export interface LinkRecord {
  id: string;
  name: string;
  url: string | null;
  applicationType: string;
  remoteApplicationId: string | null;
  createdAt: number;
  updatedAt: number;
}

export interface LinkAuthRecord {
  linkId: string;
  direction: Direction;
  type: string;
  config: Record<string, unknown>;
  /** Sealed JSON of the type's secret fields. */
  secretsSealed: string | null;
  /**
   * The names of the secret fields in `secretsSealed` (not secret), so they can be listed without
   * opening it; null (or absent) on rows written before the names were kept.
   */
  secretFields?: readonly string[] | null;
  lookupKey: string | null;
  createdAt: number;
  updatedAt: number;
}

export type LinkPatch = Partial<Pick<LinkRecord, 'name' | 'url' | 'applicationType' | 'remoteApplicationId'>>;

/**
 * Application links and their per-direction authentication configurations. Contracts: link
 * names are unique regardless of case, and a lookup key is unique per (direction, type): both
 * throw UniqueViolation. Deleting a link deletes its configurations and everything that
 * references the link by foreign key (tokens, consumers, clients) in the same statement.
 */
export interface LinkRepository {
  create(link: LinkRecord): Promise<void>;
  findById(id: string): Promise<LinkRecord | undefined>;
  findByName(name: string): Promise<LinkRecord | undefined>;
  list(): Promise<LinkRecord[]>;
  update(id: string, patch: LinkPatch, now: number): Promise<LinkRecord | undefined>;
  delete(id: string): Promise<boolean>;
  listAuth(linkId: string): Promise<LinkAuthRecord[]>;
  listAllAuth(): Promise<LinkAuthRecord[]>;
  findAuth(linkId: string, direction: Direction, type: string): Promise<LinkAuthRecord | undefined>;
  findAuthByLookupKey(direction: Direction, type: string, lookupKey: string): Promise<LinkAuthRecord | undefined>;
  upsertAuth(auth: LinkAuthRecord): Promise<void>;
  /**
   * Replaces a configuration only if it is still exactly as `expected` was read (configuration,
   * sealed secrets, lookup key, update time): false, with nothing written, when it changed or went
   * meanwhile (another request or instance, a key rotation re-sealing it).
   */
  replaceAuth(expected: LinkAuthRecord, next: LinkAuthRecord): Promise<boolean>;
  /** Adds a configuration the link does not have: one that exists (written meanwhile) throws UniqueViolation, as a taken lookup key does. */
  insertAuth(auth: LinkAuthRecord): Promise<void>;
  deleteAuth(linkId: string, direction: Direction, type: string): Promise<boolean>;
  /** Replaces the sealed secrets alone, unconditionally (tests plant values with it; re-sealing goes through KeyService.reseal). */
  setSealedSecrets(linkId: string, direction: Direction, type: string, secretsSealed: string): Promise<void>;
}

export class KyselyLinkRepository implements LinkRepository {
  constructor(private readonly db: Executor) {}

  async create(l: LinkRecord): Promise<void> {
    await uniquely(() =>
      this.db
        .insertInto('links')
        .values({
          id: l.id,
          name: l.name,
          name_key: l.name.toLowerCase(),
          url: l.url,
          application_type: l.applicationType,
          remote_application_id: l.remoteApplicationId,
          created_at: l.createdAt,
          updated_at: l.updatedAt,
        })
        .execute(),
    );
  }

  async findById(id: string): Promise<LinkRecord | undefined> {
    const row = await this.db.selectFrom('links').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toLink(row) : undefined;
  }

  async findByName(name: string): Promise<LinkRecord | undefined> {
    const row = await this.db.selectFrom('links').selectAll().where('name_key', '=', name.toLowerCase()).executeTakeFirst();
    return row ? toLink(row) : undefined;
  }

  async list(): Promise<LinkRecord[]> {
    const rows = await this.db.selectFrom('links').selectAll().orderBy('name_key').execute();
    return rows.map(toLink);
  }

  async update(id: string, patch: LinkPatch, now: number): Promise<LinkRecord | undefined> {
    const values: Record<string, unknown> = { updated_at: now };
    if (patch.name !== undefined) {
      values.name = patch.name;
      values.name_key = patch.name.toLowerCase();
    }
    if (patch.url !== undefined) values.url = patch.url;
    if (patch.applicationType !== undefined) values.application_type = patch.applicationType;
    if (patch.remoteApplicationId !== undefined) values.remote_application_id = patch.remoteApplicationId;
    const r = await uniquely(() => this.db.updateTable('links').set(values).where('id', '=', id).executeTakeFirst());
    return Number(r.numUpdatedRows) > 0 ? this.findById(id) : undefined;
  }

  async delete(id: string): Promise<boolean> {
    const r = await this.db.deleteFrom('links').where('id', '=', id).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async listAuth(linkId: string): Promise<LinkAuthRecord[]> {
    const rows = await this.db.selectFrom('link_auth').selectAll().where('link_id', '=', linkId).orderBy('direction').orderBy('type').execute();
    return rows.map(toAuth);
  }

  async listAllAuth(): Promise<LinkAuthRecord[]> {
    const rows = await this.db.selectFrom('link_auth').selectAll().execute();
    return rows.map(toAuth);
  }

  async findAuth(linkId: string, direction: Direction, type: string): Promise<LinkAuthRecord | undefined> {
    const row = await this.db
      .selectFrom('link_auth')
      .selectAll()
      .where('link_id', '=', linkId)
      .where('direction', '=', direction)
      .where('type', '=', type)
      .executeTakeFirst();
    return row ? toAuth(row) : undefined;
  }

  async findAuthByLookupKey(direction: Direction, type: string, lookupKey: string): Promise<LinkAuthRecord | undefined> {
    const row = await this.db
      .selectFrom('link_auth')
      .selectAll()
      .where('direction', '=', direction)
      .where('type', '=', type)
      .where('lookup_key', '=', lookupKey)
      .executeTakeFirst();
    return row ? toAuth(row) : undefined;
  }

  async upsertAuth(a: LinkAuthRecord): Promise<void> {
    const values = authValues(a);
    await uniquely(() =>
      this.db
        .insertInto('link_auth')
        .values(values)
        .onConflict((oc) =>
          oc.columns(['link_id', 'direction', 'type']).doUpdateSet({
            config: values.config,
            secrets_sealed: values.secrets_sealed,
            secret_fields: values.secret_fields,
            lookup_key: values.lookup_key,
            updated_at: values.updated_at,
          }),
        )
        .execute(),
    );
  }

  async replaceAuth(expected: LinkAuthRecord, next: LinkAuthRecord): Promise<boolean> {
    const was = authValues(expected);
    const values = authValues(next);
    const r = await uniquely(() =>
      this.db
        .updateTable('link_auth')
        .set({ config: values.config, secrets_sealed: values.secrets_sealed, secret_fields: values.secret_fields, lookup_key: values.lookup_key, updated_at: values.updated_at })
        .where('link_id', '=', expected.linkId)
        .where('direction', '=', expected.direction)
        .where('type', '=', expected.type)
        .where('config', '=', was.config)
        .where('secrets_sealed', was.secrets_sealed === null ? 'is' : '=', was.secrets_sealed)
        .where('lookup_key', was.lookup_key === null ? 'is' : '=', was.lookup_key)
        .where('updated_at', '=', was.updated_at)
        .executeTakeFirst(),
    );
    return Number(r.numUpdatedRows) > 0;
  }

  async insertAuth(a: LinkAuthRecord): Promise<void> {
    await uniquely(() => this.db.insertInto('link_auth').values(authValues(a)).execute());
  }

  async deleteAuth(linkId: string, direction: Direction, type: string): Promise<boolean> {
    const r = await this.db
      .deleteFrom('link_auth')
      .where('link_id', '=', linkId)
      .where('direction', '=', direction)
      .where('type', '=', type)
      .executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async setSealedSecrets(linkId: string, direction: Direction, type: string, secretsSealed: string): Promise<void> {
    await this.db
      .updateTable('link_auth')
      .set({ secrets_sealed: secretsSealed })
      .where('link_id', '=', linkId)
      .where('direction', '=', direction)
      .where('type', '=', type)
      .execute();
  }
}

function toLink(row: Selectable<LinksTable>): LinkRecord {
  return {
    id: row.id,
    name: row.name,
    url: row.url,
    applicationType: row.application_type,
    remoteApplicationId: row.remote_application_id,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

function toAuth(row: Selectable<LinkAuthTable>): LinkAuthRecord {
  return {
    linkId: row.link_id,
    direction: row.direction as Direction,
    type: row.type,
    config: JSON.parse(row.config) as Record<string, unknown>,
    secretsSealed: row.secrets_sealed,
    secretFields: row.secret_fields === null ? null : (JSON.parse(row.secret_fields) as string[]),
    lookupKey: row.lookup_key,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

function authValues(a: LinkAuthRecord) {
  return {
    link_id: a.linkId,
    direction: a.direction,
    type: a.type,
    config: JSON.stringify(a.config),
    secrets_sealed: a.secretsSealed,
    secret_fields: a.secretFields ? JSON.stringify(a.secretFields) : null,
    lookup_key: a.lookupKey,
    created_at: a.createdAt,
    updated_at: a.updatedAt,
  };
}
