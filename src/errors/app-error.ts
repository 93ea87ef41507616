import { errorCatalog, type ErrorCode } from './catalog.js';

export interface AppErrorOptions {
  /** Public message; defaults to the catalog description. Never put a secret here. */
  message?: string;
  /** Private detail: logged at debug, never sent. */
  detail?: string;
  /** The request field at fault, for validation errors. */
  field?: string;
  /** Extra response headers (WWW-Authenticate, Retry-After). */
  headers?: Record<string, string | string[]>;
  /** Extra public protocol parameters (e.g. oauth_acceptable_timestamps). */
  params?: Record<string, string>;
  /**
   * The protocol's own rendering of the response body, sent instead of JSON wherever the error
   * surfaces (an OAuth 1.0a problem is form-encoded, as Jira sends it). Public: no secrets.
   */
  body?: { contentType: string; payload: string };
  cause?: unknown;
  /**
   * The status to answer with instead of the catalog's, for a door whose callers understand only
   * some statuses (forward-auth: nginx's auth_request passes 401 and 403, and turns any other
   * refusal into a 500).
   */
  status?: number;
}

/** An error from the catalog. Everything that answers a client with a 4xx/5xx throws one of these. */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly detail: string | undefined;
  readonly field: string | undefined;
  readonly headers: Record<string, string | string[]>;
  readonly params: Record<string, string>;
  readonly body: { contentType: string; payload: string } | undefined;

  constructor(code: ErrorCode, options: AppErrorOptions = {}) {
    super(options.message ?? errorCatalog[code].description, { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.status = options.status ?? errorCatalog[code].status;
    this.detail = options.detail;
    this.field = options.field;
    this.headers = options.headers ?? {};
    this.params = options.params ?? {};
    this.body = options.body;
  }

  /** The JSON body used by the admin API and the gateway. */
  toJSON(): { error: ErrorCode; message: string; field?: string } {
    return this.field === undefined
      ? { error: this.code, message: this.message }
      : { error: this.code, message: this.message, field: this.field };
  }
}

export function isAppError(error: unknown): error is AppError {
  return error instanceof AppError;
}
