const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * True when a name or key taken from the wire (a username, client id, consumer key) could be one
 * we store: not empty, at most `maxLength` characters, no control characters (PostgreSQL refuses
 * a NUL in text outright). Anything else is unknown without asking the store.
 */
export function isStorableName(value: string, maxLength: number): boolean {
  return value.length > 0 && value.length <= maxLength && !CONTROL.test(value);
}
