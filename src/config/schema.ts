/**
 * The one configuration schema. Every key has a type, a default, a description and the
 * environment variable that sets it; the README's configuration table is generated from this
 * list (`npm run docs`), and a test keeps the two in step.
 */

export type ConfigValueType =
  | { kind: 'string'; minLength?: number }
  | { kind: 'integer'; min: number; max: number }
  | { kind: 'boolean' }
  | { kind: 'url'; protocols: readonly string[] }
  | { kind: 'enum'; values: readonly string[] }
  | { kind: 'list' };

export interface ConfigKey {
  readonly env: string;
  readonly type: ConfigValueType;
  /** A literal default, or a description of the derived default for the docs. */
  readonly default: string | number | boolean | readonly string[] | undefined;
  readonly defaultText?: string;
  readonly description: string;
  /** Never logged, never echoed in validation messages. */
  readonly secret?: boolean;
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export const configSchema = {
  port: {
    env: 'APPLINKS_PORT',
    type: { kind: 'integer', min: 0, max: 65535 },
    default: 8080,
    description: 'TCP port to listen on (0 picks a free port, and then needs `APPLINKS_BASE_URL`).',
  },
  host: {
    env: 'APPLINKS_HOST',
    type: { kind: 'string', minLength: 1 },
    default: '127.0.0.1',
    description: 'Address to listen on. Use `0.0.0.0` to accept connections from other machines.',
  },
  baseUrl: {
    env: 'APPLINKS_BASE_URL',
    type: { kind: 'url', protocols: ['http:', 'https:'] },
    default: undefined,
    defaultText: '`http://<host>:<port>`',
    description:
      'Public URL of this server as clients see it. OAuth signatures, redirects, the manifest and cookies (Secure when https) are built from it.',
  },
  dataDir: {
    env: 'APPLINKS_DATA_DIR',
    type: { kind: 'string', minLength: 1 },
    default: './data',
    description: 'Directory for the embedded SQLite database and the generated master key.',
  },
  databaseUrl: {
    env: 'APPLINKS_DATABASE_URL',
    type: { kind: 'string', minLength: 1 },
    default: undefined,
    defaultText: '`sqlite:<dataDir>/applinks.db`',
    description:
      '`sqlite:<path>` for the embedded store, or `postgres://user:pass@host/db` to share one PostgreSQL between several instances.',
    secret: true,
  },
  masterKey: {
    env: 'APPLINKS_MASTER_KEY',
    type: { kind: 'list' },
    default: undefined,
    defaultText: 'generated into `<dataDir>/master.key` (mode 0600) at first start',
    description:
      'Base64 256-bit key(s) that encrypt every stored secret (AES-256-GCM). Comma-separated: the first encrypts, the others only decrypt (for rotation).',
    secret: true,
  },
  adminPassword: {
    env: 'APPLINKS_ADMIN_PASSWORD',
    type: { kind: 'string', minLength: 8 },
    default: undefined,
    defaultText: 'random, printed once',
    description: 'Password of the `admin` user created at first start. Ignored once the user exists.',
    secret: true,
  },
  upstreamUrl: {
    env: 'APPLINKS_UPSTREAM_URL',
    type: { kind: 'url', protocols: ['http:', 'https:'] },
    default: undefined,
    defaultText: 'none (paths answer the principal as JSON)',
    description: 'The host application. Every path applinks does not own is forwarded there after authentication.',
  },
  trustedProxies: {
    env: 'APPLINKS_TRUSTED_PROXIES',
    type: { kind: 'list' },
    default: [],
    description:
      'Comma-separated addresses or CIDR ranges of reverse proxies whose `X-Forwarded-*`, `X-Original-*` headers are believed.',
  },
  logLevel: {
    env: 'APPLINKS_LOG_LEVEL',
    type: { kind: 'enum', values: LOG_LEVELS },
    default: 'info',
    description: 'Log level of the structured (pino) log on standard output.',
  },
  accessLog: {
    env: 'APPLINKS_ACCESS_LOG',
    type: { kind: 'boolean' },
    default: false,
    description: 'Log one line per request (method, path, status, user, time). Credentials are always redacted.',
  },
  appName: {
    env: 'APPLINKS_APP_NAME',
    type: { kind: 'string', minLength: 1 },
    default: 'applinks',
    description: 'Display name of this application in the manifest, consent pages and consumer info.',
  },
  applicationType: {
    env: 'APPLINKS_APPLICATION_TYPE',
    type: { kind: 'string', minLength: 1 },
    default: 'generic',
    description: 'The manifest `typeId` this server announces (`generic`, `jira`, `confluence`, ...).',
  },
  basicPasswordAuth: {
    env: 'APPLINKS_BASIC_PASSWORD_AUTH',
    type: { kind: 'boolean' },
    default: true,
    description:
      'Accept `Authorization: Basic` with the real password (flagged as weaker). API tokens in Basic are accepted either way.',
  },
  sessionTtlSeconds: {
    env: 'APPLINKS_SESSION_TTL_SECONDS',
    type: { kind: 'integer', min: 60, max: 31_536_000 },
    default: 43_200,
    description: 'Lifetime of a sign-in session.',
  },
  authCacheTtlMs: {
    env: 'APPLINKS_AUTH_CACHE_TTL_MS',
    type: { kind: 'integer', min: 0, max: 60_000 },
    default: 1000,
    description:
      'How long an instance trusts a cached credential, user or link record. Bounds how late a revocation made on another instance is seen.',
  },
  passwordCacheTtlSeconds: {
    env: 'APPLINKS_PASSWORD_CACHE_TTL_SECONDS',
    type: { kind: 'integer', min: 0, max: 3600 },
    default: 300,
    description:
      'How long a successful Basic password check is remembered (keyed by a keyed hash, dropped when the password changes). 0 runs scrypt on every request.',
  },
  signInMaxFailuresPerUser: {
    env: 'APPLINKS_SIGNIN_MAX_FAILURES_PER_USER',
    type: { kind: 'integer', min: 1, max: 1000 },
    default: 5,
    description:
      'Failed password attempts per username within the window before answering 429. A browser where the user signed in before counts apart (its own limit of the same size), so guesses from elsewhere do not lock the user out of it.',
  },
  signInMaxFailuresPerAddress: {
    env: 'APPLINKS_SIGNIN_MAX_FAILURES_PER_ADDRESS',
    type: { kind: 'integer', min: 1, max: 10000 },
    default: 20,
    description: 'Failed password attempts per client address within the window before answering 429.',
  },
  signInFailureWindowSeconds: {
    env: 'APPLINKS_SIGNIN_FAILURE_WINDOW_SECONDS',
    type: { kind: 'integer', min: 10, max: 86_400 },
    default: 900,
    description: 'The window over which failed password attempts are counted.',
  },
  bodyLimit: {
    env: 'APPLINKS_BODY_LIMIT',
    type: { kind: 'integer', min: 1024, max: 104_857_600 },
    default: 1_048_576,
    description: 'Largest request body, in bytes, that applinks parses itself (admin API, forms). At the gateway a form-encoded body up to this size is read first (it may carry OAuth 1.0a parameters) and a chunked one over it is refused (413); every other body is streamed to the host, unlimited.',
  },
  upstreamTimeoutMs: {
    env: 'APPLINKS_UPSTREAM_TIMEOUT_MS',
    type: { kind: 'integer', min: 100, max: 3_600_000 },
    default: 60_000,
    description: 'How long the gateway waits for the upstream to answer headers.',
  },
  assertionTtlSeconds: {
    env: 'APPLINKS_ASSERTION_TTL_SECONDS',
    type: { kind: 'integer', min: 10, max: 3600 },
    default: 60,
    description: 'Lifetime of the signed `X-Applinks-Assertion` JWT given to the host.',
  },
  shutdownTimeoutMs: {
    env: 'APPLINKS_SHUTDOWN_TIMEOUT_MS',
    type: { kind: 'integer', min: 0, max: 600_000 },
    default: 10_000,
    description: 'On SIGTERM, how long in-flight requests may take before the store is closed anyway.',
  },
  // --- OAuth 2.0 authorization server (issue 4)
  oauth2Issuer: {
    env: 'APPLINKS_OAUTH2_ISSUER',
    type: { kind: 'url', protocols: ['http:', 'https:'] },
    default: undefined,
    defaultText: 'the base URL',
    description: 'The OAuth 2.0 issuer identifier (RFC 8414), sent as `iss` in authorization responses (RFC 9207).',
  },
  oauth2AccessTokenTtlSeconds: {
    env: 'APPLINKS_OAUTH2_ACCESS_TOKEN_TTL_SECONDS',
    type: { kind: 'integer', min: 60, max: 86_400 },
    default: 3600,
    description: 'Lifetime of an OAuth 2.0 access token (Data Center: 3600).',
  },
  oauth2RefreshTokenTtlSeconds: {
    env: 'APPLINKS_OAUTH2_REFRESH_TOKEN_TTL_SECONDS',
    type: { kind: 'integer', min: 3600, max: 315_360_000 },
    default: 7_776_000,
    description: 'Lifetime of an OAuth 2.0 refresh token from its issue (Data Center: 90 days). Each refresh issues a new one.',
  },
  oauth2CodeTtlSeconds: {
    env: 'APPLINKS_OAUTH2_CODE_TTL_SECONDS',
    type: { kind: 'integer', min: 1, max: 600 },
    default: 60,
    description: 'Lifetime of an authorization code (at most 10 minutes, RFC 6749 §4.1.2). Codes are single use.',
  },
  oauth2SecretGraceSeconds: {
    env: 'APPLINKS_OAUTH2_SECRET_GRACE_SECONDS',
    type: { kind: 'integer', min: 0, max: 2_592_000 },
    default: 86_400,
    description: 'After a client secret is rotated, how long the previous secret keeps working (unless the rotation names its own grace).',
  },
  oauth2DeveloperApps: {
    env: 'APPLINKS_OAUTH2_DEVELOPER_APPS',
    type: { kind: 'boolean' },
    default: false,
    description: 'Let every user register their own OAuth 2.0 applications (3-legged clients) under `/api/v1/me/oauth2/clients`.',
  },
  oauth2DeveloperMaxApps: {
    env: 'APPLINKS_OAUTH2_DEVELOPER_MAX_APPS',
    type: { kind: 'integer', min: 0, max: 1000 },
    default: 10,
    description: 'How many OAuth 2.0 applications one user may register in the developer area.',
  },
  oauth2DeveloperMaxScope: {
    env: 'APPLINKS_OAUTH2_DEVELOPER_MAX_SCOPE',
    type: { kind: 'enum', values: ['READ', 'WRITE', 'ADMIN', 'SYSTEM_ADMIN'] },
    default: 'WRITE',
    description: 'The widest scope an application registered in the developer area may ask for.',
  },
  oauth2DangerouslyAllowHttpRedirects: {
    env: 'APPLINKS_OAUTH2_DANGEROUSLY_ALLOW_HTTP_REDIRECTS',
    type: { kind: 'boolean' },
    default: false,
    description:
      'Accept plain `http` redirect URIs that are not loopback addresses. For development only: codes then travel unencrypted. Loopback redirects (`http://127.0.0.1`, `http://[::1]`) are always accepted.',
  },
  // --- OAuth 1.0a provider and consumer (issue 3)
  oauth1TimestampWindowSeconds: {
    env: 'APPLINKS_OAUTH1_TIMESTAMP_WINDOW_SECONDS',
    type: { kind: 'integer', min: 30, max: 3600 },
    default: 300,
    description: 'How far `oauth_timestamp` may be from server time (Jira: 300). Nonces are remembered for as long, across restarts and instances.',
  },
  oauth1RequestTokenTtlSeconds: {
    env: 'APPLINKS_OAUTH1_REQUEST_TOKEN_TTL_SECONDS',
    type: { kind: 'integer', min: 60, max: 3600 },
    default: 600,
    description: 'Lifetime of an OAuth 1.0a request token (Jira: 10 minutes). Request tokens are single use.',
  },
  oauth1AccessTokenTtlSeconds: {
    env: 'APPLINKS_OAUTH1_ACCESS_TOKEN_TTL_SECONDS',
    type: { kind: 'integer', min: 3600, max: 315_360_000 },
    default: 157_680_000,
    description: 'Lifetime of an OAuth 1.0a access token (Jira: 5 × 365 days), sent as `oauth_expires_in`.',
  },
  oauth1SessionTtlSeconds: {
    env: 'APPLINKS_OAUTH1_SESSION_TTL_SECONDS',
    type: { kind: 'integer', min: 3600, max: 630_720_000 },
    default: undefined,
    defaultText: 'the access-token lifetime + 30 days',
    description: 'How long after it was authorized or last renewed an authorization may be renewed with `oauth_session_handle` (`oauth_authorization_expires_in`); at least the access-token lifetime.',
  },
  oauth1DebugSignatures: {
    env: 'APPLINKS_OAUTH1_DEBUG_SIGNATURES',
    type: { kind: 'boolean' },
    default: false,
    description: 'Send the server\'s signature base string back with `signature_invalid` (as Jira does), to debug a client. Off: it tells a prober what was signed.',
  },
  oauth1DangerouslyAllowOAuth10: {
    env: 'APPLINKS_OAUTH1_DANGEROUSLY_ALLOW_OAUTH10',
    type: { kind: 'boolean' },
    default: false,
    description: 'Accept OAuth 1.0 request tokens (no `oauth_callback`, no verifier), as Jira does. Off: 1.0 is open to session fixation, so `oauth_callback` is required (1.0a).',
  },
} as const satisfies Record<string, ConfigKey>;

export type ConfigKeyName = keyof typeof configSchema;

/** The validated configuration every module receives. Only config/loader.ts reads the environment. */
export interface Config {
  port: number;
  host: string;
  baseUrl: string;
  /** True when the operator set APPLINKS_BASE_URL (then forwarded host/proto headers are ignored). */
  baseUrlExplicit: boolean;
  dataDir: string;
  databaseUrl: string;
  masterKey: string[] | undefined;
  adminPassword: string | undefined;
  upstreamUrl: string | undefined;
  trustedProxies: string[];
  logLevel: (typeof LOG_LEVELS)[number];
  accessLog: boolean;
  appName: string;
  applicationType: string;
  basicPasswordAuth: boolean;
  sessionTtlSeconds: number;
  authCacheTtlMs: number;
  passwordCacheTtlSeconds: number;
  signInMaxFailuresPerUser: number;
  signInMaxFailuresPerAddress: number;
  signInFailureWindowSeconds: number;
  bodyLimit: number;
  upstreamTimeoutMs: number;
  assertionTtlSeconds: number;
  shutdownTimeoutMs: number;
  // --- OAuth 2.0 authorization server
  oauth2Issuer: string | undefined;
  oauth2AccessTokenTtlSeconds: number;
  oauth2RefreshTokenTtlSeconds: number;
  oauth2CodeTtlSeconds: number;
  oauth2SecretGraceSeconds: number;
  oauth2DeveloperApps: boolean;
  oauth2DeveloperMaxApps: number;
  oauth2DeveloperMaxScope: 'READ' | 'WRITE' | 'ADMIN' | 'SYSTEM_ADMIN';
  oauth2DangerouslyAllowHttpRedirects: boolean;
  // --- OAuth 1.0a
  oauth1TimestampWindowSeconds: number;
  oauth1RequestTokenTtlSeconds: number;
  oauth1AccessTokenTtlSeconds: number;
  /** Resolved at load: never below the access-token lifetime. */
  oauth1SessionTtlSeconds: number;
  oauth1DebugSignatures: boolean;
  oauth1DangerouslyAllowOAuth10: boolean;
}
