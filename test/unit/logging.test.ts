import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ACCESS_TOKEN_PREFIX as OAUTH1_ACCESS, REQUEST_TOKEN_PREFIX as OAUTH1_REQUEST, SESSION_HANDLE_PREFIX as OAUTH1_SESSION } from '../../src/modules/oauth1/provider.js';
import { ACCESS_TOKEN_PREFIX as OAUTH2_ACCESS, CLIENT_SECRET_PREFIX, CODE_PREFIX, REFRESH_TOKEN_PREFIX } from '../../src/modules/oauth2/service.js';
import { API_TOKEN_PREFIX } from '../../src/services/api-tokens.js';
import { SESSION_PREFIX } from '../../src/services/sessions.js';
import { createLogger, REDACT_PATHS, redactUrl } from '../../src/server/logger.js';

/** A logger writing into a string, as raw as it reaches standard output. */
function capture(level = 'info') {
  const lines: string[] = [];
  const sink = new Writable({ write: (c: Buffer, _e, done) => (lines.push(c.toString()), done()) });
  return { log: createLogger({ logLevel: level as 'info' }, sink), out: () => lines.join('') };
}

/** An object holding `value` at a pino redaction path (`*` becomes a key of our choosing). */
function atPath(path: string, value: string): Record<string, unknown> {
  const keys = [...path.matchAll(/([^.[\]"]+)|\["([^"]+)"\]/g)].map((m) => (m[1] ?? m[2]) === '*' ? 'anything' : (m[1] ?? m[2])!);
  const root: Record<string, unknown> = {};
  let at = root;
  keys.forEach((key, i) => {
    if (i === keys.length - 1) at[key] = value;
    else at = (at[key] = {}) as Record<string, unknown>;
  });
  return root;
}

describe('log redaction', () => {
  it('censors credentials wherever they appear', () => {
    const { log, out } = capture();
    log.info(
      {
        req: { method: 'GET', url: '/x?access_token=tok-123&page=2&oauth_signature=sig-456', headers: { authorization: 'Bearer alpat_leak', cookie: 'applinks_session=alses_leak' } },
        password: 'pw-leak',
        config: { clientSecret: 'cs-leak', sharedSecret: 'ss-leak', token: 'tk-leak' },
        authorization: 'Basic leak==',
      },
      'request',
    );
    for (const leak of ['tok-123', 'sig-456', 'alpat_leak', 'alses_leak', 'pw-leak', 'cs-leak', 'ss-leak', 'tk-leak', 'Basic leak']) expect(out()).not.toContain(leak);
    expect(out()).toContain('page=2');
    expect(out()).toContain('[Redacted]');
  });

  it('logs a request as its method, its URL with credentials masked and its address, never its headers', () => {
    const { log, out } = capture();
    log.info({ req: { method: 'GET', url: '/x?token=t1', ip: '10.0.0.1', headers: { authorization: 'Bearer h1', 'x-custom': 'c1' } } }, 'request');
    expect(JSON.parse(out()).req).toEqual({ method: 'GET', url: '/x?token=[Redacted]', remoteAddress: '10.0.0.1' });
  });

  it('censors a secret at every path the redaction lists, even when a serializer lets the headers through', () => {
    // The `req` serializer drops headers; a child whose own serializer keeps them (as Fastify's
    // default one would) must still not print the credentials the redaction names.
    const { log, out } = capture();
    const child = log.child({}, { serializers: { req: (r: unknown) => r } });
    REDACT_PATHS.forEach((path, i) => child.info(atPath(path, `secret-${i}-value`), path));
    const lines = out().trimEnd().split('\n');
    expect(lines).toHaveLength(REDACT_PATHS.length);
    REDACT_PATHS.forEach((path, i) => {
      expect(lines[i], path).not.toContain(`secret-${i}-value`);
      expect(lines[i], path).toContain('[Redacted]');
    });
  });

  it('censors secrets by name at any depth, in arrays and in errors', () => {
    const { log, out } = capture();
    log.info({ a: { b: { password: 'deep-pw-1' } } }, 'two levels');
    log.info({ l1: { l2: { l3: { token: 'deep-tk-1', authorization: 'Basic ZGVlcC1hdXRo', clientSecret: 'deep-cs-1', other: 'kept-1' } } } }, 'three levels');
    log.info({ links: [{ name: 'Jira', outgoing: { basic: { username: 'svc', password: 'deep-pw-2' } } }] }, 'in an array');
    log.info({ detail: { sent: { headers: { Authorization: 'Bearer deep-bearer-1', Cookie: 'deep-cookie-1' } } } }, 'header names in any case');
    log.info({ secrets: { anything: 'deep-secret-1' }, nested: { x: { secrets: ['deep-secret-2'] } } }, 'whole values');
    const failure = Object.assign(new Error('refused'), { config: { client: { clientSecret: 'err-cs-1' } }, request: { headers: { authorization: 'Bearer err-bearer-1' } } });
    log.error({ err: failure }, 'an error with secrets in its properties');
    log.error({ err: new Error('outer', { cause: { token: 'cause-tk-1', attempt: { password: 'cause-pw-1' } } }) }, 'an error with a plain cause');
    log.error({ err: Object.assign(new Error('outer'), { cause: { token: 'cause-tk-2', attempt: { password: 'cause-pw-2' } } }) }, 'an error with an enumerable cause');
    log.error({ err: new AggregateError([Object.assign(new Error('one'), { token: 'agg-tk-1' })], 'many') }, 'errors in an error');
    log.warn({ failures: [Object.assign(new Error('nested'), { response: { headers: { 'set-cookie': 'nested-cookie-1' } } })] }, 'an error below the top');
    const text = out();
    for (const leak of ['deep-pw-1', 'deep-tk-1', 'ZGVlcC1hdXRo', 'deep-cs-1', 'deep-pw-2', 'deep-bearer-1', 'deep-cookie-1', 'deep-secret-1', 'deep-secret-2', 'err-cs-1', 'err-bearer-1', 'cause-tk-1', 'cause-pw-1', 'cause-tk-2', 'cause-pw-2', 'agg-tk-1', 'nested-cookie-1']) {
      expect(text, leak).not.toContain(leak);
    }
    // What is not a secret stays readable.
    const [, three, inArray] = text.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, never>);
    expect(three!.l1).toEqual({ l2: { l3: { token: '[Redacted]', authorization: '[Redacted]', clientSecret: '[Redacted]', other: 'kept-1' } } });
    expect(inArray!.links).toEqual([{ name: 'Jira', outgoing: { basic: { username: 'svc', password: '[Redacted]' } } }]);
  });

  it('prints nothing nested past the depth it looks to, and a cycle once', () => {
    const { log, out } = capture();
    let deep: Record<string, unknown> = { password: 'too-deep-pw' };
    for (let i = 0; i < 12; i++) deep = { down: deep };
    const cyclic: Record<string, unknown> = { name: 'loop', inner: { token: 'cyclic-tk' } };
    (cyclic.inner as Record<string, unknown>).up = cyclic;
    log.info({ deep, cyclic }, 'shapes');
    expect(out()).not.toContain('too-deep-pw');
    expect(out()).not.toContain('cyclic-tk');
    expect(out()).toContain('[Too deep]');
    expect(JSON.parse(out()).cyclic).toEqual({ name: 'loop', inner: { token: '[Redacted]', up: '[Circular]' } });
  });

  it('masks applinks tokens in any text: an error message, its cause, its stack, the log message', () => {
    const { log, out } = capture();
    const prefixes = [API_TOKEN_PREFIX, SESSION_PREFIX, OAUTH2_ACCESS, REFRESH_TOKEN_PREFIX, CODE_PREFIX, CLIENT_SECRET_PREFIX, OAUTH1_REQUEST, OAUTH1_ACCESS, OAUTH1_SESSION];
    const tokens = prefixes.map((p, i) => `${p}Zm9vYmFy${i}xAbC-_dEf0123456789abcdef`);
    const [api, session, access, refresh, code, ...others] = tokens;
    log.error({ err: new Error(`invalid input syntax for type uuid: "${api!}"`) }, 'query failed');
    log.error({ err: new Error('exchange failed', { cause: new Error(`code ${code!} was used`) }) }, 'wrapped');
    log.error(new Error(`refresh ${refresh!} refused`)); // pino takes the message from the error
    log.warn({ detail: `session ${session!}`, list: [access] }, `tried ${others.join(' ')}`);
    const text = out();
    for (const token of tokens) expect(text, token.slice(0, 6)).not.toContain(token.slice(6, 20));
    for (const prefix of prefixes) expect(text).toContain(`${prefix}[Redacted]`);
    expect(text).toContain('invalid input syntax for type uuid');
  });

  it('keeps a line without secrets as it was', () => {
    const { log, out } = capture();
    const plain = { user: 'alice', auth: 'api-token', res: { statusCode: 200 }, nested: { a: [1, { b: 'c' }], at: new Date(0) }, responseTime: 1.5 };
    log.info(plain, 'gateway request');
    const line = JSON.parse(out()) as Record<string, unknown>;
    expect(line).toMatchObject({ ...plain, nested: { a: [1, { b: 'c' }], at: '1970-01-01T00:00:00.000Z' }, msg: 'gateway request' });
  });

  it('masks credential-bearing query values but keeps the rest of the URL', () => {
    expect(redactUrl('/a?code=abc&state=xyz&jwt=eyJ')).toBe('/a?code=[Redacted]&state=xyz&jwt=[Redacted]');
    expect(redactUrl('/plain')).toBe('/plain');
    expect(redactUrl('/login.jsp?os_username=a&os_password=hunter2&client_assertion=x')).toBe('/login.jsp?os_username=a&os_password=[Redacted]&client_assertion=[Redacted]');
    expect(redactUrl('/a?%74oken=x')).toBe('/a?%74oken=[Redacted]');
  });
});
