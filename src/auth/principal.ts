/** How a request reached applinks. */
export type Connection = 'direct' | 'gateway' | 'forward-auth' | 'library' | 'relay' | 'iframe-proxy';

/** Why a client should show its user that this connection is weaker than it could be. */
export type WarningCode = 'password-auth' | 'insecure-transport' | 'impersonation';

export interface Warning {
  code: WarningCode;
  message: string;
}

export const WARNINGS: Record<WarningCode, Warning> = {
  'password-auth': {
    code: 'password-auth',
    message: 'Authenticated with a password: weaker than a token, which can be limited and revoked without changing the password.',
  },
  'insecure-transport': {
    code: 'insecure-transport',
    message: 'The request came over plain HTTP: credentials and data can be read on the way.',
  },
  impersonation: {
    code: 'impersonation',
    message: 'The calling application acts as a user it named itself, without that user signing in.',
  },
};

export interface PrincipalUser {
  id: string;
  username: string;
  displayName: string;
  email: string | null;
  isAdmin: boolean;
  groups: readonly string[];
}

/**
 * The result of authenticating a request: who (or nobody), through which link and type, with
 * which scopes, how the request arrived, and what the client should be warned about.
 */
export interface Principal {
  user: PrincipalUser | null;
  link: { id: string; name: string } | null;
  /** Id of the authentication type in the registry (`anonymous`, `basic`, `api-token`, ...). */
  authType: string;
  /** Granted scopes, or null when the credential carries the user's full rights. */
  scopes: readonly string[] | null;
  connection: Connection;
  warnings: readonly Warning[];
  /** Internal: id of the token or session used, for audit and revocation. Never sent to clients. */
  credentialId?: string;
}

export function anonymousPrincipal(connection: Connection, warnings: readonly Warning[] = []): Principal {
  return { user: null, link: null, authType: 'anonymous', scopes: null, connection, warnings };
}

/** The public JSON view of a principal: what the security indicator shows. */
export function principalView(p: Principal) {
  return {
    authenticated: p.user !== null,
    user: p.user && {
      id: p.user.id,
      username: p.user.username,
      displayName: p.user.displayName,
      email: p.user.email,
      admin: p.user.isAdmin,
      groups: [...p.user.groups],
    },
    link: p.link,
    authType: p.authType,
    scopes: p.scopes === null ? null : [...p.scopes],
    connection: p.connection,
    warnings: p.warnings.map((w) => ({ ...w })),
  };
}
