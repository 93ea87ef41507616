import { AppError } from '../../errors/index.js';
import { errorCatalog, type ErrorCode } from '../../errors/catalog.js';
import { formEncodeOAuth, percentEncode } from './encoding.js';

/** The catalog codes that render as an OAuth 1.0a problem. */
export type OAuth1ProblemCode = Extract<ErrorCode, `oauth1_${string}`>;

export interface ProblemOptions {
  /** Extra problem parameters, all named `oauth_*` (oauth_acceptable_timestamps...). */
  params?: Record<string, string>;
  /** Human advice, sent as `oauth_problem_advice` and used as the error message. Never a secret. */
  advice?: string;
  /** Private detail for the log. */
  detail?: string;
}

/**
 * The OAuth Problem Reporting rendering Jira's net.oauth sends (PROTOCOLS.md §1.4):
 * `WWW-Authenticate: OAuth realm="<percent-encoded realm>", oauth_problem="<code>", name="value"…`
 * for every `oauth_*` problem parameter, and the same parameters form-encoded as the body with
 * `application/x-www-form-urlencoded;charset=UTF-8`. The status comes from the catalog
 * (net.oauth's TO_HTTP_CODE table).
 */
export function oauthProblem(code: OAuth1ProblemCode, realm: string, options: ProblemOptions = {}): AppError {
  const problem = errorCatalog[code].oauth1;
  const pairs: Array<[string, string]> = [['oauth_problem', problem]];
  for (const [name, value] of Object.entries(options.params ?? {})) pairs.push([name, value]);
  if (options.advice) pairs.push(['oauth_problem_advice', options.advice]);
  const header = [`OAuth realm="${percentEncode(realm)}"`, ...pairs.map(([n, v]) => `${percentEncode(n)}="${percentEncode(v)}"`)].join(', ');
  return new AppError(code, {
    message: options.advice ?? errorCatalog[code].description,
    ...(options.detail !== undefined ? { detail: options.detail } : {}),
    params: Object.fromEntries(pairs),
    headers: { 'www-authenticate': header },
    body: { contentType: 'application/x-www-form-urlencoded;charset=UTF-8', payload: formEncodeOAuth(pairs) },
  });
}

/** `WWW-Authenticate: OAuth realm="…"` for a 401 that names OAuth as one way in (RFC 5849 §3.5.1). */
export function oauthChallenge(realm: string): string {
  return `OAuth realm="${percentEncode(realm)}"`;
}

/** True for catalog codes that render as OAuth 1.0a problems. */
export function isOAuth1Problem(code: ErrorCode): code is OAuth1ProblemCode {
  return code.startsWith('oauth1_');
}
