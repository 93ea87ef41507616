import { sql, type Kysely } from 'kysely';

/**
 * The OAuth 2.0 authorization server (src/modules/oauth2). Clients themselves are link
 * configurations (`link_auth`, incoming, type `oauth2`); these tables hold what is issued to
 * them. Everything issued through a link references `links(id) ON DELETE CASCADE`, everything of
 * a user `users(id) ON DELETE CASCADE`, so deleting either takes it along in the same statement.
 * Landed: never edit, add a new migration instead.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  // Hashes of client secrets; more than one live during a rotation's grace period.
  await db.schema
    .createTable('oauth2_client_secrets')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('link_id', 'text', (c) => c.notNull().references('links.id').onDelete('cascade'))
    .addColumn('secret_hash', 'text', (c) => c.notNull().unique())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint')
    .execute();
  await db.schema.createIndex('oauth2_client_secrets_link').on('oauth2_client_secrets').column('link_id').execute();

  // Applications users registered in the developer area: the link is theirs.
  await db.schema
    .createTable('oauth2_client_owners')
    .addColumn('link_id', 'text', (c) => c.primaryKey().references('links.id').onDelete('cascade'))
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('oauth2_client_owners_user').on('oauth2_client_owners').column('user_id').execute();

  // What a user allowed an application to do, remembered until they revoke it.
  await db.schema
    .createTable('oauth2_consents')
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('link_id', 'text', (c) => c.notNull().references('links.id').onDelete('cascade'))
    .addColumn('scopes', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('oauth2_consents_pk', ['user_id', 'link_id'])
    .execute();
  await db.schema.createIndex('oauth2_consents_link').on('oauth2_consents').column('link_id').execute();

  // One authorization: a code exchange and the chain of refresh tokens that follows it.
  await db.schema
    .createTable('oauth2_grants')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('link_id', 'text', (c) => c.notNull().references('links.id').onDelete('cascade'))
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('client_id', 'text', (c) => c.notNull())
    .addColumn('scopes', 'text', (c) => c.notNull())
    .addColumn('redirect_uri', 'text')
    // The newest refresh token's generation, and a counter every rotation compares and bumps.
    .addColumn('refresh_generation', 'integer', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('last_used_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('oauth2_grants_user_link').on('oauth2_grants').columns(['user_id', 'link_id']).execute();
  await db.schema.createIndex('oauth2_grants_link').on('oauth2_grants').column('link_id').execute();
  await db.schema.createIndex('oauth2_grants_expires').on('oauth2_grants').column('expires_at').execute();

  // Authorization codes: single use (consumed_at), kept until expiry so a replay is recognised.
  await db.schema
    .createTable('oauth2_codes')
    .addColumn('code_hash', 'text', (c) => c.primaryKey())
    .addColumn('link_id', 'text', (c) => c.notNull().references('links.id').onDelete('cascade'))
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('client_id', 'text', (c) => c.notNull())
    .addColumn('redirect_uri', 'text', (c) => c.notNull())
    .addColumn('redirect_uri_sent', 'integer', (c) => c.notNull())
    .addColumn('scopes', 'text', (c) => c.notNull())
    .addColumn('code_challenge', 'text')
    .addColumn('code_challenge_method', 'text')
    // The grant the exchange creates, named in advance so a replay can revoke it.
    .addColumn('grant_id', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('consumed_at', 'bigint')
    .execute();
  await db.schema.createIndex('oauth2_codes_expires').on('oauth2_codes').column('expires_at').execute();

  // Access and refresh tokens, by hash. Client-credentials access tokens have no grant.
  await db.schema
    .createTable('oauth2_tokens')
    .addColumn('token_hash', 'text', (c) => c.primaryKey())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('link_id', 'text', (c) => c.notNull().references('links.id').onDelete('cascade'))
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('grant_id', 'text', (c) => c.references('oauth2_grants.id').onDelete('cascade'))
    .addColumn('client_id', 'text', (c) => c.notNull())
    .addColumn('scopes', 'text', (c) => c.notNull())
    .addColumn('generation', 'integer', (c) => c.notNull())
    .addColumn('replaced_at', 'bigint')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
  // Partial: client-credentials tokens (no grant), the bulk under load, skip it.
  await db.schema
    .createIndex('oauth2_tokens_grant')
    .on('oauth2_tokens')
    .columns(['grant_id', 'kind', 'generation'])
    .where(sql.ref('grant_id'), 'is not', null)
    .execute();
  await db.schema.createIndex('oauth2_tokens_link').on('oauth2_tokens').column('link_id').execute();
  await db.schema.createIndex('oauth2_tokens_user').on('oauth2_tokens').column('user_id').execute();
  await db.schema.createIndex('oauth2_tokens_expires').on('oauth2_tokens').column('expires_at').execute();
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
