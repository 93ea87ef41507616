import { createHmac, createPrivateKey, generateKeyPairSync } from 'node:crypto';
import OAuth from 'oauth-1.0a';
import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors/index.js';
import { authorizationHeader, parseTokenResponse, problemOf } from '../../src/protocols/oauth1/client.js';
import { appendParameters, formEncodeOAuth, percentDecode, percentEncode } from '../../src/protocols/oauth1/encoding.js';
import { collectParameters, MalformedOAuth, parseAuthorizationHeader } from '../../src/protocols/oauth1/parameters.js';
import { oauthProblem } from '../../src/protocols/oauth1/problems.js';
import { baseStringUri, hmacKeyObject, normalizeParameters, parseRsaPublicKey, signatureBaseString, signBaseString, verifySignature } from '../../src/protocols/oauth1/signature.js';
import { checkProtocolParameters, checkSignature } from '../../src/protocols/oauth1/validate.js';

const problem = (fn: () => unknown) => {
  try {
    fn();
  } catch (error) {
    if (error instanceof AppError) return error.params.oauth_problem ?? error.code;
    throw error;
  }
  return 'no error';
};

// The test cases of http://wiki.oauth.net/TestCases (as reproduced by liboauth's selftest.c).
const WIKI_RSA_PRIVATE_KEY = `-----BEGIN PRIVATE KEY-----
MIICdgIBADANBgkqhkiG9w0BAQEFAASCAmAwggJcAgEAAoGBALRiMLAh9iimur8V
A7qVvdqxevEuUkW4K+2KdMXmnQbG9Aa7k7eBjK1S+0LYmVjPKlJGNXHDGuy5Fw/d
7rjVJ0BLB+ubPK8iA/Tw3hLQgXMRRGRXXCn8ikfuQfjUS1uZSatdLB81mydBETlJ
hI6GH4twrbDJCR2Bwy/XWXgqgGRzAgMBAAECgYBYWVtleUzavkbrPjy0T5FMou8H
X9u2AC2ry8vD/l7cqedtwMPp9k7TubgNFo+NGvKsl2ynyprOZR1xjQ7WgrgVB+mm
uScOM/5HVceFuGRDhYTCObE+y1kxRloNYXnx3ei1zbeYLPCHdhxRYW7T0qcynNmw
rn05/KO2RLjgQNalsQJBANeA3Q4Nugqy4QBUCEC09SqylT2K9FrrItqL2QKc9v0Z
zO2uwllCbg0dwpVuYPYXYvikNHHg+aCWF+VXsb9rpPsCQQDWR9TT4ORdzoj+Nccn
qkMsDmzt0EfNaAOwHOmVJ2RVBspPcxt5iN4HI7HNeG6U5YsFBb+/GZbgfBT3kpNG
WPTpAkBI+gFhjfJvRw38n3g/+UeAkwMI2TJQS4n8+hid0uus3/zOjDySH3XHCUno
cn1xOJAyZODBo47E+67R4jV1/gzbAkEAklJaspRPXP877NssM5nAZMU0/O/NGCZ+
3jPgDUno6WbJn5cqm8MqWhW1xGkImgRk+fkDBquiq4gPiT898jusgQJAd5Zrr6Q8
AO/0isr/3aa6O6NLQxISLKcPDk2NOccAfS/xOtfOz4sJYM3+Bs4Io9+dZGSDCA54
Lw03eHTNQghS0A==
-----END PRIVATE KEY-----`;
const WIKI_RSA_CERTIFICATE = `-----BEGIN CERTIFICATE-----
MIIBpjCCAQ+gAwIBAgIBATANBgkqhkiG9w0BAQUFADAZMRcwFQYDVQQDDA5UZXN0
IFByaW5jaXBhbDAeFw03MDAxMDEwODAwMDBaFw0zODEyMzEwODAwMDBaMBkxFzAV
BgNVBAMMDlRlc3QgUHJpbmNpcGFsMIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKB
gQC0YjCwIfYoprq/FQO6lb3asXrxLlJFuCvtinTF5p0GxvQGu5O3gYytUvtC2JlY
zypSRjVxwxrsuRcP3e641SdASwfrmzyvIgP08N4S0IFzEURkV1wp/IpH7kH41Etb
mUmrXSwfNZsnQRE5SYSOhh+LcK2wyQkdgcMv11l4KoBkcwIDAQABMA0GCSqGSIb3
DQEBBQUAA4GBAGZLPEuJ5SiJ2ryq+CmEGOXfvlTtEL2nuGtr9PewxkgnOjZpUy+d
4TvuXJbNQc8f4AMWL/tO9w0Fk80rWKp9ea8/df4qMq5qlFWlx6yOLQxumNOmECKb
WpkUQDIDJEoFUzKMVuJf4KO/FJ345+BNLGgbJ6WujreoM1X/gYfdnJ/J
-----END CERTIFICATE-----`;
const WIKI_RSA_BASE_STRING =
  'GET&http%3A%2F%2Fphotos.example.net%2Fphotos&file%3Dvacaction.jpg%26oauth_consumer_key%3Ddpf43f3p2l4k3l03%26oauth_nonce%3D13917289812797014437%26oauth_signature_method%3DRSA-SHA1%26oauth_timestamp%3D1196666512%26oauth_version%3D1.0%26size%3Doriginal';
const WIKI_RSA_SIGNATURE =
  'jvTp/wX1TYtByB1m+Pbyo0lnCOLIsyGCH7wke8AUs3BpnwZJtAuEJkvQL2/9n4s5wUmUl4aCI4BwpraNx4RtEXMe5qg5T1LVTGliMRpKasKsW//e+RinhejgCuzoH26dyF8iY2ZZ/5D1ilgeijhV/vBka5twt399mXwaYdCwFYE=';

describe('percent-encoding (RFC 5849 §3.6, wiki.oauth.net TestCases)', () => {
  it.each([
    ['abcABC123', 'abcABC123'],
    ['-._~', '-._~'],
    ['%', '%25'],
    ['+', '%2B'],
    ['&=*', '%26%3D%2A'],
    ['\u000A', '%0A'],
    ['\u0020', '%20'],
    ['\u007F', '%7F'],
    ['\u0080', '%C2%80'],
    ['\u3001', '%E3%80%81'],
    ["!'()", '%21%27%28%29'],
    ['\u{1F600}', '%F0%9F%98%80'],
  ])('encodes %j as %s and decodes it back', (plain, encoded) => {
    expect(percentEncode(plain)).toBe(encoded);
    expect(percentDecode(encoded)).toBe(plain);
  });

  it('refuses text without a UTF-8 form and malformed escapes', () => {
    expect(() => percentEncode('\uD800')).toThrow(/Unicode/);
    expect(() => percentDecode('%E3%80')).toThrow(/percent/);
  });

  it('appends to a URL without touching what it holds', () => {
    expect(appendParameters('https://c.example/cb?state=a%20b&flag&sig=x%2Fy~', { oauth_token: 't', oauth_verifier: 'v w' })).toBe(
      'https://c.example/cb?state=a%20b&flag&sig=x%2Fy~&oauth_token=t&oauth_verifier=v%20w',
    );
    expect(appendParameters('https://c.example/cb', { a: '1' })).toBe('https://c.example/cb?a=1');
    expect(appendParameters('https://c.example/cb?#top', { a: '1' })).toBe('https://c.example/cb?a=1#top');
  });

  it('form-encodes responses with %20, never +', () => {
    expect(formEncodeOAuth([['oauth_problem_advice', 'a b+c'], ['x', '&']])).toBe('oauth_problem_advice=a%20b%2Bc&x=%26');
  });
});

describe('the signature base string (RFC 5849 §3.4.1)', () => {
  it.each([
    ['name', 'name='],
    ['a=b', 'a=b'],
    ['a=b&c=d', 'a=b&c=d'],
    ['a=x!y&a=x+y', 'a=x%20y&a=x%21y'],
    ['x!y=a&x=a', 'x=a&x%21y=a'],
  ])('normalizes %s as %s (wiki TestCases)', (query, normalized) => {
    expect(normalizeParameters(new URLSearchParams(query))).toBe(normalized);
  });

  it('sorts by encoded name before value, so a name that prefixes another comes first', () => {
    expect(normalizeParameters([['a-b', '1'], ['a', '2']])).toBe('a=2&a-b=1');
  });

  it.each([
    ['http://EXAMPLE.COM:80/r%20v/X?id=123', 'http://example.com/r%20v/X'],
    ['https://www.example.net:8080/?q=1', 'https://www.example.net:8080/'],
    ['https://example.com:443/a', 'https://example.com/a'],
    ['http://example.com', 'http://example.com/'],
    ['http://example.com:8080#frag', 'http://example.com:8080/'],
  ])('builds the base string URI of %s as %s (§3.4.1.2)', (url, expected) => {
    expect(baseStringUri(url)).toBe(expected);
  });

  it('reproduces the §3.4.1 example: query, header and form body merged, duplicates kept, realm and signature left out', () => {
    const message = collectParameters({
      authorization:
        'OAuth realm="Example", oauth_consumer_key="9djdj82h48djs9d2", oauth_token="kkk9d7dh3k39sjv7", oauth_signature_method="HMAC-SHA1", oauth_timestamp="137131201", oauth_nonce="7d8f3e4a", oauth_signature="bYT5CMsGcbgUdFHObYMEfcx6bsw%3D"',
      query: 'b5=%3D%253D&a3=a&c%40=&a2=r%20b',
      form: new URLSearchParams('c2&a3=2+q'),
    });
    expect(message.realm).toBe('Example');
    expect(signatureBaseString('POST', 'http://example.com/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b', message.pairs)).toBe(
      'POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q%26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk9d7dh3k39sjv7',
    );
  });

  it.each([
    ['GET', 'http://example.com/?n=v', 'GET&http%3A%2F%2Fexample.com%2F&n%3Dv'],
    ['GET', 'http://example.com?n=v', 'GET&http%3A%2F%2Fexample.com%2F&n%3Dv'],
    [
      'POST',
      'https://photos.example.net/request_token?oauth_version=1.0&oauth_consumer_key=dpf43f3p2l4k3l03&oauth_timestamp=1191242090&oauth_nonce=hsu94j3884jdopsl&oauth_signature_method=PLAINTEXT&oauth_signature=ignored',
      'POST&https%3A%2F%2Fphotos.example.net%2Frequest_token&oauth_consumer_key%3Ddpf43f3p2l4k3l03%26oauth_nonce%3Dhsu94j3884jdopsl%26oauth_signature_method%3DPLAINTEXT%26oauth_timestamp%3D1191242090%26oauth_version%3D1.0',
    ],
  ])('builds the wiki TestCases base string of %s %s', (method, url, expected) => {
    const message = collectParameters({ authorization: undefined, query: url.split('?')[1] ?? '', form: undefined });
    expect(signatureBaseString(method, url, message.pairs)).toBe(expected);
  });
});

describe('signature methods', () => {
  it.each([
    ['cs', '', 'bs', 'egQqG5AJep5sJ7anhXju1unge2I='],
    ['cs', 'ts', 'bs', 'VZVjXceV7JgPq/dOTnNmEfO0Fv8='],
    [
      'kd94hf93k423kf44',
      'pfkkdhi9sl3r4s00',
      'GET&http%3A%2F%2Fphotos.example.net%2Fphotos&file%3Dvacation.jpg%26oauth_consumer_key%3Ddpf43f3p2l4k3l03%26oauth_nonce%3Dkllo9940pd9333jh%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D1191242096%26oauth_token%3Dnnch734d00sl2jdk%26oauth_version%3D1.0%26size%3Doriginal',
      'tR3+Ty81lMeYAr/Fid0kMTYa/WM=',
    ],
  ])('HMAC-SHA1 with secrets %s & %s (wiki TestCases)', (consumerSecret, tokenSecret, baseString, signature) => {
    expect(signBaseString('HMAC-SHA1', baseString, { consumerSecret, tokenSecret })).toBe(signature);
    expect(signBaseString('HMAC-SHA1', baseString, { hmacKey: hmacKeyObject(consumerSecret, tokenSecret) })).toBe(signature);
    expect(verifySignature('HMAC-SHA1', baseString, signature, { consumerSecret, tokenSecret })).toBe(true);
    expect(verifySignature('HMAC-SHA1', baseString, signature.replace(/.$/, 'A'), { consumerSecret, tokenSecret })).toBe(false);
  });

  it('verifies the RFC 5849 §1.2 photos request exactly as it arrives', () => {
    const message = collectParameters({
      authorization:
        'OAuth realm="Photos", oauth_consumer_key="dpf43f3p2l4k3l03", oauth_token="nnch734d00sl2jdk", oauth_signature_method="HMAC-SHA1", oauth_timestamp="137131202", oauth_nonce="chapoH", oauth_signature="MdpQcU8iPSUjWoN%2FUDMsK2sui9I%3D"',
      query: 'file=vacation.jpg&size=original',
      form: undefined,
    });
    const p = checkProtocolParameters(message, { now: 137131202_000, windowSeconds: 300, realm: 'Photos' });
    expect(p.signature).toBe('MdpQcU8iPSUjWoN/UDMsK2sui9I=');
    expect(() =>
      checkSignature({ method: 'GET', url: 'http://photos.example.net/photos?file=vacation.jpg&size=original' }, p, { consumerSecret: 'kd94hf93k423kf44', tokenSecret: 'pfkkdhi9sl3r4s00' }, { realm: 'Photos', debug: false }),
    ).not.toThrow();
    expect(
      problem(() =>
        checkSignature({ method: 'GET', url: 'http://photos.example.net/photo?file=vacation.jpg&size=original' }, p, { consumerSecret: 'kd94hf93k423kf44', tokenSecret: 'pfkkdhi9sl3r4s00' }, { realm: 'Photos', debug: false }),
      ),
    ).toBe('signature_invalid');
  });

  // The two requests of the §1.2 dance before the photos request: temporary credentials (signed
  // with the client secret alone, over https, with the callback) and token credentials (with the
  // temporary token's secret and the verifier).
  it.each([
    {
      name: '/initiate request',
      url: 'https://photos.example.net/initiate',
      header:
        'OAuth realm="Photos", oauth_consumer_key="dpf43f3p2l4k3l03", oauth_signature_method="HMAC-SHA1", oauth_timestamp="137131200", oauth_nonce="wIjqoS", oauth_callback="http%3A%2F%2Fprinter.example.com%2Fready", oauth_signature="74KNZJeDHnMBp0EMJ9ZHt%2FXKycU%3D"',
      timestamp: 137131200,
      signature: '74KNZJeDHnMBp0EMJ9ZHt/XKycU=',
      tokenSecret: undefined,
      token: undefined,
      extra: ['oauth_callback', 'http://printer.example.com/ready'],
    },
    {
      name: '/token request',
      url: 'https://photos.example.net/token',
      header:
        'OAuth realm="Photos", oauth_consumer_key="dpf43f3p2l4k3l03", oauth_token="hh5s93j4hdidpola", oauth_signature_method="HMAC-SHA1", oauth_timestamp="137131201", oauth_nonce="walatlh", oauth_verifier="hfdp7dh39dks9884", oauth_signature="gKgrFCywp7rO0OXSjdot%2FIHF7IU%3D"',
      timestamp: 137131201,
      signature: 'gKgrFCywp7rO0OXSjdot/IHF7IU=',
      tokenSecret: 'hdhd0244k9j7ao03',
      token: 'hh5s93j4hdidpola',
      extra: ['oauth_verifier', 'hfdp7dh39dks9884'],
    },
  ] as const)('verifies the RFC 5849 §1.2 $name exactly as it arrives', ({ url, header, timestamp, signature, tokenSecret, token, extra }) => {
    const message = collectParameters({ authorization: header, query: '', form: undefined });
    const p = checkProtocolParameters(message, { now: timestamp * 1000, windowSeconds: 300, realm: 'Photos' });
    expect(p.signature).toBe(signature);
    expect(p.token).toBe(token);
    expect(p.get(extra[0])).toBe(extra[1]);
    const secrets = { consumerSecret: 'kd94hf93k423kf44', ...(tokenSecret ? { tokenSecret } : {}) };
    // Our signer computes the RFC's value from the base string we build...
    expect(signBaseString('HMAC-SHA1', signatureBaseString('POST', url, message.pairs), secrets)).toBe(signature);
    // ...and the verifier accepts the request, and only as it was sent: over https, to that URL, with that secret.
    expect(() => checkSignature({ method: 'POST', url }, p, secrets, { realm: 'Photos', debug: false })).not.toThrow();
    expect(problem(() => checkSignature({ method: 'POST', url: url.replace('https:', 'http:') }, p, secrets, { realm: 'Photos', debug: false }))).toBe('signature_invalid');
    expect(problem(() => checkSignature({ method: 'GET', url }, p, secrets, { realm: 'Photos', debug: false }))).toBe('signature_invalid');
    expect(problem(() => checkSignature({ method: 'POST', url }, p, { ...secrets, tokenSecret: 'pfkkdhi9sl3r4s00' }, { realm: 'Photos', debug: false }))).toBe('signature_invalid');
  });

  it('signs and verifies the wiki TestCases RSA-SHA1 example (a certificate as the public key)', () => {
    const privateKey = createPrivateKey(WIKI_RSA_PRIVATE_KEY);
    expect(signBaseString('RSA-SHA1', WIKI_RSA_BASE_STRING, { rsaKey: privateKey })).toBe(WIKI_RSA_SIGNATURE);
    const { key } = parseRsaPublicKey(WIKI_RSA_CERTIFICATE);
    expect(verifySignature('RSA-SHA1', WIKI_RSA_BASE_STRING, WIKI_RSA_SIGNATURE, { rsaKey: key })).toBe(true);
    expect(verifySignature('RSA-SHA1', WIKI_RSA_BASE_STRING.replace('vacaction', 'vacation'), WIKI_RSA_SIGNATURE, { rsaKey: key })).toBe(false);
    expect(verifySignature('RSA-SHA1', WIKI_RSA_BASE_STRING, 'not base64!', { rsaKey: key })).toBe(false);
  });

  it('PLAINTEXT is the encoded secrets joined by & (§3.4.4), HMAC-SHA256 an HMAC over the same key', () => {
    expect(signBaseString('PLAINTEXT', 'ignored', { consumerSecret: 'a b', tokenSecret: '&' })).toBe('a%20b&%26');
    expect(signBaseString('PLAINTEXT', 'ignored', { consumerSecret: 'cs' })).toBe('cs&');
    expect(signBaseString('HMAC-SHA256', 'bs', { consumerSecret: 'cs', tokenSecret: 'ts' })).toBe(createHmac('sha256', 'cs&ts').update('bs').digest('base64'));
  });

  it('reads public keys as administrators paste them and measures them', () => {
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const spki = publicKey.export({ format: 'pem', type: 'spki' }).toString();
    const pkcs1 = publicKey.export({ format: 'pem', type: 'pkcs1' }).toString();
    const bare = publicKey.export({ format: 'der', type: 'spki' }).toString('base64');
    for (const text of [spki, pkcs1, bare, `\n  ${spki}\n`]) expect(parseRsaPublicKey(text)).toMatchObject({ bits: 2048, pem: spki });
    expect(parseRsaPublicKey(WIKI_RSA_CERTIFICATE).bits).toBe(1024);
    expect(() => parseRsaPublicKey(WIKI_RSA_PRIVATE_KEY)).toThrow(/private key/);
    expect(() => parseRsaPublicKey('hello world')).toThrow(TypeError);
    expect(() => parseRsaPublicKey(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'pem', type: 'spki' }).toString())).toThrow(/ec, not RSA/);
  });
});

describe('the Authorization header and the transports', () => {
  it('parses quoted and token values, any spacing, and decodes names and values', () => {
    expect(parseAuthorizationHeader('oauth   a="1",b=2 ,  c="x%20y" , realm="R%26D"')).toEqual({ realm: 'R&D', pairs: [['a', '1'], ['b', '2'], ['c', 'x y']] });
    expect(parseAuthorizationHeader('OAuth')).toEqual({ realm: undefined, pairs: [] });
  });

  it.each(['OAuth a', 'OAuth a="1" b="2"', 'OAuth a="1', 'OAuth a="%zz"', 'OAuth a b="1"', 'OAuth a="\\"x"'])('refuses the malformed header %s', (header) => {
    expect(() => parseAuthorizationHeader(header)).toThrow(MalformedOAuth);
  });

  it('finds protocol parameters repeated across transports and within one', () => {
    const across = collectParameters({ authorization: 'OAuth oauth_nonce="a"', query: 'oauth_nonce=b&x=1&x=2', form: undefined });
    expect(across.repeated).toEqual(['oauth_nonce']);
    expect([...across.transports].sort()).toEqual(['header', 'query']);
    // Ordinary parameters may repeat: they are signed as they are.
    expect(collectParameters({ authorization: undefined, query: 'x=1&x=2&xoauth_requestor_id=a&xoauth_requestor_id=b', form: undefined }).repeated).toEqual(['xoauth_requestor_id']);
  });
});

describe('the checks every request passes (net.oauth SimpleOAuthValidator)', () => {
  const now = 1_700_000_000_000;
  const base = { oauth_consumer_key: 'ck', oauth_signature_method: 'HMAC-SHA1', oauth_signature: 'sig', oauth_timestamp: String(now / 1000), oauth_nonce: 'n1' };
  const check = (params: Record<string, string | undefined>, query = '') => {
    const q = new URLSearchParams(query);
    for (const [k, v] of Object.entries({ ...base, ...params })) if (v !== undefined) q.append(k, v);
    return checkProtocolParameters(collectParameters({ authorization: undefined, query: q.toString(), form: undefined }), { now, windowSeconds: 300, realm: 'https://jira.example.com' });
  };

  it('accepts a complete request and tells 2-legged (empty token) from absent', () => {
    expect(check({}).token).toBeUndefined();
    expect(check({ oauth_token: '' }).token).toBe('');
  });

  it('reports each problem with its parameters as Jira does', () => {
    expect(problem(() => check({}, 'oauth_nonce=again'))).toBe('parameter_rejected');
    expect(problem(() => check({ oauth_version: '2.0' }))).toBe('version_rejected');
    expect(problem(() => check({ oauth_version: '1.1' }))).toBe('version_rejected');
    expect(problem(() => check({ oauth_version: 'one' }))).toBe('version_rejected');
    // net.oauth compares numbers: "1" and "1.00" are version 1.0.
    for (const v of ['1.0', '1', '1.00']) expect(problem(() => check({ oauth_version: v }))).toBe('no error');
    expect(problem(() => check({ oauth_nonce: undefined, oauth_timestamp: undefined }))).toBe('parameter_absent');
    expect(problem(() => check({ oauth_signature_method: 'MD5' }))).toBe('signature_method_rejected');
    expect(problem(() => check({ oauth_timestamp: 'soon' }))).toBe('parameter_rejected');
    expect(problem(() => check({ oauth_timestamp: String(now / 1000 - 301) }))).toBe('timestamp_refused');
    expect(problem(() => check({ oauth_timestamp: String(now / 1000 + 301) }))).toBe('timestamp_refused');
    expect(problem(() => check({ oauth_timestamp: String(now / 1000 + 300) }))).toBe('no error');
    expect(problem(() => check({ oauth_nonce: 'x'.repeat(4097) }))).toBe('parameter_rejected');
    // The RSA-SHA1 signature of a 16,384-bit key (the largest registered) is 2,732 characters.
    expect(problem(() => check({ oauth_signature: 'A'.repeat(2732) }))).toBe('no error');
  });

  it('renders problems in WWW-Authenticate and a form body, with the extra parameters', () => {
    let error: AppError | undefined;
    try {
      check({ oauth_nonce: undefined, oauth_timestamp: undefined });
    } catch (e) {
      error = e as AppError;
    }
    expect(error!.status).toBe(400);
    expect(error!.headers['www-authenticate']).toBe(
      'OAuth realm="https%3A%2F%2Fjira.example.com", oauth_problem="parameter_absent", oauth_parameters_absent="oauth_timestamp%26oauth_nonce", oauth_problem_advice="Missing%3A%20oauth_timestamp%2C%20oauth_nonce."',
    );
    expect(error!.body).toEqual({
      contentType: 'application/x-www-form-urlencoded;charset=UTF-8',
      payload: 'oauth_problem=parameter_absent&oauth_parameters_absent=oauth_timestamp%26oauth_nonce&oauth_problem_advice=Missing%3A%20oauth_timestamp%2C%20oauth_nonce.',
    });
    const refused = (() => {
      try {
        check({ oauth_timestamp: '1' });
      } catch (e) {
        return e as AppError;
      }
      return undefined;
    })();
    expect(refused?.params.oauth_acceptable_timestamps).toBe(`${now / 1000 - 300}-${now / 1000 + 300}`);
    expect(oauthProblem('oauth1_nonce_used', 'r').status).toBe(401);
  });

  it('echoes the base string of a bad signature only in debug mode', () => {
    const p = check({});
    const attempt = (debug: boolean) => {
      try {
        checkSignature({ method: 'GET', url: 'http://h/p' }, p, { consumerSecret: 's' }, { realm: 'r', debug });
      } catch (e) {
        return (e as AppError).params;
      }
      return {};
    };
    expect(attempt(false).oauth_signature_base_string).toBeUndefined();
    expect(attempt(true).oauth_signature_base_string).toMatch(/^GET&http%3A%2F%2Fh%2Fp&/);
  });
});

describe('our client signatures, checked by code nobody here wrote', () => {
  it('agrees with npm oauth-1.0a on an HMAC-SHA1 signature over query and form parameters', () => {
    const oauth = new OAuth({
      consumer: { key: 'consumer key', secret: 'consumer secret' },
      signature_method: 'HMAC-SHA1',
      hash_function: (base, key) => createHmac('sha1', key).update(base).digest('base64'),
    });
    const request = { url: 'https://jira.example.com/rest/api/2/search?jql=project%20%3D%20X&b=1', method: 'POST', data: { comment: 'hello world!', n: '1' } };
    const token = { key: 'token', secret: 'token secret' };
    // oauth-1.0a merges the query into request.data as it signs: read the form first.
    const form = new URLSearchParams(request.data);
    const theirs = oauth.authorize(request, token);
    const ours = authorizationHeader({
      method: 'POST',
      url: request.url,
      consumerKey: 'consumer key',
      token: 'token',
      signatureMethod: 'HMAC-SHA1',
      secrets: { consumerSecret: 'consumer secret', tokenSecret: 'token secret' },
      form,
      nonce: theirs.oauth_nonce,
      timestamp: theirs.oauth_timestamp,
    });
    const parsed = new Map(parseAuthorizationHeader(ours).pairs);
    // oauth-1.0a always adds oauth_version=1.0, as we do.
    expect(parsed.get('oauth_signature')).toBe(theirs.oauth_signature);
  });

  it('signs RSA-SHA1 so that the public key verifies it, and reads token responses and problems', () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const header = authorizationHeader({ method: 'GET', url: 'http://h/x?y=1', consumerKey: 'k', token: '', signatureMethod: 'RSA-SHA1', secrets: { rsaKey: privateKey } });
    const message = collectParameters({ authorization: header, query: 'y=1', form: undefined });
    const p = checkProtocolParameters(message, { now: Date.now(), windowSeconds: 300, realm: 'r' });
    expect(p.token).toBe('');
    expect(() => checkSignature({ method: 'GET', url: 'http://h/x?y=1' }, p, { rsaKey: publicKey }, { realm: 'r', debug: false })).not.toThrow();
    expect(parseTokenResponse('oauth_token=a%20b&oauth_token_secret=c&oauth_token=ignored')).toEqual(new Map([['oauth_token', 'a b'], ['oauth_token_secret', 'c']]));
    expect(problemOf({ 'www-authenticate': 'OAuth realm="x", oauth_problem="token_rejected"' }, '')).toBe('token_rejected');
    expect(problemOf({}, 'oauth_problem=nonce_used')).toBe('nonce_used');
  });
});

describe('reading a remote provider’s problem', () => {
  it('takes oauth_problem from WWW-Authenticate or the body, and survives a malformed escape', () => {
    expect(problemOf({ 'www-authenticate': 'OAuth realm="x", oauth_problem="token_rejected"' }, '')).toBe('token_rejected');
    expect(problemOf({}, 'oauth_problem=nonce_used&oauth_problem_advice=x')).toBe('nonce_used');
    expect(problemOf({ 'www-authenticate': 'OAuth oauth_problem="bad%E0%A4%A"' }, '')).toBe('bad%E0%A4%A');
    expect(problemOf({}, '%%%')).toBeUndefined();
  });
});
