/**
 * Table types for Kysely. Conventions shared by every table:
 * - ids are text (UUIDs, or UUIDv7 where rows are listed in time order);
 * - times are integers, milliseconds since the epoch (bigint in PostgreSQL, parsed to number);
 * - booleans are integers 0/1 in both dialects, converted in the repositories;
 * - JSON is text, parsed in the repositories;
 * - columns ending in `_sealed` hold Keyring-sealed secrets; columns ending in `_hash` hold
 *   hashes of bearer secrets. Neither is ever returned by the API.
 */
import type { Generated } from 'kysely';

export interface MetaTable {
  key: string;
  value: string;
}

export interface UsersTable {
  id: string;
  username: string;
  /** Lower-cased username: usernames are unique regardless of case. */
  username_key: string;
  display_name: string;
  email: string | null;
  password_hash: string | null;
  is_admin: number;
  disabled: number;
  created_at: number;
  updated_at: number;
}

export interface UserGroupsTable {
  user_id: string;
  group_name: string;
}

export interface SessionsTable {
  /** Hash of the session cookie value. */
  id_hash: string;
  user_id: string;
  created_at: number;
  expires_at: number;
  address: string | null;
  user_agent: string | null;
}

export interface ApiTokensTable {
  id: string;
  user_id: string;
  name: string;
  token_hash: string;
  created_at: number;
  expires_at: number | null;
  last_used_at: number | null;
  link_id: string | null;
}

export interface LinksTable {
  id: string;
  name: string;
  name_key: string;
  url: string | null;
  application_type: string;
  /** The remote's application id from its manifest, when known. */
  remote_application_id: string | null;
  created_at: number;
  updated_at: number;
}

export interface LinkAuthTable {
  link_id: string;
  direction: 'incoming' | 'outgoing';
  type: string;
  /** The type's non-secret configuration, JSON. */
  config: string;
  /** The type's secret fields as sealed JSON, or null when it has none. */
  secrets_sealed: string | null;
  /** A value the type is looked up by (OAuth consumer key, client id), unique per direction and type. */
  lookup_key: string | null;
  created_at: number;
  updated_at: number;
  /** JSON array of the names of the secret fields in `secrets_sealed` (not secret); null on rows older than the column. */
  secret_fields: string | null;
}

/** A serving process and the master keys it holds (see migration 0006). */
export interface InstancesTable {
  id: string;
  host: string;
  pid: number;
  key_source: string;
  sealing_kid: string;
  kids: string;
  started_at: number;
  seen_at: number;
  /** Boot and pid namespace (migration 0007); null on rows older than the column or off Linux. */
  scope: string | null;
}

/** A lease one process at a time holds, e.g. for key rotation (see migration 0007). */
export interface LeasesTable {
  name: string;
  holder: string;
  owner: string;
  host: string;
  pid: number;
  scope: string | null;
  acquired_at: number;
  expires_at: number;
}

export interface AuditLogTable {
  id: string;
  at: number;
  actor_id: string | null;
  actor_name: string | null;
  action: string;
  target_type: string | null;
  target_id: string | null;
  target_name: string | null;
  address: string | null;
  /** JSON object; never holds a secret. */
  details: string;
}

export interface ThrottleTable {
  key: string;
  window_start: number;
  count: number;
}

export interface SigningKeysTable {
  kid: string;
  purpose: string;
  alg: string;
  public_jwk: string;
  private_sealed: string;
  created_at: number;
  retired_at: number | null;
}

export interface Database {
  meta: MetaTable;
  users: UsersTable;
  user_groups: UserGroupsTable;
  sessions: SessionsTable;
  api_tokens: ApiTokensTable;
  links: LinksTable;
  link_auth: LinkAuthTable;
  audit_log: AuditLogTable;
  throttle: ThrottleTable;
  signing_keys: SigningKeysTable;
  instances: InstancesTable;
  leases: LeasesTable;
}

// Generated is re-exported for migrations that add serial columns later.
export type { Generated };
