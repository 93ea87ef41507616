import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors/index.js';
import { formEncode, parseClientAuthentication } from '../../src/protocols/oauth2/client-auth.js';
import { authorizationCodeLocation, authorizationErrorLocation, bearerChallenge, errorDescription, tokenErrorBody } from '../../src/protocols/oauth2/errors.js';
import { authorizationServerMetadata } from '../../src/protocols/oauth2/metadata.js';
import { OAuthParams } from '../../src/protocols/oauth2/params.js';
import { checkCodeChallenge, checkCodeVerifier, s256Challenge } from '../../src/protocols/oauth2/pkce.js';
import { checkRedirectUriRegistration, isLoopbackRedirect, matchRedirectUri, resolveRedirectUri } from '../../src/protocols/oauth2/redirect-uri.js';
import { capForUser, closure, covers, formatScope, parseScope } from '../../src/protocols/oauth2/scopes.js';

const code = (fn: () => unknown) => {
  try {
    fn();
  } catch (error) {
    if (error instanceof AppError) return error.code;
    throw error;
  }
  return 'no error';
};

describe('PKCE (RFC 7636)', () => {
  // RFC 7636 Appendix B.
  const verifier = 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk';
  const challenge = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';

  it('computes the Appendix B challenge and accepts its verifier', () => {
    expect(s256Challenge(verifier)).toBe(challenge);
    expect(() => checkCodeVerifier(verifier, { challenge, method: 'S256' })).not.toThrow();
  });

  it('refuses a wrong, missing, malformed or unexpected verifier with invalid_grant', () => {
    expect(code(() => checkCodeVerifier(verifier.slice(0, -1) + 'j', { challenge, method: 'S256' }))).toBe('oauth2_invalid_grant');
    expect(code(() => checkCodeVerifier(undefined, { challenge, method: 'S256' }))).toBe('oauth2_invalid_grant');
    expect(code(() => checkCodeVerifier('short', { challenge, method: 'S256' }))).toBe('oauth2_invalid_grant');
    expect(code(() => checkCodeVerifier(verifier, null))).toBe('oauth2_invalid_grant');
    expect(() => checkCodeVerifier(undefined, null)).not.toThrow();
  });

  it('accepts only S256 challenges, refuses plain and an absent method', () => {
    expect(checkCodeChallenge(challenge, 'S256', true)).toEqual({ challenge, method: 'S256' });
    expect(code(() => checkCodeChallenge(challenge, 'plain', false))).toBe('oauth2_invalid_request');
    expect(code(() => checkCodeChallenge(challenge, undefined, false))).toBe('oauth2_invalid_request');
    expect(code(() => checkCodeChallenge(challenge, 'S512', false))).toBe('oauth2_invalid_request');
    expect(code(() => checkCodeChallenge('tooshort', 'S256', false))).toBe('oauth2_invalid_request');
    expect(code(() => checkCodeChallenge(undefined, 'S256', false))).toBe('oauth2_invalid_request');
    expect(code(() => checkCodeChallenge(undefined, undefined, true))).toBe('oauth2_invalid_request');
    expect(checkCodeChallenge(undefined, undefined, false)).toBeUndefined();
  });
});

describe('scopes', () => {
  it('parses case-insensitively, dedupes, orders by the hierarchy', () => {
    expect(parseScope('write READ read')).toEqual(['READ', 'WRITE']);
    expect(parseScope('  ')).toBeUndefined();
    expect(parseScope(undefined)).toBeUndefined();
    expect(code(() => parseScope('READ openid'))).toBe('oauth2_invalid_scope');
  });

  it('knows that each scope includes the ones before it', () => {
    expect(closure(['ADMIN'])).toEqual(['READ', 'WRITE', 'ADMIN']);
    expect(closure([])).toEqual([]);
    expect(covers(['WRITE'], ['READ', 'WRITE'])).toBe(true);
    expect(covers(['WRITE'], ['ADMIN'])).toBe(false);
    expect(covers(['SYSTEM_ADMIN'], ['ADMIN'])).toBe(true);
  });

  it('never grants a non-administrator more than WRITE', () => {
    expect(capForUser(['READ', 'ADMIN'], false)).toEqual(['READ', 'WRITE']);
    expect(capForUser(['SYSTEM_ADMIN'], false)).toEqual(['WRITE']);
    expect(capForUser(['SYSTEM_ADMIN'], true)).toEqual(['SYSTEM_ADMIN']);
    expect(formatScope(['WRITE', 'READ'])).toBe('READ WRITE');
  });
});

describe('redirect URIs (RFC 6749 §3.1.2, RFC 8252 §7.3)', () => {
  const rules = { dangerouslyAllowHttp: false };

  it('registers https URIs and loopback http URIs only', () => {
    expect(checkRedirectUriRegistration('https://app.example/cb?x=1', rules)).toBe('https://app.example/cb?x=1');
    expect(checkRedirectUriRegistration('http://127.0.0.1/cb', rules)).toBe('http://127.0.0.1/cb');
    expect(checkRedirectUriRegistration('http://[::1]:8080/cb', rules)).toBe('http://[::1]:8080/cb');
    for (const bad of ['http://app.example/cb', 'http://localhost/cb', 'https://app.example/cb#frag', 'https://u:p@app.example/cb', 'com.example.app:/cb', 'javascript:alert(1)', '/relative', 'https://app.example/c b', 'https://app.example/cb/€', 'https://app.example/cb/ü', 'https://app.example/\u00a0']) {
      expect(code(() => checkRedirectUriRegistration(bad, rules)), bad).toBe('validation_failed');
    }
    expect(checkRedirectUriRegistration('http://app.example/cb', { dangerouslyAllowHttp: true })).toBe('http://app.example/cb');
  });

  it('matches exactly, one character off is no match, loopback ports may vary', () => {
    const registered = ['https://app.example/callback', 'http://127.0.0.1/cb'];
    expect(matchRedirectUri(registered, 'https://app.example/callback')).toBe('https://app.example/callback');
    expect(matchRedirectUri(registered, 'https://app.example/callbacK')).toBeUndefined();
    expect(matchRedirectUri(registered, 'https://app.example/callback/')).toBeUndefined();
    expect(matchRedirectUri(registered, 'https://APP.example/callback')).toBeUndefined();
    expect(matchRedirectUri(registered, 'https://app.example:443/callback')).toBeUndefined();
    expect(matchRedirectUri(registered, 'http://127.0.0.1:51234/cb')).toBe('http://127.0.0.1:51234/cb');
    expect(matchRedirectUri(registered, 'http://127.0.0.1:51234/cB')).toBeUndefined();
    expect(matchRedirectUri(registered, 'http://127.0.0.1:99999/cb')).toBeUndefined();
    expect(matchRedirectUri(registered, 'http://[::1]:5000/cb')).toBeUndefined();
    expect(isLoopbackRedirect('http://127.0.0.1.evil.example/cb')).toBe(false);
  });

  it('uses the only registered URI when none is sent, and requires one when there are several', () => {
    expect(resolveRedirectUri(['https://a.example/cb'], undefined)).toBe('https://a.example/cb');
    expect(code(() => resolveRedirectUri(['https://a.example/cb', 'https://b.example/cb'], undefined))).toBe('oauth2_invalid_request');
    expect(code(() => resolveRedirectUri(['https://a.example/cb'], 'https://a.example/cb2'))).toBe('oauth2_invalid_request');
    expect(code(() => resolveRedirectUri([], undefined))).toBe('oauth2_invalid_request');
    // Stored before registrations were held to URI characters: refused, never put in a Location.
    expect(code(() => resolveRedirectUri(['https://a.example/cb/€'], undefined))).toBe('oauth2_invalid_request');
    expect(code(() => resolveRedirectUri(['https://a.example/cb/€'], 'https://a.example/cb/€'))).toBe('oauth2_invalid_request');
    expect(checkRedirectUriRegistration('https://a.example/cb/%E2%82%AC', { dangerouslyAllowHttp: false })).toBe('https://a.example/cb/%E2%82%AC');
  });
});

describe('client authentication (RFC 6749 §2.3)', () => {
  const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${formEncode(id)}:${formEncode(secret)}`).toString('base64')}`;
  const params = (s: string) => new OAuthParams(new URLSearchParams(s));

  it('decodes client_secret_basic with form-encoded id and secret (§2.3.1)', () => {
    const id = 'client id+:%é';
    const secret = 'sec ret:+%/=';
    expect(formEncode(secret)).toBe('sec+ret%3A%2B%25%2F%3D');
    expect(parseClientAuthentication(basic(id, secret), params(''))).toEqual({ method: 'client_secret_basic', clientId: id, clientSecret: secret });
    // A client that does not form-encode plain values is read the same way.
    expect(parseClientAuthentication(`Basic ${Buffer.from('abc:def').toString('base64')}`, params(''))).toEqual({ method: 'client_secret_basic', clientId: 'abc', clientSecret: 'def' });
  });

  it('reads client_secret_post and a public client_id', () => {
    expect(parseClientAuthentication(undefined, params('client_id=a&client_secret=b'))).toEqual({ method: 'client_secret_post', clientId: 'a', clientSecret: 'b' });
    expect(parseClientAuthentication(undefined, params('client_id=a'))).toEqual({ method: 'none', clientId: 'a' });
    expect(parseClientAuthentication(undefined, params(''))).toBeUndefined();
    expect(parseClientAuthentication('Bearer xyz', params('client_id=a'))).toEqual({ method: 'none', clientId: 'a' });
  });

  it('refuses two methods at once, mismatched ids, malformed Basic and repeated parameters', () => {
    expect(code(() => parseClientAuthentication(basic('a', 'b'), params('client_secret=b')))).toBe('oauth2_invalid_request');
    expect(code(() => parseClientAuthentication(basic('a', 'b'), params('client_id=c')))).toBe('oauth2_invalid_request');
    expect(parseClientAuthentication(basic('a', 'b'), params('client_id=a'))).toMatchObject({ method: 'client_secret_basic', clientId: 'a' });
    expect(code(() => parseClientAuthentication('Basic !!!', params('')))).toBe('oauth2_invalid_client');
    expect(code(() => parseClientAuthentication(`Basic ${Buffer.from('%zz:b').toString('base64')}`, params('')))).toBe('oauth2_invalid_client');
    expect(code(() => parseClientAuthentication(undefined, params('client_secret=b')))).toBe('oauth2_invalid_request');
    expect(code(() => parseClientAuthentication(undefined, params('client_id=a&client_id=b')))).toBe('oauth2_invalid_request');
  });
});

describe('parameters (RFC 6749 §3.1)', () => {
  it('treats empty values as absent and refuses repeated ones', () => {
    const p = new OAuthParams(new URLSearchParams('a=&b=1&c=2&c=3'));
    expect(p.get('a')).toBeUndefined();
    expect(p.get('b')).toBe('1');
    expect(code(() => p.get('c'))).toBe('oauth2_invalid_request');
    expect(code(() => p.require('a'))).toBe('oauth2_invalid_request');
    expect(code(() => p.rejectRepeated())).toBe('oauth2_invalid_request');
  });
});

describe('error rendering', () => {
  it('keeps descriptions inside the RFC 6749 §5.2 character set', () => {
    expect(errorDescription('bad "value" \\ é\n')).toBe("bad 'value' '");
    expect(tokenErrorBody('invalid_grant', 'Code used')).toEqual({ error: 'invalid_grant', error_description: 'Code used' });
    expect(tokenErrorBody('invalid_grant', undefined)).toEqual({ error: 'invalid_grant' });
  });

  it('redirects errors with state and iss, keeping the registered query (§4.1.2.1, RFC 9207)', () => {
    expect(authorizationErrorLocation('https://c.example/cb?x=1', { error: 'access_denied', description: 'User said no', state: 'a b&c', iss: 'https://as.example' })).toBe(
      'https://c.example/cb?x=1&error=access_denied&error_description=User%20said%20no&state=a%20b%26c&iss=https%3A%2F%2Fas.example',
    );
    expect(authorizationCodeLocation('https://c.example/cb', { code: 'alac_x', iss: 'https://as.example' })).toBe('https://c.example/cb?code=alac_x&iss=https%3A%2F%2Fas.example');
  });

  it('builds RFC 6750 §3 challenges', () => {
    expect(bearerChallenge({ realm: 'applinks', error: 'invalid_token', description: 'The access token expired' })).toBe(
      'Bearer realm="applinks", error="invalid_token", error_description="The access token expired"',
    );
    expect(bearerChallenge({ realm: 'applinks', error: 'insufficient_scope', scope: 'WRITE' })).toBe('Bearer realm="applinks", error="insufficient_scope", scope="WRITE"');
  });
});

describe('metadata (RFC 8414)', () => {
  it('names every endpoint and capability', () => {
    const m = authorizationServerMetadata('https://as.example', 'https://as.example');
    expect(m).toMatchObject({
      issuer: 'https://as.example',
      authorization_endpoint: 'https://as.example/rest/oauth2/latest/authorize',
      token_endpoint: 'https://as.example/rest/oauth2/latest/token',
      revocation_endpoint: 'https://as.example/rest/oauth2/latest/revoke',
      introspection_endpoint: 'https://as.example/rest/oauth2/latest/introspect',
      code_challenge_methods_supported: ['S256'],
      response_types_supported: ['code'],
      authorization_response_iss_parameter_supported: true,
    });
    expect(m.grant_types_supported).not.toContain('implicit');
    expect(m.grant_types_supported).not.toContain('password');
  });
});
