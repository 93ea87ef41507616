import { SCOPES } from './scopes.js';

/** Where the endpoints are, relative to the base URL (Data Center paths, PROTOCOLS.md §5.1). */
export const OAUTH2_PATHS = {
  prefix: '/rest/oauth2/latest',
  authorize: '/rest/oauth2/latest/authorize',
  token: '/rest/oauth2/latest/token',
  revoke: '/rest/oauth2/latest/revoke',
  introspect: '/rest/oauth2/latest/introspect',
  /** RFC 8414 §3 at the root of the issuer. */
  metadata: '/.well-known/oauth-authorization-server',
  /** The same document under the Data Center prefix (path assumed, PROTOCOLS.md §5.1). */
  metadataDataCenter: '/rest/oauth2/latest/.well-known/oauth-authorization-server',
} as const;

export const GRANT_TYPES = ['authorization_code', 'refresh_token', 'client_credentials'] as const;
export type GrantType = (typeof GRANT_TYPES)[number];

/**
 * RFC 8414 §2: the authorization server metadata. `baseUrl` is where the endpoints are served;
 * `issuer` is the identifier clients compare with the `iss` of authorization responses
 * (RFC 9207), normally the same URL.
 */
export function authorizationServerMetadata(issuer: string, baseUrl: string): Record<string, unknown> {
  const at = (path: string) => baseUrl + path;
  const clientAuth = ['client_secret_basic', 'client_secret_post'];
  return {
    issuer,
    authorization_endpoint: at(OAUTH2_PATHS.authorize),
    token_endpoint: at(OAUTH2_PATHS.token),
    revocation_endpoint: at(OAUTH2_PATHS.revoke),
    introspection_endpoint: at(OAUTH2_PATHS.introspect),
    scopes_supported: [...SCOPES],
    response_types_supported: ['code'],
    response_modes_supported: ['query'],
    grant_types_supported: [...GRANT_TYPES],
    // `none` is a public client naming itself with client_id (it must use PKCE).
    token_endpoint_auth_methods_supported: [...clientAuth, 'none'],
    revocation_endpoint_auth_methods_supported: [...clientAuth, 'none'],
    introspection_endpoint_auth_methods_supported: clientAuth,
    code_challenge_methods_supported: ['S256'],
    authorization_response_iss_parameter_supported: true,
  };
}
