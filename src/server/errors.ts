import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../errors/index.js';

interface AjvError {
  keyword: string;
  instancePath: string;
  message?: string;
  params: Record<string, unknown>;
}

/** Turns anything thrown in a route into a catalog error. Unknown errors become `internal`. */
export function toAppError(error: unknown): AppError {
  if (error instanceof AppError) return error;
  const e = error as FastifyError & { validation?: AjvError[]; validationContext?: string };
  if (Array.isArray(e.validation) && e.validation.length > 0) return validationError(e.validation[0]!, e.validationContext);
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new AppError('payload_too_large');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new AppError('unsupported_media_type');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new AppError('invalid_request', { message: 'The body is empty but its Content-Type says JSON.' });
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new AppError('invalid_request', { message: 'The body is not valid JSON.' });
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new AppError('invalid_request', { message: 'Content-Length does not match the body.' });
    default:
  }
  if (error instanceof SyntaxError || (typeof e.statusCode === 'number' && e.statusCode === 400)) {
    return new AppError('invalid_request', { message: 'The request body could not be parsed.', detail: e.message });
  }
  if (isContention(e.code)) return new AppError('store_busy', { detail: `${String(e.code)} ${e.message}`, headers: { 'retry-after': '1' } });
  if (typeof e.statusCode === 'number' && e.statusCode === 413) return new AppError('payload_too_large');
  if (typeof e.statusCode === 'number' && e.statusCode === 415) return new AppError('unsupported_media_type');
  return new AppError('internal', { detail: e.message, cause: error });
}

/**
 * The store refused a write because of other writes, not because of this request: PostgreSQL's
 * deadlock_detected, serialization_failure and lock_not_available, SQLite's busy and locked
 * (after its busy timeout). The transaction was rolled back, so the client may simply retry.
 */
function isContention(code: unknown): boolean {
  return code === '40P01' || code === '40001' || code === '55P03' || (typeof code === 'string' && /^SQLITE_(BUSY|LOCKED)/.test(code));
}

function validationError(first: AjvError, context: string | undefined): AppError {
  const base = first.instancePath.replace(/^\//, '').replace(/\//g, '.');
  const join = (name: unknown) => (base ? `${base}.${String(name)}` : String(name));
  const where = context && context !== 'body' ? `${context} ` : '';
  if (first.keyword === 'additionalProperties') {
    const field = join(first.params.additionalProperty);
    return new AppError('validation_failed', { field, message: `${where}${field}: unknown field` });
  }
  if (first.keyword === 'required') {
    const field = join(first.params.missingProperty);
    return new AppError('validation_failed', { field, message: `${where}${field}: is required` });
  }
  const field = base || (context ?? 'body');
  return new AppError('validation_failed', { field, message: `${where}${field}: ${first.message ?? 'is invalid'}` });
}

/**
 * Logs as the error deserves, never with secrets: our own faults (500) as errors, a host or
 * remote that failed us (502, 504) as warnings, which the default level still shows, and client
 * faults quietly.
 */
export function logError(request: FastifyRequest, error: AppError): void {
  if (error.status === 500) request.log.error({ err: error.cause ?? error, code: error.code }, error.detail ?? error.message);
  else if (error.status >= 500) request.log.warn({ code: error.code, detail: error.detail }, error.message);
  else request.log.debug({ code: error.code, detail: error.detail }, 'request refused');
}

/** The JSON rendering used by the admin API, forward-auth and the gateway. */
export function sendJsonError(reply: FastifyReply, error: AppError): FastifyReply {
  reply.code(error.status).headers(error.headers).header('cache-control', 'no-store');
  // A protocol error that carries its own rendering (an OAuth 1.0a problem) keeps it.
  if (error.body) return reply.type(error.body.contentType).send(error.body.payload);
  return reply.send(error.toJSON());
}

/** The default error handler: catalog errors as JSON. Protocol plugins install their own renderings. */
export function jsonErrorHandler(error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const appError = toAppError(error);
  logError(request, appError);
  return sendJsonError(reply, appError);
}
