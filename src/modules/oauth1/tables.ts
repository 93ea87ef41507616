import type { Generated } from 'kysely';

/**
 * Table types of the OAuth 1.0a module (created by migration 0004-oauth1), used through
 * `withTables<OAuth1Tables>(executor)`. Conventions as in src/storage/schema.ts: times in ms,
 * `_hash` columns hold SHA-256 hashes of bearer values, `_sealed` columns sealed secrets.
 */
export interface OAuth1RequestTokensTable {
  token_hash: string;
  link_id: string;
  consumer_key: string;
  secret_sealed: string;
  callback: string | null;
  version: '1.0' | '1.0a';
  state: 'pending' | 'authorized' | 'denied';
  user_id: string | null;
  verifier_hash: string | null;
  created_at: number;
  expires_at: number;
}

export interface OAuth1AccessTokensTable {
  token_hash: string;
  link_id: string;
  consumer_key: string;
  user_id: string;
  secret_sealed: string;
  session_hash: string;
  created_at: number;
  last_used_at: number | null;
  expires_at: number;
  session_expires_at: number;
  revoked_at: number | null;
  revoked_reason: string | null;
}

export interface OAuth1NoncesTable {
  nonce_key: string;
  expires_at: number;
}

export interface OAuth1NonceLogTable {
  /** SQLite's rowid: assigned in insertion order. */
  seq: Generated<number>;
  inserted_at: number;
  /** The latest expiry of the batch. */
  expires_at: number;
  /** 16 hex characters per accepted nonce, concatenated. */
  fingerprints: string;
}

export interface OAuth1OutgoingTokensTable {
  link_id: string;
  user_id: string;
  token_sealed: string;
  secret_sealed: string;
  session_handle_sealed: string | null;
  created_at: number;
  expires_at: number | null;
  session_expires_at: number | null;
}

export interface OAuth1OutgoingRequestsTable {
  link_id: string;
  user_id: string;
  token_sealed: string;
  secret_sealed: string;
  return_to: string;
  created_at: number;
  expires_at: number;
}

export interface OAuth1Tables {
  oauth1_request_tokens: OAuth1RequestTokensTable;
  oauth1_access_tokens: OAuth1AccessTokensTable;
  oauth1_nonces: OAuth1NoncesTable;
  oauth1_nonce_log: OAuth1NonceLogTable;
  oauth1_outgoing_tokens: OAuth1OutgoingTokensTable;
  oauth1_outgoing_requests: OAuth1OutgoingRequestsTable;
}

/** Sealing contexts: a sealed value opens only in the row it was written for. */
export const sealContexts = {
  requestSecret: (tokenHash: string) => `oauth1_request_tokens.secret_sealed:${tokenHash}`,
  accessSecret: (tokenHash: string) => `oauth1_access_tokens.secret_sealed:${tokenHash}`,
  outgoing: (column: 'token_sealed' | 'secret_sealed' | 'session_handle_sealed', linkId: string, userId: string) => `oauth1_outgoing_tokens.${column}:${linkId}/${userId}`,
  pending: (column: 'token_sealed' | 'secret_sealed', linkId: string, userId: string) => `oauth1_outgoing_requests.${column}:${linkId}/${userId}`,
};
