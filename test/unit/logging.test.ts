import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, redactUrl } from '../../src/server/logger.js';

describe('log redaction', () => {
  it('censors credentials wherever they appear', () => {
    const lines: string[] = [];
    const sink = new Writable({ write: (c: Buffer, _e, done) => (lines.push(c.toString()), done()) });
    const log = createLogger({ logLevel: 'info' }, sink);
    log.info(
      {
        req: { method: 'GET', url: '/x?access_token=tok-123&page=2&oauth_signature=sig-456', headers: { authorization: 'Bearer alpat_leak', cookie: 'applinks_session=alses_leak' } },
        password: 'pw-leak',
        config: { clientSecret: 'cs-leak', sharedSecret: 'ss-leak', token: 'tk-leak' },
        authorization: 'Basic leak==',
      },
      'request',
    );
    const out = lines.join('');
    for (const leak of ['tok-123', 'sig-456', 'alpat_leak', 'alses_leak', 'pw-leak', 'cs-leak', 'ss-leak', 'tk-leak', 'Basic leak']) expect(out).not.toContain(leak);
    expect(out).toContain('page=2');
    expect(out).toContain('[Redacted]');
  });

  it('masks credential-bearing query values but keeps the rest of the URL', () => {
    expect(redactUrl('/a?code=abc&state=xyz&jwt=eyJ')).toBe('/a?code=[Redacted]&state=xyz&jwt=[Redacted]');
    expect(redactUrl('/plain')).toBe('/plain');
    expect(redactUrl('/login.jsp?os_username=a&os_password=hunter2&client_assertion=x')).toBe('/login.jsp?os_username=a&os_password=[Redacted]&client_assertion=[Redacted]');
    expect(redactUrl('/a?%74oken=x')).toBe('/a?%74oken=[Redacted]');
  });
});
