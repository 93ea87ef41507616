import pino, { type DestinationStream, type Logger } from 'pino';
import type { Config } from '../config/schema.js';

/** Query parameters whose values are credentials; their values never reach the log. */
const SECRET_PARAMS = /^(access_token|refresh_token|token|jwt|code|code_verifier|client_secret|password|oauth_signature|oauth_token|oauth_verifier|oauth_token_secret|oauth_session_handle|api_key|apikey|secret|os_password|client_assertion|assertion|id_token|private_token)$/i;

/** The path and query of a URL with credential-bearing query values masked. */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const params = url
    .slice(q + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const name = eq < 0 ? pair : pair.slice(0, eq);
      let decoded = name;
      try {
        decoded = decodeURIComponent(name);
      } catch {
        /* keep the raw name */
      }
      return eq >= 0 && SECRET_PARAMS.test(decoded) ? `${name}=[Redacted]` : pair;
    });
  return `${url.slice(0, q)}?${params.join('&')}`;
}

/** Paths pino censors wherever they appear in a log object. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["proxy-authorization"]',
  'req.headers["x-seraph-trusted-app-cert"]',
  'req.headers["x-seraph-trusted-app-key"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  'authorization',
  'cookie',
  'password',
  'token',
  'secret',
  'secrets',
  'clientSecret',
  'client_secret',
  'sharedSecret',
  'privateKey',
  'accessToken',
  'refreshToken',
  'access_token',
  'refresh_token',
  '*.password',
  '*.token',
  '*.secret',
  '*.secrets',
  '*.clientSecret',
  '*.client_secret',
  '*.sharedSecret',
  '*.privateKey',
  '*.accessToken',
  '*.refreshToken',
  '*.access_token',
  '*.refresh_token',
  '*.oauth_token_secret',
  '*.authorization',
  '*.cookie',
];

/** The structured logger: JSON on standard output, credentials censored. */
export function createLogger(config: Pick<Config, 'logLevel'>, destination?: DestinationStream): Logger {
  return pino(
    {
      level: config.logLevel,
      redact: { paths: REDACT_PATHS, censor: '[Redacted]' },
      serializers: {
        req: (req: { method?: string; url?: string; ip?: string; headers?: Record<string, unknown> }) => ({
          method: req.method,
          url: req.url === undefined ? undefined : redactUrl(req.url),
          remoteAddress: req.ip,
        }),
        err: pino.stdSerializers.err,
      },
    },
    destination,
  );
}

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * Fastify's per-request logger, created only when something logs. Creating a pino child (with
 * its redaction) for every request costs more than the gateway's whole authentication step,
 * and most requests never log.
 */
export function lazyChildLogger(logger: Logger, bindings: Record<string, unknown>, options: Record<string, unknown>): Logger {
  let child: Logger | undefined;
  const real = () => (child ??= logger.child(bindings, options));
  const lazy: Record<string, unknown> = {
    child: (b: Record<string, unknown>, o?: Record<string, unknown>) => real().child(b, o),
    isLevelEnabled: (level: string) => logger.isLevelEnabled(level),
  };
  for (const level of LEVELS) {
    lazy[level] = (...args: unknown[]) => {
      if (level === 'silent' || !logger.isLevelEnabled(level)) return;
      (real()[level] as (...a: unknown[]) => void)(...args);
    };
  }
  Object.defineProperty(lazy, 'level', { get: () => (child ?? logger).level, set: (v: string) => (real().level = v), enumerable: true });
  return lazy as unknown as Logger;
}

/** Who a request acted as, for the access log line (APPLINKS_ACCESS_LOG): never a credential. */
export function accessLogIdentity(principal: { user: { username: string } | null; authType: string } | undefined): { user: string | null; auth: string | null } {
  return { user: principal?.user?.username ?? null, auth: principal?.authType ?? null };
}
