import { EncodingError, percentDecode } from './encoding.js';

/** Where a parameter arrived (RFC 5849 §3.5). */
export type Transport = 'header' | 'body' | 'query';

/**
 * The parameters of one OAuth 1.0a request, collected as RFC 5849 §3.4.1.3.1 says: the query,
 * the `Authorization: OAuth` header without `realm`, and a form-encoded body, every pair kept in
 * order (duplicates too: they are signed), decoded.
 */
export interface OAuthMessage {
  /** Every pair that enters the signature base string (oauth_signature included; the signer drops it). */
  readonly pairs: ReadonlyArray<readonly [string, string]>;
  /** The first value of each protocol parameter (`oauth_*`, `xoauth_requestor_id`). */
  readonly protocol: ReadonlyMap<string, string>;
  /** Protocol parameters that arrived more than once, in any transports: RFC 5849 §3.5 allows one. */
  readonly repeated: readonly string[];
  /** The transports that carried protocol parameters. */
  readonly transports: ReadonlySet<Transport>;
  /** The `realm` of the header, if any (informational; not signed). */
  readonly realm: string | undefined;
}

/** A malformed Authorization header or encoding: the request names OAuth but cannot be read. */
export class MalformedOAuth extends Error {
  override name = 'MalformedOAuth';
}

/** Parameters that may appear once: every `oauth_*` one, and the impersonation parameter. */
export function isProtocolParameter(name: string): boolean {
  return name.startsWith('oauth_') || name === 'xoauth_requestor_id';
}

const SCHEME = /^oauth(?:\s+|$)/i;
/** One `name="value"` (or RFC 2617 token value) and its separator, read where the last one ended. */
const PAIR = /[ \t]*([A-Za-z0-9!#$%&'*+\-.^_`|~]+)[ \t]*=[ \t]*(?:"([^"\\]*)"|([^\s,"\\]*))[ \t]*(?:,|$)/y;

/** True when an Authorization header uses the OAuth scheme (case-insensitive, RFC 5849 §3.5.1). */
export function isOAuthAuthorization(header: string | undefined): header is string {
  return header !== undefined && SCHEME.test(header);
}

/**
 * Parses `Authorization: OAuth realm="…", name="value", …` (RFC 5849 §3.5.1, RFC 2617 syntax):
 * names and values percent-decoded, `realm` returned apart. Unquoted values are accepted as
 * RFC 2617 tokens. Throws MalformedOAuth for anything else.
 */
export function parseAuthorizationHeader(header: string): { realm: string | undefined; pairs: Array<[string, string]> } {
  const match = SCHEME.exec(header);
  if (!match) throw new MalformedOAuth('not the OAuth scheme');
  const pairs: Array<[string, string]> = [];
  let realm: string | undefined;
  const n = header.length;
  PAIR.lastIndex = match[0].length;
  while (PAIR.lastIndex < n) {
    const m = PAIR.exec(header);
    // OAuth values are percent-encoded, so a backslash escape never appears in a valid header.
    if (!m) throw new MalformedOAuth('parameters must be name="value" pairs separated by commas');
    try {
      const name = percentDecode(m[1]!);
      const value = percentDecode(m[2] ?? m[3]!);
      if (name === 'realm') realm = value;
      else pairs.push([name, value]);
    } catch (error) {
      throw new MalformedOAuth(error instanceof EncodingError ? error.message : 'malformed parameter');
    }
    if (m[0].length === 0) break;
  }
  return { realm, pairs };
}

/**
 * Collects a request's parameters from its transports (RFC 5849 §3.4.1.3.1). `query` is the
 * raw query string without `?`; `form` the parsed body when it is form-encoded (§3.5.2's
 * conditions hold), else undefined. Query and body are form-decoded (`+` is a space).
 */
export function collectParameters(input: { authorization: string | undefined; query: string; form: URLSearchParams | undefined }): OAuthMessage {
  const pairs: Array<readonly [string, string]> = [];
  const protocol = new Map<string, string>();
  const repeated = new Set<string>();
  const transports = new Set<Transport>();
  const add = (name: string, value: string, transport: Transport) => {
    pairs.push([name, value]);
    if (!isProtocolParameter(name)) return;
    transports.add(transport);
    if (protocol.has(name)) repeated.add(name);
    else protocol.set(name, value);
  };
  let realm: string | undefined;
  // The header first, as net.oauth merges them: its values win the `protocol` lookup.
  if (isOAuthAuthorization(input.authorization)) {
    const parsed = parseAuthorizationHeader(input.authorization);
    realm = parsed.realm;
    for (const [name, value] of parsed.pairs) add(name, value, 'header');
  }
  if (input.form) for (const [name, value] of input.form) add(name, value, 'body');
  if (input.query) {
    let query: URLSearchParams;
    try {
      query = new URLSearchParams(input.query);
    } catch {
      throw new MalformedOAuth('malformed query');
    }
    for (const [name, value] of query) add(name, value, 'query');
  }
  return { pairs, protocol, repeated: [...repeated], transports, realm };
}

/** The query string of a request target or URL, without `?` and without a fragment. */
export function queryOf(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return '';
  const hash = url.indexOf('#', q);
  return hash < 0 ? url.slice(q + 1) : url.slice(q + 1, hash);
}
