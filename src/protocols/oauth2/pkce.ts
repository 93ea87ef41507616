import { createHash } from 'node:crypto';
import { AppError } from '../../errors/index.js';
import { constantTimeEqual } from '../../crypto/tokens.js';

/** RFC 7636 §4.1: code-verifier = 43*128unreserved. */
const VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/;
/** An S256 challenge is BASE64URL(SHA256(verifier)) without padding: exactly 43 characters. */
const S256_CHALLENGE = /^[A-Za-z0-9_-]{43}$/;

export type ChallengeMethod = 'S256';

/** RFC 7636 §4.2: code_challenge = BASE64URL-ENCODE(SHA256(ASCII(code_verifier))). */
export function s256Challenge(verifier: string): string {
  return createHash('sha256').update(verifier, 'ascii').digest('base64url');
}

/**
 * The authorization request's PKCE parameters (RFC 7636 §4.3). Only S256 is accepted: `plain`
 * gives no protection against a stolen authorization request, and an absent method means
 * `plain` (§4.3), so both are refused with invalid_request (§4.4.1). `required` is true for
 * public clients (and clients configured to require PKCE). Answers undefined when PKCE is not
 * used.
 */
export function checkCodeChallenge(
  challenge: string | undefined,
  method: string | undefined,
  required: boolean,
): { challenge: string; method: ChallengeMethod } | undefined {
  if (challenge === undefined) {
    if (method !== undefined) throw new AppError('oauth2_invalid_request', { message: 'code_challenge_method was sent without code_challenge.' });
    if (required) throw new AppError('oauth2_invalid_request', { message: 'This client must use PKCE: send code_challenge and code_challenge_method=S256.' });
    return undefined;
  }
  if (method === undefined || method === 'plain') {
    throw new AppError('oauth2_invalid_request', { message: 'code_challenge_method must be S256; plain is not accepted.' });
  }
  if (method !== 'S256') throw new AppError('oauth2_invalid_request', { message: 'code_challenge_method must be S256.' });
  if (!S256_CHALLENGE.test(challenge)) {
    throw new AppError('oauth2_invalid_request', { message: 'code_challenge must be the 43-character base64url SHA-256 of the code verifier.' });
  }
  return { challenge, method: 'S256' };
}

/**
 * RFC 7636 §4.6: the token request's verifier against the stored challenge. A code issued with
 * a challenge needs a verifier, and a code issued without one must not get a verifier (that
 * would let an attacker downgrade, OAuth 2.1 §4.1.3); every failure is invalid_grant.
 */
export function checkCodeVerifier(verifier: string | undefined, stored: { challenge: string; method: ChallengeMethod } | null): void {
  if (stored === null) {
    if (verifier !== undefined) throw new AppError('oauth2_invalid_grant', { message: 'code_verifier was sent but the authorization request had no code_challenge.' });
    return;
  }
  if (verifier === undefined) throw new AppError('oauth2_invalid_grant', { message: 'code_verifier is required: the authorization request had a code_challenge.' });
  if (!VERIFIER.test(verifier)) throw new AppError('oauth2_invalid_grant', { message: 'code_verifier must be 43 to 128 unreserved characters.' });
  if (!constantTimeEqual(s256Challenge(verifier), stored.challenge)) {
    throw new AppError('oauth2_invalid_grant', { message: 'PKCE verification failed: code_verifier does not match code_challenge.' });
  }
}
