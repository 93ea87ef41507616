import { createHmac, hash, randomBytes, timingSafeEqual } from 'node:crypto';

/** A random bearer secret, prefixed by kind (`alpat_`, `alses_`...), 256 bits of entropy. */
export function randomToken(prefix: string, bytes = 32): string {
  return prefix + randomBytes(bytes).toString('base64url');
}

/**
 * The stored form of a high-entropy bearer secret. A plain SHA-256 is right for 256-bit random
 * values (no dictionary to attack) and costs about a microsecond, so it can run per request.
 */
export function hashToken(token: string): string {
  // The one-shot crypto.hash (Node ≥ 20.12) is about 2.5× faster than a Hash object; this runs
  // on every bearer request.
  return hash('sha256', token, 'base64url');
}

/**
 * A keyed hash for cache keys derived from secrets (the Basic success cache): SHA-512/256 of a
 * secret random prefix and the data, in one call. Being truncated, SHA-512/256 is not open to
 * length extension, so the prefix construction is a sound MAC; it costs a quarter of an Hmac
 * object, which matters on a path that runs per request.
 */
export function keyedHash(prefix: string, data: string): string {
  return hash('sha512-256', prefix + data, 'base64url');
}

export function hmacBase64url(key: Buffer, data: string): string {
  return createHmac('sha256', key).update(data, 'utf8').digest('base64url');
}

/** Compares two strings in time that does not depend on where they differ. */
export function constantTimeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a, 'utf8');
  const bb = Buffer.from(b, 'utf8');
  if (ab.length !== bb.length) {
    // Still spend the comparison so length is the only thing revealed.
    timingSafeEqual(ab, ab);
    return false;
  }
  return timingSafeEqual(ab, bb);
}
