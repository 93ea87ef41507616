import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import { configSchema, type Config, type ConfigKey, type ConfigKeyName } from './schema.js';

/** A configuration problem; `where` names the environment variable or file key at fault. */
export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

export interface LoadOptions {
  /** Defaults to process.env. Tests pass their own. */
  env?: Record<string, string | undefined>;
  /** Values that win over both file and environment (used by tests and the CLI). */
  overrides?: Partial<Record<ConfigKeyName, unknown>>;
  /** Path of an optional JSON file; defaults to APPLINKS_CONFIG_FILE. */
  file?: string;
}

type Raw = { value: unknown; where: string };

/**
 * Reads, coerces and validates the configuration from (lowest to highest precedence) the
 * defaults, the optional JSON file, the environment and explicit overrides. Every problem is
 * collected and reported with the name that was used to set it.
 */
export function loadConfig(options: LoadOptions = {}): Config {
  const env = options.env ?? process.env;
  const problems: string[] = [];
  const raw = new Map<ConfigKeyName, Raw>();

  const file = options.file ?? env.APPLINKS_CONFIG_FILE;
  if (file) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8'));
    } catch (error) {
      throw new ConfigError([`APPLINKS_CONFIG_FILE (${file}): ${(error as Error).message}`]);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new ConfigError([`APPLINKS_CONFIG_FILE (${file}): must hold a JSON object`]);
    }
    for (const [key, value] of Object.entries(parsed)) {
      if (!(key in configSchema)) {
        problems.push(`${file}: unknown key "${key}"`);
        continue;
      }
      raw.set(key as ConfigKeyName, { value, where: `${file}: ${key}` });
    }
  }
  for (const [key, spec] of entries()) {
    const value = env[spec.env];
    if (value !== undefined && value !== '') raw.set(key, { value, where: spec.env });
  }
  for (const [key, value] of Object.entries(options.overrides ?? {})) {
    if (value !== undefined) raw.set(key as ConfigKeyName, { value, where: key });
  }

  const values: Record<string, unknown> = {};
  for (const [key, spec] of entries()) {
    const given = raw.get(key);
    if (!given) {
      values[key] = spec.default;
      continue;
    }
    const result = coerce(spec, given.value);
    if ('problem' in result) {
      const shown = spec.secret ? '' : ` (got ${JSON.stringify(given.value)})`;
      problems.push(`${given.where}: ${result.problem}${shown}`);
    } else {
      values[key] = result.value;
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const config = values as unknown as Omit<Config, 'baseUrlExplicit'>;
  const dataDir = path.resolve(config.dataDir);
  const baseUrlExplicit = config.baseUrl !== undefined;
  const listenHost = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  const hostPart = listenHost.includes(':') ? `[${listenHost}]` : listenHost;
  if (!isListenHost(config.host)) problems.push(`${raw.get('host')?.where ?? 'APPLINKS_HOST'}: must be an IP address or a host name (got ${JSON.stringify(config.host)})`);
  // The public URL is in every token, page and manifest: with a port picked at listen time it
  // cannot be derived, so it must be given.
  if (config.port === 0 && config.baseUrl === undefined) {
    problems.push(`${raw.get('port')?.where ?? 'APPLINKS_PORT'}: 0 (a free port) needs APPLINKS_BASE_URL, as the public URL cannot be known before listening`);
  }
  const baseUrl = stripTrailingSlash(config.baseUrl ?? `http://${hostPart}:${config.port}`);
  const databaseUrl = config.databaseUrl ?? `sqlite:${path.join(dataDir, 'applinks.db')}`;
  if (!/^(sqlite:|postgres:\/\/|postgresql:\/\/)/.test(databaseUrl)) {
    throw new ConfigError([`${raw.get('databaseUrl')?.where ?? 'APPLINKS_DATABASE_URL'}: must start with sqlite: or postgres://`]);
  }
  for (const proxy of config.trustedProxies) {
    if (!isAddressOrCidr(proxy)) problems.push(`APPLINKS_TRUSTED_PROXIES: "${proxy}" is not an IP address or CIDR range`);
  }
  for (const key of config.masterKey ?? []) {
    if (Buffer.from(key, 'base64').length !== 32) problems.push('APPLINKS_MASTER_KEY: each key must be 32 bytes in base64');
  }
  const oauth1SessionTtlSeconds = config.oauth1SessionTtlSeconds ?? config.oauth1AccessTokenTtlSeconds + 2_592_000;
  if (oauth1SessionTtlSeconds < config.oauth1AccessTokenTtlSeconds) {
    problems.push(`${raw.get('oauth1SessionTtlSeconds')?.where ?? 'APPLINKS_OAUTH1_SESSION_TTL_SECONDS'}: must not be shorter than APPLINKS_OAUTH1_ACCESS_TOKEN_TTL_SECONDS (${config.oauth1AccessTokenTtlSeconds})`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return { ...config, dataDir, baseUrl, baseUrlExplicit, databaseUrl, oauth1SessionTtlSeconds };
}

function entries(): Array<[ConfigKeyName, ConfigKey]> {
  return Object.entries(configSchema) as Array<[ConfigKeyName, ConfigKey]>;
}

function coerce(spec: ConfigKey, value: unknown): { value: unknown } | { problem: string } {
  const type = spec.type;
  switch (type.kind) {
    case 'string': {
      if (typeof value !== 'string') return { problem: 'must be a string' };
      if (type.minLength !== undefined && value.length < type.minLength) {
        return { problem: `must be at least ${type.minLength} characters` };
      }
      return { value };
    }
    case 'integer': {
      const n = typeof value === 'number' ? value : typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value) : NaN;
      if (!Number.isSafeInteger(n) || n < type.min || n > type.max) {
        return { problem: `must be an integer from ${type.min} to ${type.max}` };
      }
      return { value: n };
    }
    case 'boolean': {
      if (typeof value === 'boolean') return { value };
      if (typeof value === 'string') {
        const v = value.trim().toLowerCase();
        if (['true', '1', 'yes', 'on'].includes(v)) return { value: true };
        if (['false', '0', 'no', 'off'].includes(v)) return { value: false };
      }
      return { problem: 'must be true or false' };
    }
    case 'url': {
      if (typeof value !== 'string') return { problem: 'must be a URL' };
      let url: URL;
      try {
        url = new URL(value);
      } catch {
        return { problem: 'must be an absolute URL' };
      }
      if (!type.protocols.includes(url.protocol)) return { problem: `must use ${type.protocols.join(' or ')}` };
      if (url.search || url.hash) return { problem: 'must not have a query or fragment' };
      if (url.username || url.password) return { problem: 'must not contain credentials' };
      return { value: stripTrailingSlash(url.toString()) };
    }
    case 'enum': {
      if (typeof value !== 'string' || !type.values.includes(value)) {
        return { problem: `must be one of ${type.values.join(', ')}` };
      }
      return { value };
    }
    case 'list': {
      if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return { value: value.map((v) => v.trim()).filter(Boolean) };
      if (typeof value === 'string') return { value: value.split(',').map((v) => v.trim()).filter(Boolean) };
      return { problem: 'must be a comma-separated list' };
    }
  }
}

function stripTrailingSlash(url: string): string {
  return url.endsWith('/') ? url.slice(0, -1) : url;
}

function isAddressOrCidr(value: string): boolean {
  const [address, bits, ...rest] = value.split('/');
  if (rest.length > 0 || !address) return false;
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(address);
  const isV4 = v4 !== null && v4.slice(1).every((o) => Number(o) <= 255);
  const isV6 = !isV4 && /^[0-9a-fA-F:.]+$/.test(address) && address.includes(':');
  if (!isV4 && !isV6) return false;
  if (bits === undefined) return true;
  const n = Number(bits);
  return /^\d+$/.test(bits) && n >= 0 && n <= (isV4 ? 32 : 128);
}

/** An address or name `listen()` takes and a URL can carry (999.1.1.1 and "bad host" are neither). */
function isListenHost(host: string): boolean {
  if (isIP(host) !== 0) return true;
  if (!/^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*\.?$/.test(host) || host.length > 253) return false;
  try {
    return new URL(`http://${host}/`).hostname.length > 0;
  } catch {
    return false;
  }
}
