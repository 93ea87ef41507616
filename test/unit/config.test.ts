import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/loader.js';

const problems = (env: Record<string, string>) => {
  try {
    loadConfig({ env });
  } catch (error) {
    return (error as ConfigError).problems;
  }
  return [];
};

describe('configuration', () => {
  it('has working defaults', () => {
    const c = loadConfig({ env: {} });
    expect(c).toMatchObject({ port: 8080, host: '127.0.0.1', baseUrl: 'http://127.0.0.1:8080', baseUrlExplicit: false, basicPasswordAuth: true, logLevel: 'info' });
    expect(c.databaseUrl).toBe(`sqlite:${path.resolve('data/applinks.db')}`);
  });

  it('names every bad value, and never echoes a secret', () => {
    expect(problems({ APPLINKS_PORT: '70000', APPLINKS_LOG_LEVEL: 'loud', APPLINKS_BASIC_PASSWORD_AUTH: 'maybe' })).toEqual([
      'APPLINKS_PORT: must be an integer from 0 to 65535 (got "70000")',
      'APPLINKS_LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent (got "loud")',
      'APPLINKS_BASIC_PASSWORD_AUTH: must be true or false (got "maybe")',
    ]);
    expect(problems({ APPLINKS_BASE_URL: 'ftp://x' })).toEqual(['APPLINKS_BASE_URL: must use http: or https: (got "ftp://x")']);
    expect(problems({ APPLINKS_UPSTREAM_URL: 'http://u:p@host' })[0]).toMatch(/must not contain credentials/);
    expect(problems({ APPLINKS_TRUSTED_PROXIES: '10.0.0.0/8, not-an-ip' })).toEqual(['APPLINKS_TRUSTED_PROXIES: "not-an-ip" is not an IP address or CIDR range']);
    const secret = problems({ APPLINKS_ADMIN_PASSWORD: 'short' });
    expect(secret).toEqual(['APPLINKS_ADMIN_PASSWORD: must be at least 8 characters']);
    for (const host of ['999.1.1.1', 'bad host', 'http://x', '-x']) expect(problems({ APPLINKS_HOST: host })).toEqual([`APPLINKS_HOST: must be an IP address or a host name (got ${JSON.stringify(host)})`]);
    for (const host of ['::', '0.0.0.0', '::1', 'localhost', 'applinks.internal']) expect(problems({ APPLINKS_HOST: host })).toEqual([]);
    expect(problems({ APPLINKS_PORT: '0' })).toEqual(['APPLINKS_PORT: 0 (a free port) needs APPLINKS_BASE_URL, as the public URL cannot be known before listening']);
    expect(problems({ APPLINKS_PORT: '0', APPLINKS_BASE_URL: 'https://apps.example.com' })).toEqual([]);
    expect(problems({ APPLINKS_DATABASE_URL: 'mysql://x' })[0]).toMatch(/APPLINKS_DATABASE_URL: must start with sqlite: or postgres:\/\//);
  });

  it('reads an optional JSON file under the environment, and refuses unknown keys in it', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cfg-'));
    const file = path.join(dir, 'applinks.json');
    writeFileSync(file, JSON.stringify({ port: 9000, appName: 'From file', trustedProxies: ['127.0.0.1'] }));
    const c = loadConfig({ env: { APPLINKS_CONFIG_FILE: file, APPLINKS_APP_NAME: 'From env' } });
    expect(c).toMatchObject({ port: 9000, appName: 'From env', trustedProxies: ['127.0.0.1'] });
    writeFileSync(file, JSON.stringify({ prot: 9000 }));
    expect(() => loadConfig({ env: { APPLINKS_CONFIG_FILE: file } })).toThrow(/unknown key "prot"/);
    writeFileSync(file, '{ not json');
    expect(() => loadConfig({ env: { APPLINKS_CONFIG_FILE: file } })).toThrow(/APPLINKS_CONFIG_FILE/);
  });

  it('derives the base URL from the listen address, and strips a trailing slash from an explicit one', () => {
    expect(loadConfig({ env: { APPLINKS_HOST: '0.0.0.0', APPLINKS_PORT: '9999' } }).baseUrl).toBe('http://127.0.0.1:9999');
    expect(loadConfig({ env: { APPLINKS_BASE_URL: 'https://jira.example.com/ctx/' } })).toMatchObject({ baseUrl: 'https://jira.example.com/ctx', baseUrlExplicit: true });
  });
});
