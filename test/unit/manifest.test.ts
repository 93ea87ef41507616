import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { applicationIdFromUrl, buildNumberOf, manifestXml, nameUuidFromBytes, parseManifest, prefersJsonManifest } from '../../src/protocols/applinks/manifest.js';

describe('applinks manifest', () => {
  const m = {
    id: 'a1b2', name: 'A & B <test>', typeId: 'jira', version: '9.12.0', buildNumber: 9012000, applinksVersion: '5.0.0',
    inboundAuthenticationTypes: ['com.atlassian.applinks.api.auth.types.BasicAuthenticationProvider', 'x.Y'], outboundAuthenticationTypes: [],
    publicSignup: false, url: 'https://jira.example.com',
  };

  it('round-trips through XML and JSON', () => {
    const xml = manifestXml(m);
    expect(xml).toContain('<name>A &amp; B &lt;test&gt;</name>');
    expect(parseManifest(xml, 'application/xml')).toMatchObject({ id: 'a1b2', name: 'A & B <test>', typeId: 'jira', buildNumber: 9012000, inboundAuthenticationTypes: m.inboundAuthenticationTypes });
    expect(parseManifest(JSON.stringify(m), 'application/json')).toMatchObject({ id: 'a1b2', typeId: 'jira' });
  });

  it('answers JSON only to an Accept that names it at least as high as XML (RFC 9110 §12.5.1)', () => {
    const cases: Array<[string | undefined, boolean]> = [
      [undefined, false],
      ['', false],
      ['*/*', false],
      ['application/json', true],
      ['Application/JSON; charset=utf-8', true],
      ['application/json, text/plain, */*', true],
      ['application/xml, application/json', true],
      ['application/json;q=0', false],
      ['application/json;q=0.5, application/xml', false],
      ['application/xml;q=0.4, application/json;q=0.9', true],
      ['text/html, application/json;q=0.9, */*;q=0.8', true],
      ['application/json;q=0.2, */*', false],
      ['text/xml', false],
    ];
    for (const [accept, json] of cases) expect([accept, prefersJsonManifest(accept)]).toEqual([accept, json]);
  });

  it('reads third-party manifests: another root element, a single auth type, unknown elements', () => {
    const klonfisch = '<?xml version="1.0"?><application><id>x-1</id><typeId>fecru</typeId><inboundAuthenticationTypes>com.atlassian.applinks.api.auth.types.TrustedAppsAuthenticationProvider</inboundAuthenticationTypes><whatever>1</whatever></application>';
    expect(parseManifest(klonfisch, 'text/xml')).toMatchObject({ id: 'x-1', typeId: 'fecru', inboundAuthenticationTypes: ['com.atlassian.applinks.api.auth.types.TrustedAppsAuthenticationProvider'] });
    expect(() => parseManifest('<html>hi</html>', 'text/html')).toThrow(/no id/);
  });

  it('derives application ids exactly as Java UUID.nameUUIDFromBytes (checked against Python)', () => {
    for (const input of ['https://jira.example.com', 'http://localhost:2990/jira', 'ünïcode']) {
      const python = execFileSync('/usr/bin/python3', ['-c', 'import hashlib,sys,uuid;print(uuid.UUID(bytes=hashlib.md5(sys.argv[1].encode()).digest(), version=3))', input], { encoding: 'utf8' }).trim();
      expect(nameUuidFromBytes(Buffer.from(input, 'utf8'))).toBe(python);
    }
    expect(applicationIdFromUrl('https://jira.example.com/')).toBe(applicationIdFromUrl('https://jira.example.com'));
    expect(buildNumberOf('10.3.15')).toBe(10030015);
    expect(buildNumberOf('snapshot')).toBe(0);
  });
});
