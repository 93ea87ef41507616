import { AppError } from '../../errors/index.js';

/**
 * The parameters of an OAuth 2.0 request (query or form). RFC 6749 §3.1 and §3.2: "Parameters
 * sent without a value MUST be treated as if they were omitted from the request" and "Request
 * and response parameters MUST NOT be included more than once." A repeated parameter is
 * invalid_request, naming it.
 */
export class OAuthParams {
  private readonly values = new Map<string, string>();
  private readonly repeated = new Set<string>();

  constructor(source: URLSearchParams) {
    for (const [name, value] of source) {
      if (value === '') continue;
      if (this.values.has(name)) this.repeated.add(name);
      else this.values.set(name, value);
    }
  }

  /** The single value of a parameter, undefined when absent or empty; throws when repeated. */
  get(name: string): string | undefined {
    if (this.repeated.has(name)) throw new AppError('oauth2_invalid_request', { message: `The ${name} parameter is repeated.` });
    return this.values.get(name);
  }

  /** Like get, but a missing parameter is invalid_request. */
  require(name: string): string {
    const value = this.get(name);
    if (value === undefined) throw new AppError('oauth2_invalid_request', { message: `The ${name} parameter is missing.` });
    return value;
  }

  /** True when the parameter was sent more than once (checked before it is known to be safe to redirect). */
  isRepeated(name: string): boolean {
    return this.repeated.has(name);
  }

  /** Throws invalid_request for the first repeated parameter of any name. */
  rejectRepeated(): void {
    const first = this.repeated.values().next();
    if (!first.done) throw new AppError('oauth2_invalid_request', { message: `The ${first.value} parameter is repeated.` });
  }

  has(name: string): boolean {
    return this.values.has(name);
  }
}
