/**
 * RFC 5849 §3.6 percent-encoding: every octet of the UTF-8 form except the unreserved characters
 * (ALPHA, DIGIT, "-", ".", "_", "~") is `%XX` with upper-case hex. It differs from
 * `encodeURIComponent` in `!'()*`, and from form encoding in the space (`%20`, never `+`).
 */
/** 1 for the unreserved ASCII characters of RFC 3986 §2.3. */
const UNRESERVED = new Uint8Array(128);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~') UNRESERVED[c.charCodeAt(0)] = 1;
const ESCAPES = Array.from({ length: 128 }, (_, i) => `%${i.toString(16).toUpperCase().padStart(2, '0')}`);

/** Thrown for text that has no UTF-8 form (a lone surrogate) or a malformed `%XX` sequence. */
export class EncodingError extends Error {
  override name = 'EncodingError';
}

// Every signed request encodes a dozen names and values: ASCII goes through a table, and
// most values (names, nonces, tokens, timestamps) come back unchanged without a copy.
export function percentEncode(value: string): string {
  const n = value.length;
  let i = 0;
  while (i < n) {
    const c = value.charCodeAt(i);
    if (c >= 128 || UNRESERVED[c] === 0) break;
    i++;
  }
  if (i === n) return value;
  let out = value.slice(0, i);
  for (; i < n; i++) {
    const c = value.charCodeAt(i);
    if (c >= 128) return out + encodeUtf8(value.slice(i));
    out += UNRESERVED[c] === 1 ? value[i] : ESCAPES[c];
  }
  return out;
}

/** The rest of a value from its first non-ASCII character: UTF-8 octets, each `%XX`. */
function encodeUtf8(rest: string): string {
  let encoded: string;
  try {
    encoded = encodeURIComponent(rest);
  } catch {
    throw new EncodingError('text is not valid Unicode');
  }
  return encoded.replace(/[!'()*]/g, (c) => ESCAPES[c.charCodeAt(0)]!);
}

/** The inverse, for values of the Authorization header (RFC 5849 §3.5.1). Throws EncodingError. */
export function percentDecode(value: string): string {
  if (!value.includes('%')) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    throw new EncodingError('malformed percent-encoding');
  }
}

/**
 * A response body of name/value pairs (request-token and access-token responses, problem
 * bodies): RFC 5849 §2.1 says `application/x-www-form-urlencoded`; Jira's net.oauth writes it
 * with the OAuth encoding, so spaces become `%20` and never `+`.
 */
export function formEncodeOAuth(pairs: Iterable<readonly [string, string]>): string {
  const out: string[] = [];
  for (const [name, value] of pairs) out.push(`${percentEncode(name)}=${percentEncode(value)}`);
  return out.join('&');
}

/**
 * `url` with `params` appended to its query (before any fragment), as net.oauth's
 * `OAuth.addParameters` does: what the URL already holds stays byte for byte (a consumer may
 * sign or compare its own callback query).
 */
export function appendParameters(url: string, params: Record<string, string>): string {
  const hash = url.indexOf('#');
  const base = hash < 0 ? url : url.slice(0, hash);
  const separator = !base.includes('?') ? '?' : base.endsWith('?') || base.endsWith('&') ? '' : '&';
  return `${base}${separator}${formEncodeOAuth(Object.entries(params))}${hash < 0 ? '' : url.slice(hash)}`;
}
