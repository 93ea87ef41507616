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

const CENSOR = '[Redacted]';

/**
 * The names (any case) whose values are censored at any depth: the last step of each path above.
 * pino's paths reach one level below the top; a secret two levels down needs this.
 */
const SECRET_KEY = new RegExp(`^(?:${[...new Set(REDACT_PATHS.map((p) => /([^.["\]]+)"?\]?$/.exec(p)![1]!))].join('|')})$`, 'i');

/** How deep `redactKeys` looks; an object nested deeper is not printed at all. */
const MAX_DEPTH = 8;

/**
 * Bearer secrets applinks issues, recognised by their kind's prefix (`alpat_` and the others, see
 * `randomToken`) wherever they appear in a line: an error message quoting a value (PostgreSQL's
 * does), a stack, a cause, the log message itself. The test keeps this list in step with the prefixes.
 */
const ISSUED_TOKEN = /\b(al(?:pat|ses|at|rt|ac|cs|ort|oat|osh)_)[A-Za-z0-9_-]+/g;

/**
 * `value` with the values of secret-named keys censored, in plain objects, arrays and errors, to
 * MAX_DEPTH. Copies only what it changes: when nothing matches it answers `value` itself and
 * allocates nothing. Class instances and objects with `toJSON` are left as they print.
 */
function redactKeys(value: unknown, depth: number, ancestors: unknown[]): unknown {
  if (typeof value !== 'object' || value === null) return value;
  const proto = Object.getPrototypeOf(value) as unknown;
  const walkable = Array.isArray(value) || proto === Object.prototype || proto === null || value instanceof Error;
  if (!walkable || typeof (value as { toJSON?: unknown }).toJSON === 'function') return value;
  if (depth >= MAX_DEPTH) return '[Too deep]';
  if (ancestors.includes(value)) return '[Circular]';
  ancestors.push(value);
  let out: unknown;
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const v = redactKeys(value[i], depth + 1, ancestors);
      if (v !== value[i]) (copy ??= value.slice())[i] = v;
    }
    out = copy;
  } else {
    const object = value as Record<string, unknown>;
    const keys = Object.keys(object);
    let copy: Record<string, unknown> | undefined;
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      const v = object[key];
      const redacted = SECRET_KEY.test(key) ? (v === undefined ? v : CENSOR) : redactKeys(v, depth + 1, ancestors);
      if (redacted !== v) (copy ??= copyOf(object, keys))[key] = redacted;
    }
    out = copy;
  }
  ancestors.pop();
  return out ?? value;
}

/** An object's own enumerable properties, as JSON.stringify would print it (an Error too). */
function copyOf(object: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  const copy: Record<string, unknown> = {};
  for (const key of keys) copy[key] = object[key];
  return copy;
}

/** pino's error serializer, then what it copied of the error's own properties censored by name. */
function serializeError(error: Error): unknown {
  const serialized = pino.stdSerializers.err(error) as unknown;
  return serialized === error ? redactKeys(error, 0, []) : censorSerialized(serialized as Record<string, unknown>, [error]);
}

/** Censors in place the fresh object pino's serializer made of an error (and those of its aggregated errors). */
function censorSerialized(fresh: Record<string, unknown>, ancestors: unknown[]): Record<string, unknown> {
  for (const key of Object.keys(fresh)) {
    const v = fresh[key];
    if (key === 'aggregateErrors' && Array.isArray(v)) for (const e of v) censorSerialized(e as Record<string, unknown>, ancestors);
    else if (SECRET_KEY.test(key)) fresh[key] = CENSOR;
    else fresh[key] = redactKeys(v, 1, ancestors);
  }
  return fresh;
}

/** The structured logger: JSON on standard output, credentials censored. */
export function createLogger(config: Pick<Config, 'logLevel'>, destination?: DestinationStream): Logger {
  return pino(
    {
      level: config.logLevel,
      redact: { paths: REDACT_PATHS, censor: CENSOR },
      formatters: {
        // Every key but `err`, which its serializer handles (an Error copied here would lose its message and stack).
        log: (object) => {
          let out: Record<string, unknown> | undefined;
          let ancestors: unknown[] | undefined;
          for (const key in object) {
            if (key === 'err' || !Object.prototype.hasOwnProperty.call(object, key)) continue;
            const v = object[key];
            const redacted = SECRET_KEY.test(key) ? (v === undefined ? v : CENSOR) : typeof v === 'object' && v !== null ? redactKeys(v, 1, (ancestors ??= [object])) : v;
            if (redacted !== v) (out ??= { ...object })[key] = redacted;
          }
          return out ?? object;
        },
      },
      hooks: { streamWrite: (line) => line.replace(ISSUED_TOKEN, `$1${CENSOR}`) },
      serializers: {
        req: (req: { method?: string; url?: string; ip?: string; headers?: Record<string, unknown> }) => ({
          method: req.method,
          url: req.url === undefined ? undefined : redactUrl(req.url),
          remoteAddress: req.ip,
        }),
        err: serializeError,
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
