import { sql, type Kysely } from 'kysely';
import { affectedRows, deleteInBatches, withTables, type Executor } from '../../storage/repositories/common.js';
import type { Capabilities } from '../../storage/database.js';
import type { Database } from '../../storage/schema.js';
import type { OAuth1AccessTokensTable, OAuth1OutgoingRequestsTable, OAuth1OutgoingTokensTable, OAuth1RequestTokensTable, OAuth1Tables } from './tables.js';

export interface RequestTokenRecord {
  tokenHash: string;
  linkId: string;
  consumerKey: string;
  secretSealed: string;
  callback: string | null;
  version: '1.0' | '1.0a';
  state: 'pending' | 'authorized' | 'denied';
  userId: string | null;
  verifierHash: string | null;
  createdAt: number;
  expiresAt: number;
}

export interface AccessTokenRecord {
  tokenHash: string;
  linkId: string;
  consumerKey: string;
  userId: string;
  secretSealed: string;
  sessionHash: string;
  createdAt: number;
  lastUsedAt: number | null;
  expiresAt: number;
  sessionExpiresAt: number;
  revokedAt: number | null;
  revokedReason: string | null;
}

export interface OutgoingTokenRecord {
  linkId: string;
  userId: string;
  tokenSealed: string;
  secretSealed: string;
  sessionHandleSealed: string | null;
  createdAt: number;
  expiresAt: number | null;
  sessionExpiresAt: number | null;
}

export interface PendingDanceRecord {
  linkId: string;
  userId: string;
  tokenSealed: string;
  secretSealed: string;
  returnTo: string;
  createdAt: number;
  expiresAt: number;
}

/** How long a revoked access token is remembered, so its holder hears token_revoked. */
export const REVOKED_RETENTION_MS = 90 * 86_400_000;

/**
 * What the OAuth 1.0a module stores. Contracts:
 * - `authorize`, `deny` and `consumeRequestToken` are compare-and-set on the request token's
 *   state: of concurrent calls for one token, on any instance sharing the store, exactly one
 *   answers true.
 * - `issueAccessToken` revokes the live token of the same (user, consumer) in the same
 *   transaction; a unique partial index keeps one live token per pair even under races (the
 *   loser throws UniqueViolation-like errors and may retry).
 * - `recordNonces` inserts each key at most once ever (until pruned) and answers the keys this
 *   call inserted: a key it does not answer was already there (a replay).
 * - Deleting a link or a user deletes everything of theirs here (foreign key cascade).
 * - As a consumer, `replaceOutgoing` and `deleteOutgoingIf` act only on the token row as it was
 *   read (compare-and-set on its sealed token): of concurrent writers, on any instance sharing
 *   the store, one that read an older token never overwrites or deletes a newer one. A key
 *   rotation re-seals rows, so a write racing it fails safe (nothing is overwritten or deleted).
 */
export class OAuth1Repository {
  private readonly db: Kysely<Database & OAuth1Tables>;

  constructor(executor: Executor) {
    this.db = withTables<OAuth1Tables>(executor);
  }

  // ------------------------------------------------------------ request tokens
  async insertRequestToken(r: RequestTokenRecord): Promise<void> {
    await this.db.insertInto('oauth1_request_tokens').values(requestRow(r)).execute();
  }

  async findRequestToken(tokenHash: string): Promise<RequestTokenRecord | undefined> {
    const row = await this.db.selectFrom('oauth1_request_tokens').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
    return row ? toRequest(row) : undefined;
  }

  /** The user allowed the request token: binds it to them with a verifier. */
  async authorizeRequestToken(tokenHash: string, userId: string, verifierHash: string, now: number): Promise<boolean> {
    const r = await this.db
      .updateTable('oauth1_request_tokens')
      .set({ state: 'authorized', user_id: userId, verifier_hash: verifierHash })
      .where('token_hash', '=', tokenHash)
      .where('state', '=', 'pending')
      .where('expires_at', '>', now)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  async denyRequestToken(tokenHash: string, userId: string): Promise<boolean> {
    const r = await this.db.updateTable('oauth1_request_tokens').set({ state: 'denied', user_id: userId }).where('token_hash', '=', tokenHash).where('state', '=', 'pending').executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /** Removes an authorized request token as it is exchanged: true for exactly one caller. */
  async consumeRequestToken(tokenHash: string): Promise<boolean> {
    const r = await this.db.deleteFrom('oauth1_request_tokens').where('token_hash', '=', tokenHash).where('state', '=', 'authorized').executeTakeFirst();
    return Number(r.numDeletedRows) === 1;
  }

  // ------------------------------------------------------------ access tokens
  async findAccessToken(tokenHash: string): Promise<AccessTokenRecord | undefined> {
    const row = await this.db.selectFrom('oauth1_access_tokens').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
    return row ? toAccess(row) : undefined;
  }

  /** Inserts a new access token, revoking the live one of the same user and consumer (call inside a transaction). */
  async issueAccessToken(t: AccessTokenRecord, now: number): Promise<void> {
    await this.db
      .updateTable('oauth1_access_tokens')
      .set({ revoked_at: now, revoked_reason: 'replaced' })
      .where('user_id', '=', t.userId)
      .where('link_id', '=', t.linkId)
      .where('revoked_at', 'is', null)
      .execute();
    await this.db.insertInto('oauth1_access_tokens').values(accessRow(t)).execute();
  }

  /** Revokes one live access token; false when it was not live (a concurrent renewal won). */
  async revokeAccessToken(tokenHash: string, reason: string, now: number): Promise<boolean> {
    const r = await this.db.updateTable('oauth1_access_tokens').set({ revoked_at: now, revoked_reason: reason }).where('token_hash', '=', tokenHash).where('revoked_at', 'is', null).executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /** Revokes what a user authorized one consumer; answers how many tokens. */
  async revokeUserLink(userId: string, linkId: string, reason: string, now: number): Promise<number> {
    const r = await this.db
      .updateTable('oauth1_access_tokens')
      .set({ revoked_at: now, revoked_reason: reason })
      .where('user_id', '=', userId)
      .where('link_id', '=', linkId)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    await this.db.deleteFrom('oauth1_request_tokens').where('user_id', '=', userId).where('link_id', '=', linkId).execute();
    return Number(r.numUpdatedRows);
  }

  /** Revokes every token a user holds, through every link; answers through how many links. */
  async revokeUser(userId: string, reason: string, now: number): Promise<number> {
    const links = await this.db.selectFrom('oauth1_access_tokens').select('link_id').distinct().where('user_id', '=', userId).where('revoked_at', 'is', null).execute();
    await this.db.updateTable('oauth1_access_tokens').set({ revoked_at: now, revoked_reason: reason }).where('user_id', '=', userId).where('revoked_at', 'is', null).execute();
    await this.db.deleteFrom('oauth1_request_tokens').where('user_id', '=', userId).execute();
    return links.length;
  }

  /** Revokes every token issued through a link; answers how many users held one. */
  async revokeLink(linkId: string, reason: string, now: number): Promise<number> {
    const users = await this.db.selectFrom('oauth1_access_tokens').select('user_id').distinct().where('link_id', '=', linkId).where('revoked_at', 'is', null).execute();
    await this.db.updateTable('oauth1_access_tokens').set({ revoked_at: now, revoked_reason: reason }).where('link_id', '=', linkId).where('revoked_at', 'is', null).execute();
    await this.db.deleteFrom('oauth1_request_tokens').where('link_id', '=', linkId).execute();
    return users.length;
  }

  /** The consumer was removed from the link: everything it was issued goes. */
  async deleteForLink(linkId: string): Promise<void> {
    await this.db.deleteFrom('oauth1_access_tokens').where('link_id', '=', linkId).execute();
    await this.db.deleteFrom('oauth1_request_tokens').where('link_id', '=', linkId).execute();
  }

  /** Live (unrevoked, renewable) access tokens of a user, newest first. */
  async liveTokensOf(userId: string, now: number): Promise<AccessTokenRecord[]> {
    const rows = await this.db
      .selectFrom('oauth1_access_tokens')
      .selectAll()
      .where('user_id', '=', userId)
      .where('revoked_at', 'is', null)
      .where('session_expires_at', '>', now)
      .orderBy('created_at', 'desc')
      .execute();
    return rows.map(toAccess);
  }

  /** Records use of a token; never moves the time backwards. */
  async touch(tokenHash: string, at: number): Promise<void> {
    await this.db
      .updateTable('oauth1_access_tokens')
      .set({ last_used_at: at })
      .where('token_hash', '=', tokenHash)
      .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<', at)]))
      .execute();
  }

  // ------------------------------------------------------------ replay store
  async recordNonces(entries: ReadonlyArray<{ key: string; expiresAt: number }>): Promise<Set<string>> {
    if (entries.length === 0) return new Set();
    const rows = await this.db
      .insertInto('oauth1_nonces')
      .values(entries.map((e) => ({ nonce_key: e.key, expires_at: e.expiresAt })))
      .onConflict((oc) => oc.column('nonce_key').doNothing())
      .returning('nonce_key')
      .execute();
    return new Set(rows.map((r) => r.nonce_key));
  }

  /** Appends one batch of accepted nonce fingerprints to the embedded store's log (see NonceStore). */
  async appendNonceLog(capabilities: Capabilities, fingerprints: string, expiresAt: number, now: number): Promise<void> {
    await capabilities.appendRows(this.db as unknown as Kysely<Database>, 'oauth1_nonce_log', ['inserted_at', 'expires_at', 'fingerprints'], [[now, expiresAt, fingerprints]]);
  }

  /** The logged batches that may still hold live nonces, to remember after a restart. */
  async liveNonceLog(now: number): Promise<Array<{ fingerprints: string; expiresAt: number }>> {
    const rows = await this.db.selectFrom('oauth1_nonce_log').select(['fingerprints', 'expires_at']).where('expires_at', '>', now).execute();
    return rows.map((r) => ({ fingerprints: r.fingerprints, expiresAt: Number(r.expires_at) }));
  }

  /**
   * Drops log entries appended before `insertedBefore`. The log is in insertion order, so this
   * is a range at its start: found by walking from the start, never by scanning the live part.
   */
  async pruneNonceLog(insertedBefore: number): Promise<number> {
    const firstKept = await this.db.selectFrom('oauth1_nonce_log').select('seq').where('inserted_at', '>=', insertedBefore).orderBy('seq').limit(1).executeTakeFirst();
    let q = this.db.deleteFrom('oauth1_nonce_log');
    q = firstKept ? q.where('seq', '<', firstKept.seq) : q.where('inserted_at', '<', insertedBefore);
    return Number((await q.executeTakeFirst()).numDeletedRows);
  }

  // ------------------------------------------------------------ as a consumer
  async findOutgoing(linkId: string, userId: string): Promise<OutgoingTokenRecord | undefined> {
    const row = await this.db.selectFrom('oauth1_outgoing_tokens').selectAll().where('link_id', '=', linkId).where('user_id', '=', userId).executeTakeFirst();
    return row ? toOutgoing(row) : undefined;
  }

  /** Stores a user's token at a link, replacing whatever was there (a finished dance). */
  async saveOutgoing(t: OutgoingTokenRecord): Promise<void> {
    const row = outgoingRow(t);
    await this.db
      .insertInto('oauth1_outgoing_tokens')
      .values(row)
      .onConflict((oc) => oc.columns(['link_id', 'user_id']).doUpdateSet(tokenColumns(row)))
      .execute();
  }

  /**
   * Compare-and-set: replaces the token `read` by `next` only while the row still holds `read`
   * (its sealed token, unique per seal, is the version). False when it changed or went since it
   * was read: renewed elsewhere, re-authorized, forgotten, or its link re-pointed.
   */
  async replaceOutgoing(read: OutgoingTokenRecord, next: OutgoingTokenRecord): Promise<boolean> {
    const r = await this.db
      .updateTable('oauth1_outgoing_tokens')
      .set(tokenColumns(outgoingRow(next)))
      .where('link_id', '=', read.linkId)
      .where('user_id', '=', read.userId)
      .where('token_sealed', '=', read.tokenSealed)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /** Compare-and-delete: forgets the token `read` only while the row still holds it; a newer token stays. */
  async deleteOutgoingIf(read: OutgoingTokenRecord): Promise<boolean> {
    const r = await this.db
      .deleteFrom('oauth1_outgoing_tokens')
      .where('link_id', '=', read.linkId)
      .where('user_id', '=', read.userId)
      .where('token_sealed', '=', read.tokenSealed)
      .executeTakeFirst();
    return Number(r.numDeletedRows) === 1;
  }

  /** Forgets a user's token at a link, or every user's (whatever it holds now). */
  async deleteOutgoing(linkId: string, userId?: string): Promise<number> {
    let q = this.db.deleteFrom('oauth1_outgoing_tokens').where('link_id', '=', linkId);
    if (userId !== undefined) q = q.where('user_id', '=', userId);
    return Number((await q.executeTakeFirst()).numDeletedRows);
  }

  /** Forgets the dances in progress towards a link. */
  async deletePendingOf(linkId: string): Promise<number> {
    return Number((await this.db.deleteFrom('oauth1_outgoing_requests').where('link_id', '=', linkId).executeTakeFirst()).numDeletedRows);
  }

  async outgoingOf(userId: string): Promise<OutgoingTokenRecord[]> {
    const rows = await this.db.selectFrom('oauth1_outgoing_tokens').selectAll().where('user_id', '=', userId).execute();
    return rows.map(toOutgoing);
  }

  async savePending(p: PendingDanceRecord): Promise<void> {
    const row: OAuth1OutgoingRequestsTable = {
      link_id: p.linkId,
      user_id: p.userId,
      token_sealed: p.tokenSealed,
      secret_sealed: p.secretSealed,
      return_to: p.returnTo,
      created_at: p.createdAt,
      expires_at: p.expiresAt,
    };
    await this.db
      .insertInto('oauth1_outgoing_requests')
      .values(row)
      .onConflict((oc) => oc.columns(['link_id', 'user_id']).doUpdateSet({ token_sealed: row.token_sealed, secret_sealed: row.secret_sealed, return_to: row.return_to, created_at: row.created_at, expires_at: row.expires_at }))
      .execute();
  }

  /** Takes the pending dance of a user and link out of the store (single use). */
  async takePending(linkId: string, userId: string): Promise<PendingDanceRecord | undefined> {
    const row = await this.db.selectFrom('oauth1_outgoing_requests').selectAll().where('link_id', '=', linkId).where('user_id', '=', userId).executeTakeFirst();
    if (!row) return undefined;
    const r = await this.db
      .deleteFrom('oauth1_outgoing_requests')
      .where('link_id', '=', linkId)
      .where('user_id', '=', userId)
      .where('created_at', '=', row.created_at)
      .executeTakeFirst();
    if (Number(r.numDeletedRows) !== 1) return undefined;
    return {
      linkId: row.link_id,
      userId: row.user_id,
      tokenSealed: row.token_sealed,
      secretSealed: row.secret_sealed,
      returnTo: row.return_to,
      createdAt: Number(row.created_at),
      expiresAt: Number(row.expires_at),
    };
  }

  // ------------------------------------------------------------ housekeeping
  /**
   * Deletes what can no longer be used: request tokens an hour past expiry, nonces past their
   * window, access tokens past their session, revoked ones after the retention period, pending
   * dances past expiry. Tokens of disabled users are revoked, so re-enabling brings none back.
   */
  async prune(now: number): Promise<number> {
    let n = 0;
    const count = affectedRows;
    const db = this.db;
    n += await deleteInBatches(async (limit) =>
      count(await db.deleteFrom('oauth1_nonces').where('nonce_key', 'in', db.selectFrom('oauth1_nonces').select('nonce_key').where('expires_at', '<=', now).limit(limit)).executeTakeFirst()),
    );
    n += await deleteInBatches(async (limit) =>
      count(
        await db.deleteFrom('oauth1_request_tokens').where('token_hash', 'in', db.selectFrom('oauth1_request_tokens').select('token_hash').where('expires_at', '<=', now - 3_600_000).limit(limit)).executeTakeFirst(),
      ),
    );
    n += await deleteInBatches(async (limit) =>
      count(
        await db.deleteFrom('oauth1_access_tokens').where('token_hash', 'in', db.selectFrom('oauth1_access_tokens').select('token_hash').where('session_expires_at', '<=', now).limit(limit)).executeTakeFirst(),
      ),
    );
    n += await deleteInBatches(async (limit) =>
      count(
        await db
          .deleteFrom('oauth1_access_tokens')
          .where('token_hash', 'in', db.selectFrom('oauth1_access_tokens').select('token_hash').where('revoked_at', '<=', now - REVOKED_RETENTION_MS).limit(limit))
          .executeTakeFirst(),
      ),
    );
    n += count(await db.deleteFrom('oauth1_outgoing_requests').where('expires_at', '<=', now).executeTakeFirst());
    const disabled = this.db.selectFrom('users').select('id').where('disabled', '=', 1);
    n += count(
      await this.db.updateTable('oauth1_access_tokens').set({ revoked_at: now, revoked_reason: 'user-disabled' }).where('revoked_at', 'is', null).where('user_id', 'in', disabled).executeTakeFirst(),
    );
    return n;
  }

  /** Counts for tests and the admin view. */
  async countLive(linkId: string, now: number): Promise<number> {
    const r = await this.db
      .selectFrom('oauth1_access_tokens')
      .select(sql<number>`count(*)`.as('n'))
      .where('link_id', '=', linkId)
      .where('revoked_at', 'is', null)
      .where('expires_at', '>', now)
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }
}

function requestRow(r: RequestTokenRecord): OAuth1RequestTokensTable {
  return {
    token_hash: r.tokenHash,
    link_id: r.linkId,
    consumer_key: r.consumerKey,
    secret_sealed: r.secretSealed,
    callback: r.callback,
    version: r.version,
    state: r.state,
    user_id: r.userId,
    verifier_hash: r.verifierHash,
    created_at: r.createdAt,
    expires_at: r.expiresAt,
  };
}

function toRequest(r: OAuth1RequestTokensTable): RequestTokenRecord {
  return {
    tokenHash: r.token_hash,
    linkId: r.link_id,
    consumerKey: r.consumer_key,
    secretSealed: r.secret_sealed,
    callback: r.callback,
    version: r.version === '1.0' ? '1.0' : '1.0a',
    state: r.state === 'authorized' ? 'authorized' : r.state === 'denied' ? 'denied' : 'pending',
    userId: r.user_id,
    verifierHash: r.verifier_hash,
    createdAt: Number(r.created_at),
    expiresAt: Number(r.expires_at),
  };
}

function accessRow(t: AccessTokenRecord): OAuth1AccessTokensTable {
  return {
    token_hash: t.tokenHash,
    link_id: t.linkId,
    consumer_key: t.consumerKey,
    user_id: t.userId,
    secret_sealed: t.secretSealed,
    session_hash: t.sessionHash,
    created_at: t.createdAt,
    last_used_at: t.lastUsedAt,
    expires_at: t.expiresAt,
    session_expires_at: t.sessionExpiresAt,
    revoked_at: t.revokedAt,
    revoked_reason: t.revokedReason,
  };
}

function toAccess(r: OAuth1AccessTokensTable): AccessTokenRecord {
  return {
    tokenHash: r.token_hash,
    linkId: r.link_id,
    consumerKey: r.consumer_key,
    userId: r.user_id,
    secretSealed: r.secret_sealed,
    sessionHash: r.session_hash,
    createdAt: Number(r.created_at),
    lastUsedAt: r.last_used_at === null ? null : Number(r.last_used_at),
    expiresAt: Number(r.expires_at),
    sessionExpiresAt: Number(r.session_expires_at),
    revokedAt: r.revoked_at === null ? null : Number(r.revoked_at),
    revokedReason: r.revoked_reason,
  };
}

function outgoingRow(t: OutgoingTokenRecord): OAuth1OutgoingTokensTable {
  return {
    link_id: t.linkId,
    user_id: t.userId,
    token_sealed: t.tokenSealed,
    secret_sealed: t.secretSealed,
    session_handle_sealed: t.sessionHandleSealed,
    created_at: t.createdAt,
    expires_at: t.expiresAt,
    session_expires_at: t.sessionExpiresAt,
  };
}

/** The columns of a stored token that a new token replaces (all but its key, link and user). */
function tokenColumns(row: OAuth1OutgoingTokensTable): Omit<OAuth1OutgoingTokensTable, 'link_id' | 'user_id'> {
  const { link_id: _link, user_id: _user, ...token } = row;
  return token;
}

function toOutgoing(r: OAuth1OutgoingTokensTable): OutgoingTokenRecord {
  return {
    linkId: r.link_id,
    userId: r.user_id,
    tokenSealed: r.token_sealed,
    secretSealed: r.secret_sealed,
    sessionHandleSealed: r.session_handle_sealed,
    createdAt: Number(r.created_at),
    expiresAt: r.expires_at === null ? null : Number(r.expires_at),
    sessionExpiresAt: r.session_expires_at === null ? null : Number(r.session_expires_at),
  };
}
