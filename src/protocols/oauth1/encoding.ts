/**
 * RFC 5849 §3.6 percent-encoding: every octet of the UTF-8 form except the unreserved characters
 * (ALPHA, DIGIT, "-", ".", "_", "~") is `%XX` with upper-case hex. It differs from
 * `encodeURIComponent` in `!'()*`, and from form encoding in the space (`%20`, never `+`).
 */
const UNRESERVED = /^[A-Za-z0-9\-._~]*$/;

/** Thrown for text that has no UTF-8 form (a lone surrogate) or a malformed `%XX` sequence. */
export class EncodingError extends Error {
  override name = 'EncodingError';
}

export function percentEncode(value: string): string {
  if (UNRESERVED.test(value)) return value;
  let encoded: string;
  try {
    encoded = encodeURIComponent(value);
  } catch {
    throw new EncodingError('text is not valid Unicode');
  }
  return encoded.replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
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
