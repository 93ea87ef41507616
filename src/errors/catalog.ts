/**
 * The one catalog of error codes. Each code has an HTTP status, a public description, and where
 * it applies the protocol rendering (OAuth 1.0a `oauth_problem`, OAuth 2.0 `error`).
 * `docs/errors.md` is generated from this table (`npm run docs`); a test keeps them in step.
 */
export interface ErrorSpec {
  readonly status: number;
  readonly description: string;
  /** RFC 6749/6750 `error` value when rendered on an OAuth 2.0 surface. */
  readonly oauth2?: string;
  /** OAuth 1.0a `oauth_problem` when rendered on an OAuth 1.0a surface. */
  readonly oauth1?: string;
}

export const errorCatalog = {
  // --- generic request problems
  invalid_request: { status: 400, description: 'The request is malformed (bad JSON, bad encoding, missing parameter).', oauth2: 'invalid_request' },
  validation_failed: { status: 400, description: 'A field is missing, unknown, of the wrong type or out of range; `field` names it.' },
  payload_too_large: { status: 413, description: 'The request body is larger than the configured limit.' },
  unsupported_media_type: { status: 415, description: 'The request body has a content type this endpoint does not read.' },
  not_found: { status: 404, description: 'No such resource.' },
  method_not_allowed: { status: 405, description: 'This endpoint does not take this HTTP method; `Allow` says which it takes.' },
  conflict: { status: 409, description: 'A resource with the same unique name already exists.' },
  // --- authentication and authorization
  unauthenticated: { status: 401, description: 'This resource needs authentication and none was given.', oauth2: 'invalid_token' },
  invalid_credentials: { status: 401, description: 'The username, password or token is wrong.', oauth2: 'invalid_token' },
  credential_expired: { status: 401, description: 'The token or session has expired.', oauth2: 'invalid_token' },
  credential_revoked: { status: 401, description: 'The token was revoked, or the link it was issued through was deleted.', oauth2: 'invalid_token' },
  user_disabled: { status: 401, description: 'The user is disabled.', oauth2: 'invalid_token' },
  password_auth_disabled: { status: 401, description: 'Basic authentication with a password is switched off; use an API token.' },
  malformed_credentials: { status: 401, description: 'The Authorization header cannot be parsed.', oauth2: 'invalid_request' },
  forbidden: { status: 403, description: 'The authenticated principal may not do this.', oauth2: 'insufficient_scope' },
  csrf_failed: { status: 403, description: 'The form or request lacks a valid CSRF token; reload the page and try again.' },
  too_many_attempts: { status: 429, description: 'Too many failed sign-in attempts; retry after the time in `Retry-After`.' },
  // --- gateway
  upstream_unavailable: { status: 502, description: 'The host application could not be reached.' },
  upstream_timeout: { status: 504, description: 'The host application did not answer in time.' },
  // --- server
  internal: { status: 500, description: 'An unexpected error; details are in the server log.' },
  store_busy: { status: 503, description: 'The store gave up on this change because of concurrent changes (a deadlock or a lock held too long); nothing was written. Retry after the time in `Retry-After`.', oauth2: 'temporarily_unavailable' },
  // --- OAuth 2.0 authorization server (RFC 6749 §4.1.2.1 and §5.2, RFC 6750 §3.1)
  oauth2_invalid_request: { status: 400, description: 'The OAuth 2.0 request is missing a parameter, repeats one, or is otherwise malformed.', oauth2: 'invalid_request' },
  oauth2_invalid_client: { status: 401, description: 'Client authentication failed: unknown client, wrong secret, or no authentication.', oauth2: 'invalid_client' },
  oauth2_invalid_grant: { status: 400, description: 'The authorization code or refresh token is invalid, expired, revoked, already used, or was issued to another client.', oauth2: 'invalid_grant' },
  oauth2_unauthorized_client: { status: 400, description: 'This client may not use this grant type, or may not revoke a token issued to another client.', oauth2: 'unauthorized_client' },
  oauth2_unsupported_grant_type: { status: 400, description: 'The grant type is not supported (no implicit or password grants).', oauth2: 'unsupported_grant_type' },
  oauth2_unsupported_response_type: { status: 400, description: 'Only response_type=code is supported.', oauth2: 'unsupported_response_type' },
  oauth2_invalid_scope: { status: 400, description: 'The requested scope is unknown, or more than the client is registered for or than the grant holds.', oauth2: 'invalid_scope' },
  oauth2_client_removed: { status: 400, description: 'The application (its OAuth 2.0 client or application link) was removed while the user was deciding: shown on a page, never redirected to the client.', oauth2: 'invalid_request' },
  oauth2_access_denied: { status: 403, description: 'The user denied the application access.', oauth2: 'access_denied' },
  oauth2_invalid_token: { status: 401, description: 'The access token is unknown, expired or revoked.', oauth2: 'invalid_token' },
  oauth2_insufficient_scope: { status: 403, description: 'The access token is not granted the scope this request needs (READ allows only GET, HEAD and OPTIONS).', oauth2: 'insufficient_scope' },
  // --- OAuth 1.0a provider (PROTOCOLS.md §1.4: net.oauth's problem codes and statuses)
  oauth1_version_rejected: { status: 400, description: 'oauth_version is not 1.0 (`oauth_acceptable_versions` says which is).', oauth1: 'version_rejected' },
  oauth1_parameter_absent: { status: 400, description: 'A required OAuth parameter is missing (`oauth_parameters_absent` names it).', oauth1: 'parameter_absent' },
  oauth1_parameter_rejected: { status: 400, description: 'An OAuth parameter is repeated, malformed or not acceptable (`oauth_parameters_rejected` names it).', oauth1: 'parameter_rejected' },
  oauth1_timestamp_refused: { status: 400, description: 'oauth_timestamp is outside the accepted window around server time (`oauth_acceptable_timestamps`).', oauth1: 'timestamp_refused' },
  oauth1_signature_method_rejected: { status: 400, description: 'The signature method is unknown or not allowed for this consumer (RSA consumers sign with RSA-SHA1; PLAINTEXT only over https).', oauth1: 'signature_method_rejected' },
  oauth1_nonce_used: { status: 401, description: 'This nonce was already used by this consumer within the timestamp window: the request is a replay.', oauth1: 'nonce_used' },
  oauth1_signature_invalid: { status: 401, description: 'The signature does not match the request.', oauth1: 'signature_invalid' },
  oauth1_consumer_key_unknown: { status: 401, description: 'No application link has this consumer key.', oauth1: 'consumer_key_unknown' },
  oauth1_token_rejected: { status: 401, description: 'The token is unknown, of the wrong kind, or issued to another consumer.', oauth1: 'token_rejected' },
  oauth1_token_expired: { status: 401, description: 'The token has expired.', oauth1: 'token_expired' },
  oauth1_token_revoked: { status: 401, description: 'The token was revoked (by the user, an administrator, a newer authorization or a disabled user).', oauth1: 'token_revoked' },
  oauth1_permission_unknown: { status: 401, description: 'The user has not yet approved or denied this request token.', oauth1: 'permission_unknown' },
  oauth1_permission_denied: { status: 401, description: 'The user denied access, or the consumer may not use this kind of OAuth (3-legged, 2-legged, impersonation).', oauth1: 'permission_denied' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof errorCatalog;
