import type { OAuthMessage } from './parameters.js';
import { oauthProblem } from './problems.js';
import { isSignatureMethod, signatureBaseString, verifySignature, type SignatureMethod, type SigningSecrets } from './signature.js';

/** The protocol parameters of a request that passed the checks every OAuth 1.0a request must pass. */
export interface ProtocolParameters {
  consumerKey: string;
  /** Undefined when absent, `''` when sent empty (2-legged, PROTOCOLS.md §1.8). */
  token: string | undefined;
  signatureMethod: SignatureMethod;
  signature: string;
  /** Seconds since the epoch, as the client sent it. */
  timestamp: number;
  nonce: string;
  message: OAuthMessage;
  get(name: string): string | undefined;
}

export interface CheckOptions {
  /** Server time in ms. */
  now: number;
  /** Accepted distance of oauth_timestamp from server time (net.oauth: 300 s). */
  windowSeconds: number;
  /** The realm problems are reported under (the base URL). */
  realm: string;
}

const REQUIRED = ['oauth_consumer_key', 'oauth_signature_method', 'oauth_signature', 'oauth_timestamp', 'oauth_nonce'] as const;
/**
 * Longest protocol parameter value: room for the RSA-SHA1 signature of the largest key we register
 * (16,384 bits: 2,732 base64 characters) and a long callback URL, and still a bound.
 */
const MAX_LENGTH = 4096;

/**
 * The checks of net.oauth's SimpleOAuthValidator, in its order (PROTOCOLS.md §1.3): repeated
 * singleton parameters (parameter_rejected), oauth_version other than 1.0 (version_rejected),
 * missing parameters (parameter_absent), an unknown signature method
 * (signature_method_rejected), and oauth_timestamp within ±window of server time
 * (timestamp_refused, with the acceptable range computed as net.oauth does). The consumer, the
 * token, the signature and the nonce are checked by the caller, which knows the keys.
 */
export function checkProtocolParameters(message: OAuthMessage, options: CheckOptions): ProtocolParameters {
  const { realm } = options;
  if (message.repeated.length > 0) {
    throw oauthProblem('oauth1_parameter_rejected', realm, {
      params: { oauth_parameters_rejected: message.repeated.join('&') },
      advice: `RFC 5849 §3.5: each protocol parameter is sent once; repeated: ${message.repeated.join(', ')}.`,
    });
  }
  const get = (name: string) => message.protocol.get(name);
  const version = get('oauth_version');
  // net.oauth compares the number (Double.parseDouble), so "1" and "1.00" are 1.0 too.
  if (version !== undefined && version !== '1.0' && !(/^\d{1,3}(\.\d{1,6})?$/.test(version) && Number(version) === 1)) {
    throw oauthProblem('oauth1_version_rejected', realm, { params: { oauth_acceptable_versions: '1.0-1.0' }, advice: 'oauth_version must be 1.0.' });
  }
  let complete = true;
  for (const name of REQUIRED) if (get(name) === undefined) complete = false;
  if (!complete) {
    const absent = REQUIRED.filter((name) => get(name) === undefined);
    throw oauthProblem('oauth1_parameter_absent', realm, { params: { oauth_parameters_absent: absent.join('&') }, advice: `Missing: ${absent.join(', ')}.` });
  }
  let longest = 0;
  for (const value of message.protocol.values()) if (value.length > longest) longest = value.length;
  if (longest > MAX_LENGTH) {
    const tooLong = [...message.protocol].filter(([, v]) => v.length > MAX_LENGTH).map(([n]) => n);
    throw oauthProblem('oauth1_parameter_rejected', realm, { params: { oauth_parameters_rejected: tooLong.join('&') }, advice: `Longer than ${MAX_LENGTH} characters: ${tooLong.join(', ')}.` });
  }
  const method = get('oauth_signature_method')!;
  if (!isSignatureMethod(method)) {
    throw oauthProblem('oauth1_signature_method_rejected', realm, { advice: `Unknown signature method ${method.slice(0, 40)}; use RSA-SHA1 or HMAC-SHA1.` });
  }
  const rawTimestamp = get('oauth_timestamp')!;
  if (!/^\d{1,12}$/.test(rawTimestamp)) {
    throw oauthProblem('oauth1_parameter_rejected', realm, { params: { oauth_parameters_rejected: 'oauth_timestamp' }, advice: 'oauth_timestamp must be whole seconds since 1970.' });
  }
  const timestamp = Number(rawTimestamp);
  const window = options.windowSeconds * 1000;
  // net.oauth: min = (now - window + 500) / 1000, max = (now + window + 500) / 1000, in whole seconds.
  const min = Math.floor((options.now - window + 500) / 1000);
  const max = Math.floor((options.now + window + 500) / 1000);
  if (timestamp < min || timestamp > max) {
    throw oauthProblem('oauth1_timestamp_refused', realm, {
      params: { oauth_acceptable_timestamps: `${min}-${max}` },
      advice: `oauth_timestamp must be within ${options.windowSeconds} seconds of the server's clock.`,
    });
  }
  const nonce = get('oauth_nonce')!;
  if (nonce === '') throw oauthProblem('oauth1_parameter_rejected', realm, { params: { oauth_parameters_rejected: 'oauth_nonce' }, advice: 'oauth_nonce is empty.' });
  return {
    consumerKey: get('oauth_consumer_key')!,
    token: get('oauth_token'),
    signatureMethod: method,
    signature: get('oauth_signature')!,
    timestamp,
    nonce,
    message,
    get,
  };
}

/**
 * RFC 5849 §3.2: recomputes the base string from the URL the client addressed and checks the
 * signature. A bad one is signature_invalid; the base string goes back in the problem only when
 * `debug` is on (net.oauth always sends it; it tells a prober exactly what we signed).
 */
export function checkSignature(
  request: { method: string; url: string },
  p: ProtocolParameters,
  secrets: SigningSecrets,
  options: { realm: string; debug: boolean },
): void {
  const baseString = signatureBaseString(request.method, request.url, p.message.pairs);
  if (verifySignature(p.signatureMethod, baseString, p.signature, secrets)) return;
  throw oauthProblem('oauth1_signature_invalid', options.realm, {
    ...(options.debug ? { params: { oauth_signature_method: p.signatureMethod, oauth_signature_base_string: baseString } } : {}),
    advice: 'The signature does not match: sign the URL exactly as sent (scheme, host, port, path) with every query and form parameter.',
    detail: `signature_invalid for consumer ${p.consumerKey.slice(0, 64)} (${p.signatureMethod})`,
  });
}
