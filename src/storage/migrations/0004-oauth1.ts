import { sql, type Kysely } from 'kysely';

/**
 * OAuth 1.0a (src/modules/oauth1): the provider's request and access tokens and its replay store,
 * and the tokens applinks holds as a consumer of other applications. Consumers themselves are
 * link configurations (`link_auth`, incoming, type `oauth1`). Everything references `links(id)`
 * and `users(id)` with ON DELETE CASCADE, so deleting either takes it along in the same
 * statement. Token values are stored as SHA-256 hashes; token secrets, which HMAC signatures
 * need in clear, are sealed under the master key. Landed: never edit, add a new migration.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  // Temporary credentials (RFC 5849 §2.1): pending, then authorized or denied by the user.
  await db.schema
    .createTable('oauth1_request_tokens')
    .addColumn('token_hash', 'text', (c) => c.primaryKey())
    .addColumn('link_id', 'text', (c) => c.notNull().references('links.id').onDelete('cascade'))
    .addColumn('consumer_key', 'text', (c) => c.notNull())
    .addColumn('secret_sealed', 'text', (c) => c.notNull())
    .addColumn('callback', 'text')
    .addColumn('version', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text', (c) => c.references('users.id').onDelete('cascade'))
    .addColumn('verifier_hash', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('oauth1_request_tokens_expires').on('oauth1_request_tokens').column('expires_at').execute();
  await db.schema.createIndex('oauth1_request_tokens_link').on('oauth1_request_tokens').column('link_id').execute();

  // Token credentials (RFC 5849 §2.3). Revoked ones stay (revoked_at set) until pruned, so a
  // client presenting one hears token_revoked rather than token_rejected.
  await db.schema
    .createTable('oauth1_access_tokens')
    .addColumn('token_hash', 'text', (c) => c.primaryKey())
    .addColumn('link_id', 'text', (c) => c.notNull().references('links.id').onDelete('cascade'))
    .addColumn('consumer_key', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('secret_sealed', 'text', (c) => c.notNull())
    .addColumn('session_hash', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('last_used_at', 'bigint')
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('session_expires_at', 'bigint', (c) => c.notNull())
    .addColumn('revoked_at', 'bigint')
    .addColumn('revoked_reason', 'text')
    .execute();
  // One live access token per (user, consumer), enforced by the store on every instance.
  await db.schema
    .createIndex('oauth1_access_tokens_live')
    .on('oauth1_access_tokens')
    .columns(['user_id', 'link_id'])
    .unique()
    .where(sql.ref('revoked_at'), 'is', null)
    .execute();
  await db.schema.createIndex('oauth1_access_tokens_link').on('oauth1_access_tokens').column('link_id').execute();
  await db.schema.createIndex('oauth1_access_tokens_user').on('oauth1_access_tokens').column('user_id').execute();
  await db.schema.createIndex('oauth1_access_tokens_session_expires').on('oauth1_access_tokens').column('session_expires_at').execute();

  // The replay store of a shared store (PostgreSQL): a (consumer, nonce) pair is a row that an
  // insert either creates (fresh) or finds (replay), on every instance alike.
  await db.schema
    .createTable('oauth1_nonces')
    .addColumn('nonce_key', 'text', (c) => c.primaryKey())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('oauth1_nonces_expires').on('oauth1_nonces').column('expires_at').execute();

  // The replay store of the embedded store, which one process owns: that process decides from
  // memory and appends what it accepted here, one row per batch (the fingerprints concatenated)
  // in insertion order (the rowid), so it remembers them after a restart. Appending touches only
  // the last page; a unique key would write one random page per request.
  await db.schema
    .createTable('oauth1_nonce_log')
    .addColumn('seq', 'integer', (c) => c.primaryKey())
    .addColumn('inserted_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('fingerprints', 'text', (c) => c.notNull())
    .execute();

  // As a consumer: the access token a remote issued us for one user of one link.
  await db.schema
    .createTable('oauth1_outgoing_tokens')
    .addColumn('link_id', 'text', (c) => c.notNull().references('links.id').onDelete('cascade'))
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('token_sealed', 'text', (c) => c.notNull())
    .addColumn('secret_sealed', 'text', (c) => c.notNull())
    .addColumn('session_handle_sealed', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint')
    .addColumn('session_expires_at', 'bigint')
    .addPrimaryKeyConstraint('oauth1_outgoing_tokens_pk', ['link_id', 'user_id'])
    .execute();
  await db.schema.createIndex('oauth1_outgoing_tokens_user').on('oauth1_outgoing_tokens').column('user_id').execute();

  // As a consumer: a dance in progress (the request token the remote gave us, where to return).
  await db.schema
    .createTable('oauth1_outgoing_requests')
    .addColumn('link_id', 'text', (c) => c.notNull().references('links.id').onDelete('cascade'))
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('token_sealed', 'text', (c) => c.notNull())
    .addColumn('secret_sealed', 'text', (c) => c.notNull())
    .addColumn('return_to', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('oauth1_outgoing_requests_pk', ['link_id', 'user_id'])
    .execute();
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
