/**
 * Table types of the OAuth 2.0 module (created by migration 0003-oauth2), used through
 * `withTables<OAuth2Tables>(executor)`. Conventions as in src/storage/schema.ts: times in ms,
 * booleans 0/1, `_hash` columns hold SHA-256 hashes of bearer secrets.
 */
export interface OAuth2ClientSecretsTable {
  id: string;
  link_id: string;
  secret_hash: string;
  created_at: number;
  /** Null while the secret is current; set when a rotation starts its grace period. */
  expires_at: number | null;
}

export interface OAuth2ClientOwnersTable {
  link_id: string;
  user_id: string;
  created_at: number;
}

export interface OAuth2ConsentsTable {
  user_id: string;
  link_id: string;
  scopes: string;
  created_at: number;
  updated_at: number;
}

export interface OAuth2GrantsTable {
  id: string;
  link_id: string;
  user_id: string;
  client_id: string;
  scopes: string;
  redirect_uri: string | null;
  refresh_generation: number;
  version: number;
  created_at: number;
  last_used_at: number;
  expires_at: number;
}

export interface OAuth2CodesTable {
  code_hash: string;
  link_id: string;
  user_id: string;
  client_id: string;
  redirect_uri: string;
  redirect_uri_sent: number;
  scopes: string;
  code_challenge: string | null;
  code_challenge_method: string | null;
  grant_id: string;
  created_at: number;
  expires_at: number;
  consumed_at: number | null;
}

export interface OAuth2TokensTable {
  token_hash: string;
  kind: 'access' | 'refresh';
  link_id: string;
  user_id: string;
  grant_id: string | null;
  client_id: string;
  scopes: string;
  generation: number;
  replaced_at: number | null;
  created_at: number;
  expires_at: number;
}

export interface OAuth2Tables {
  oauth2_client_secrets: OAuth2ClientSecretsTable;
  oauth2_client_owners: OAuth2ClientOwnersTable;
  oauth2_consents: OAuth2ConsentsTable;
  oauth2_grants: OAuth2GrantsTable;
  oauth2_codes: OAuth2CodesTable;
  oauth2_tokens: OAuth2TokensTable;
}
