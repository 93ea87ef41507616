import { sql, type Kysely } from 'kysely';
import type { Scope } from '../../protocols/oauth2/scopes.js';
import { formatScope, storedScopes } from '../../protocols/oauth2/scopes.js';
import { affectedRows, deleteInBatches, withTables, type Executor } from '../../storage/repositories/common.js';
import type { Database } from '../../storage/schema.js';
import { OAUTH2_TYPE } from './clients.js';
import type { OAuth2Tables, OAuth2TokensTable } from './tables.js';

export interface SecretRecord {
  id: string;
  linkId: string;
  secretHash: string;
  createdAt: number;
  expiresAt: number | null;
}

export interface ConsentRecord {
  userId: string;
  linkId: string;
  scopes: Scope[];
  createdAt: number;
  updatedAt: number;
}

export interface GrantRecord {
  id: string;
  linkId: string;
  userId: string;
  clientId: string;
  scopes: Scope[];
  redirectUri: string | null;
  refreshGeneration: number;
  version: number;
  createdAt: number;
  lastUsedAt: number;
  expiresAt: number;
}

export interface CodeRecord {
  codeHash: string;
  linkId: string;
  userId: string;
  clientId: string;
  redirectUri: string;
  redirectUriSent: boolean;
  scopes: Scope[];
  codeChallenge: string | null;
  codeChallengeMethod: 'S256' | null;
  grantId: string;
  createdAt: number;
  expiresAt: number;
  consumedAt: number | null;
}

export interface TokenRecord {
  tokenHash: string;
  kind: 'access' | 'refresh';
  linkId: string;
  userId: string;
  grantId: string | null;
  clientId: string;
  scopes: Scope[];
  generation: number;
  replacedAt: number | null;
  createdAt: number;
  expiresAt: number;
}

/** One application a user authorized, summarised from their consent and grants. */
export interface AuthorizationSummary {
  linkId: string;
  scopes: Scope[];
  createdAt: number;
  lastUsedAt: number | null;
  expiresAt: number | null;
}

/**
 * What the OAuth 2.0 module stores. Contracts:
 * - `consumeCode` is atomic: of any number of concurrent calls for one code, exactly one answers
 *   true (an `UPDATE ... WHERE consumed_at IS NULL` counted), on every instance sharing the store.
 * - `advanceGrant` is a compare-and-set on the grant's `version`: it answers false, changing
 *   nothing, when another rotation got there first.
 * - Deleting a grant deletes its tokens (foreign key cascade); deleting a link or user deletes
 *   everything of theirs here.
 * - Times are ms; nothing here checks expiry except where a method says so.
 */
export class OAuth2Repository {
  private readonly db: Kysely<Database & OAuth2Tables>;

  constructor(executor: Executor) {
    this.db = withTables<OAuth2Tables>(executor);
  }

  // ---------- client secrets
  async addSecret(r: SecretRecord): Promise<void> {
    await this.db.insertInto('oauth2_client_secrets').values({ id: r.id, link_id: r.linkId, secret_hash: r.secretHash, created_at: r.createdAt, expires_at: r.expiresAt }).execute();
  }

  /** Secrets that still work at `now`, newest first. */
  async liveSecrets(linkId: string, now: number): Promise<SecretRecord[]> {
    const rows = await this.db
      .selectFrom('oauth2_client_secrets')
      .selectAll()
      .where('link_id', '=', linkId)
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
      .orderBy('created_at', 'desc')
      .execute();
    return rows.map((r) => ({ id: r.id, linkId: r.link_id, secretHash: r.secret_hash, createdAt: Number(r.created_at), expiresAt: r.expires_at === null ? null : Number(r.expires_at) }));
  }

  /** Starts the grace period of every current secret of a client (a rotation); a shorter existing expiry is kept. */
  async expireSecrets(linkId: string, expiresAt: number): Promise<void> {
    await this.db.updateTable('oauth2_client_secrets').set({ expires_at: expiresAt }).where('link_id', '=', linkId).where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', expiresAt)])).execute();
  }

  async deleteSecrets(linkId: string): Promise<void> {
    await this.db.deleteFrom('oauth2_client_secrets').where('link_id', '=', linkId).execute();
  }

  // ---------- developer-area ownership
  async setOwner(linkId: string, userId: string, now: number): Promise<void> {
    await this.db.insertInto('oauth2_client_owners').values({ link_id: linkId, user_id: userId, created_at: now }).execute();
  }

  async ownerOf(linkId: string): Promise<string | undefined> {
    const row = await this.db.selectFrom('oauth2_client_owners').select('user_id').where('link_id', '=', linkId).executeTakeFirst();
    return row?.user_id;
  }

  async owners(): Promise<Map<string, string>> {
    const rows = await this.db.selectFrom('oauth2_client_owners').select(['link_id', 'user_id']).execute();
    return new Map(rows.map((r) => [r.link_id, r.user_id]));
  }

  /**
   * The links a user owns that still have an OAuth 2.0 client (the developer area's count). An
   * ownership row whose client was removed without its link (before such removals released it)
   * takes no slot.
   */
  async ownedLinks(userId: string): Promise<string[]> {
    const rows = await this.db
      .selectFrom('oauth2_client_owners')
      .select('link_id')
      .where('user_id', '=', userId)
      .where((eb) => eb.exists(eb.selectFrom('link_auth').select('link_auth.link_id').whereRef('link_auth.link_id', '=', 'oauth2_client_owners.link_id').where('link_auth.direction', '=', 'incoming').where('link_auth.type', '=', OAUTH2_TYPE)))
      .orderBy('created_at')
      .execute();
    return rows.map((r) => r.link_id);
  }

  /**
   * Ends the ownership of a link that no longer has an OAuth 2.0 client (its client was removed and
   * the link kept): the developer's slot is free, and a client added to the link later is not theirs.
   */
  async releaseOwnerWithoutClient(linkId: string): Promise<void> {
    await this.db
      .deleteFrom('oauth2_client_owners')
      .where('link_id', '=', linkId)
      .where((eb) => eb.not(eb.exists(eb.selectFrom('link_auth').select('link_auth.link_id').where('link_auth.link_id', '=', linkId).where('link_auth.direction', '=', 'incoming').where('link_auth.type', '=', OAUTH2_TYPE))))
      .execute();
  }

  // ---------- consents
  async findConsent(userId: string, linkId: string): Promise<ConsentRecord | undefined> {
    const row = await this.db.selectFrom('oauth2_consents').selectAll().where('user_id', '=', userId).where('link_id', '=', linkId).executeTakeFirst();
    return row ? { userId: row.user_id, linkId: row.link_id, scopes: storedScopes(row.scopes), createdAt: Number(row.created_at), updatedAt: Number(row.updated_at) } : undefined;
  }

  /** Records (or widens/narrows to) the scopes a user allowed an application. */
  async saveConsent(userId: string, linkId: string, scopes: readonly Scope[], now: number): Promise<void> {
    await this.db
      .insertInto('oauth2_consents')
      .values({ user_id: userId, link_id: linkId, scopes: formatScope(scopes), created_at: now, updated_at: now })
      .onConflict((oc) => oc.columns(['user_id', 'link_id']).doUpdateSet({ scopes: formatScope(scopes), updated_at: now }))
      .execute();
  }

  /** Each application a user authorized: their consent, with the use and expiry of its live grants. */
  async authorizations(userId: string): Promise<AuthorizationSummary[]> {
    const consents = await this.db.selectFrom('oauth2_consents').selectAll().where('user_id', '=', userId).execute();
    const grants = await this.db
      .selectFrom('oauth2_grants')
      .select(['link_id', (eb) => eb.fn.max('last_used_at').as('last_used'), (eb) => eb.fn.max('expires_at').as('expires')])
      .where('user_id', '=', userId)
      .groupBy('link_id')
      .execute();
    const byLink = new Map(grants.map((g) => [g.link_id, g]));
    return consents.map((c) => {
      const g = byLink.get(c.link_id);
      return {
        linkId: c.link_id,
        scopes: storedScopes(c.scopes),
        createdAt: Number(c.created_at),
        lastUsedAt: g?.last_used == null ? null : Number(g.last_used),
        expiresAt: g?.expires == null ? null : Number(g.expires),
      };
    });
  }

  // ---------- codes
  async insertCode(c: CodeRecord): Promise<void> {
    await this.db
      .insertInto('oauth2_codes')
      .values({
        code_hash: c.codeHash,
        link_id: c.linkId,
        user_id: c.userId,
        client_id: c.clientId,
        redirect_uri: c.redirectUri,
        redirect_uri_sent: c.redirectUriSent ? 1 : 0,
        scopes: formatScope(c.scopes),
        code_challenge: c.codeChallenge,
        code_challenge_method: c.codeChallengeMethod,
        grant_id: c.grantId,
        created_at: c.createdAt,
        expires_at: c.expiresAt,
        consumed_at: null,
      })
      .execute();
  }

  async findCode(codeHash: string): Promise<CodeRecord | undefined> {
    const r = await this.db.selectFrom('oauth2_codes').selectAll().where('code_hash', '=', codeHash).executeTakeFirst();
    if (!r) return undefined;
    return {
      codeHash: r.code_hash,
      linkId: r.link_id,
      userId: r.user_id,
      clientId: r.client_id,
      redirectUri: r.redirect_uri,
      redirectUriSent: Number(r.redirect_uri_sent) === 1,
      scopes: storedScopes(r.scopes),
      codeChallenge: r.code_challenge,
      codeChallengeMethod: r.code_challenge_method === 'S256' ? 'S256' : null,
      grantId: r.grant_id,
      createdAt: Number(r.created_at),
      expiresAt: Number(r.expires_at),
      consumedAt: r.consumed_at === null ? null : Number(r.consumed_at),
    };
  }

  /** Marks a code used. True for exactly one caller per code (see the contract above). */
  async consumeCode(codeHash: string, now: number): Promise<boolean> {
    const r = await this.db.updateTable('oauth2_codes').set({ consumed_at: now }).where('code_hash', '=', codeHash).where('consumed_at', 'is', null).executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  // ---------- grants
  async insertGrant(g: GrantRecord): Promise<void> {
    await this.db
      .insertInto('oauth2_grants')
      .values({
        id: g.id,
        link_id: g.linkId,
        user_id: g.userId,
        client_id: g.clientId,
        scopes: formatScope(g.scopes),
        redirect_uri: g.redirectUri,
        refresh_generation: g.refreshGeneration,
        version: g.version,
        created_at: g.createdAt,
        last_used_at: g.lastUsedAt,
        expires_at: g.expiresAt,
      })
      .execute();
  }

  async findGrant(id: string): Promise<GrantRecord | undefined> {
    const r = await this.db.selectFrom('oauth2_grants').selectAll().where('id', '=', id).executeTakeFirst();
    if (!r) return undefined;
    return {
      id: r.id,
      linkId: r.link_id,
      userId: r.user_id,
      clientId: r.client_id,
      scopes: storedScopes(r.scopes),
      redirectUri: r.redirect_uri,
      refreshGeneration: Number(r.refresh_generation),
      version: Number(r.version),
      createdAt: Number(r.created_at),
      lastUsedAt: Number(r.last_used_at),
      expiresAt: Number(r.expires_at),
    };
  }

  /** Compare-and-set: moves the grant to `generation` if its version is still `version`. */
  async advanceGrant(id: string, version: number, generation: number, now: number, expiresAt: number): Promise<boolean> {
    const r = await this.db
      .updateTable('oauth2_grants')
      .set({ refresh_generation: generation, version: version + 1, last_used_at: now, expires_at: expiresAt })
      .where('id', '=', id)
      .where('version', '=', version)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /** Records use of a grant; never moves the time backwards. */
  async touchGrant(id: string, at: number): Promise<void> {
    await this.db.updateTable('oauth2_grants').set({ last_used_at: at }).where('id', '=', id).where('last_used_at', '<', at).execute();
  }

  async deleteGrant(id: string): Promise<boolean> {
    const r = await this.db.deleteFrom('oauth2_grants').where('id', '=', id).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  // ---------- tokens
  async insertToken(t: TokenRecord): Promise<void> {
    await this.db.insertInto('oauth2_tokens').values(tokenRow(t)).execute();
  }

  async insertTokens(tokens: readonly TokenRecord[]): Promise<void> {
    await this.db.insertInto('oauth2_tokens').values(tokens.map(tokenRow)).execute();
  }

  async findToken(tokenHash: string): Promise<TokenRecord | undefined> {
    const r = await this.db.selectFrom('oauth2_tokens').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
    return r ? toToken(r) : undefined;
  }

  async deleteToken(tokenHash: string): Promise<boolean> {
    const r = await this.db.deleteFrom('oauth2_tokens').where('token_hash', '=', tokenHash).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  /** Deletes the client_credentials tokens (those of no grant) issued through a link. */
  async deleteClientCredentialsTokens(linkId: string): Promise<void> {
    await this.db.deleteFrom('oauth2_tokens').where('link_id', '=', linkId).where('grant_id', 'is', null).execute();
  }

  /**
   * A retried refresh replaces the unused newest refresh token: it is marked replaced (so
   * presenting it later is recognised as reuse) and the access tokens issued with it, which the
   * client never received, are deleted.
   */
  async replaceGeneration(grantId: string, generation: number, now: number): Promise<void> {
    await this.db.updateTable('oauth2_tokens').set({ replaced_at: now }).where('grant_id', '=', grantId).where('kind', '=', 'refresh').where('generation', '=', generation).where('replaced_at', 'is', null).execute();
    await this.db.deleteFrom('oauth2_tokens').where('grant_id', '=', grantId).where('kind', '=', 'access').where('generation', '=', generation).execute();
  }

  // ---------- revocation
  /** Revokes what a user authorized one application to do: consent, grants, codes. Answers whether there was anything. */
  async revokeUserLink(userId: string, linkId: string): Promise<boolean> {
    const consent = await this.db.deleteFrom('oauth2_consents').where('user_id', '=', userId).where('link_id', '=', linkId).executeTakeFirst();
    const grants = await this.db.deleteFrom('oauth2_grants').where('user_id', '=', userId).where('link_id', '=', linkId).executeTakeFirst();
    await this.db.deleteFrom('oauth2_codes').where('user_id', '=', userId).where('link_id', '=', linkId).execute();
    return Number(consent.numDeletedRows) + Number(grants.numDeletedRows) > 0;
  }

  /** Revokes everything a user authorized (consents, grants, codes, every token); answers how many applications. */
  revokeUser(userId: string): Promise<number> {
    return this.revokeAllWhere('user_id', userId, 'link_id');
  }

  /**
   * Revokes everything issued through a link (consents, grants, codes, every token, the client
   * credentials tokens too); answers how many users had authorized it.
   */
  revokeLink(linkId: string): Promise<number> {
    return this.revokeAllWhere('link_id', linkId, 'user_id');
  }

  /** Deletes every consent, token, grant and code whose `column` is `value`; answers how many distinct `counted` they had. */
  private async revokeAllWhere(column: 'user_id' | 'link_id', value: string, counted: 'user_id' | 'link_id'): Promise<number> {
    const holders = await this.db
      .selectFrom('oauth2_consents')
      .select(counted)
      .where(column, '=', value)
      .union(this.db.selectFrom('oauth2_grants').select(counted).where(column, '=', value))
      .execute();
    await this.db.deleteFrom('oauth2_consents').where(column, '=', value).execute();
    await this.db.deleteFrom('oauth2_tokens').where(column, '=', value).execute();
    await this.db.deleteFrom('oauth2_grants').where(column, '=', value).execute();
    await this.db.deleteFrom('oauth2_codes').where(column, '=', value).execute();
    return new Set(holders.map((h) => (h as Record<string, string>)[counted])).size;
  }

  /**
   * Deletes what can no longer be used: expired access tokens, refresh tokens and grants past
   * their expiry, and codes an hour after expiry (kept that long so a late replay is still
   * recognised as one). Also what disabled users held, so re-enabling them brings none back.
   */
  async prune(now: number): Promise<number> {
    let n = 0;
    const db = this.db;
    n += await deleteInBatches(async (limit) =>
      affectedRows(await db.deleteFrom('oauth2_tokens').where('token_hash', 'in', db.selectFrom('oauth2_tokens').select('token_hash').where('expires_at', '<=', now).limit(limit)).executeTakeFirst()),
    );
    n += await deleteInBatches(async (limit) =>
      affectedRows(await db.deleteFrom('oauth2_grants').where('id', 'in', db.selectFrom('oauth2_grants').select('id').where('expires_at', '<=', now).limit(limit)).executeTakeFirst()),
    );
    n += await deleteInBatches(async (limit) =>
      affectedRows(await db.deleteFrom('oauth2_codes').where('code_hash', 'in', db.selectFrom('oauth2_codes').select('code_hash').where('expires_at', '<=', now - 3_600_000).limit(limit)).executeTakeFirst()),
    );
    n += Number((await db.deleteFrom('oauth2_client_secrets').where('expires_at', '<=', now).executeTakeFirst()).numDeletedRows);
    const disabled = this.db.selectFrom('users').select('id').where('disabled', '=', 1);
    n += Number((await this.db.deleteFrom('oauth2_grants').where('user_id', 'in', disabled).executeTakeFirst()).numDeletedRows);
    n += Number((await this.db.deleteFrom('oauth2_tokens').where('user_id', 'in', disabled).executeTakeFirst()).numDeletedRows);
    n += Number((await this.db.deleteFrom('oauth2_codes').where('user_id', 'in', disabled).executeTakeFirst()).numDeletedRows);
    return n;
  }

  /** Counts for tests and the admin view. */
  async countLive(linkId: string, now: number): Promise<{ grants: number; accessTokens: number }> {
    const g = await this.db.selectFrom('oauth2_grants').select(sql<number>`count(*)`.as('n')).where('link_id', '=', linkId).where('expires_at', '>', now).executeTakeFirstOrThrow();
    const t = await this.db
      .selectFrom('oauth2_tokens')
      .select(sql<number>`count(*)`.as('n'))
      .where('link_id', '=', linkId)
      .where('kind', '=', 'access')
      .where('expires_at', '>', now)
      .executeTakeFirstOrThrow();
    return { grants: Number(g.n), accessTokens: Number(t.n) };
  }
}

function tokenRow(t: TokenRecord): OAuth2TokensTable {
  return {
    token_hash: t.tokenHash,
    kind: t.kind,
    link_id: t.linkId,
    user_id: t.userId,
    grant_id: t.grantId,
    client_id: t.clientId,
    scopes: formatScope(t.scopes),
    generation: t.generation,
    replaced_at: t.replacedAt,
    created_at: t.createdAt,
    expires_at: t.expiresAt,
  };
}

function toToken(r: OAuth2TokensTable): TokenRecord {
  return {
    tokenHash: r.token_hash,
    kind: r.kind === 'refresh' ? 'refresh' : 'access',
    linkId: r.link_id,
    userId: r.user_id,
    grantId: r.grant_id,
    clientId: r.client_id,
    scopes: storedScopes(r.scopes),
    generation: Number(r.generation),
    replacedAt: r.replaced_at === null ? null : Number(r.replaced_at),
    createdAt: Number(r.created_at),
    expiresAt: Number(r.expires_at),
  };
}
