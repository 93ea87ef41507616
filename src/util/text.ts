const CONTROL = /[\u0000-\u001f\u007f]/;
const URI_TEXT = /^[\x21-\x7e]*$/;

/**
 * True when a name or key taken from the wire (a username, client id, consumer key) could be one
 * we store: not empty, at most `maxLength` characters, no control characters (PostgreSQL refuses
 * a NUL in text outright). Anything else is unknown without asking the store.
 */
export function isStorableName(value: string, maxLength: number): boolean {
  return value.length > 0 && value.length <= maxLength && !CONTROL.test(value);
}

/**
 * True when `value` is made of the characters a URI may hold (RFC 3986 §2: printable ASCII,
 * anything else percent-encoded), which is also what an HTTP `Location` header may carry. A
 * redirect target from outside (a registered redirect URI, an `oauth_callback`, a `next` path)
 * that is not is refused where it arrives: sent raw it would fail the response, not the request.
 */
export function isUriText(value: string): boolean {
  return URI_TEXT.test(value);
}
