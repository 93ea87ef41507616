import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { Pool } from 'undici';
import { AppError } from '../errors/index.js';

/**
 * Hop-by-hop headers (RFC 9110 §7.6.1) and those the forwarder sets itself. `expect` among them:
 * Node's server has already answered `100-continue` to the client, and undici refuses to send it.
 */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'trailers', 'transfer-encoding', 'upgrade', 'host', 'expect']);

/**
 * A form-encoded string (a query, or an `application/x-www-form-urlencoded` body) without the
 * parameters `drop` names; every other parameter stays byte for byte as the client sent it.
 */
export function withoutParameters(encoded: string, drop: (name: string) => boolean): string {
  if (!encoded) return encoded;
  return encoded
    .split('&')
    .filter((part) => {
      const eq = part.indexOf('=');
      const raw = (eq < 0 ? part : part.slice(0, eq)).replace(/\+/g, ' ');
      try {
        return !drop(decodeURIComponent(raw));
      } catch {
        return true;
      }
    })
    .join('&');
}

/** A request target without the parameters `drop` names in its query. */
export function targetWithoutParameters(target: string, drop: (name: string) => boolean): string {
  const q = target.indexOf('?');
  if (q < 0) return target;
  const query = withoutParameters(target.slice(q + 1), drop);
  return query ? `${target.slice(0, q)}?${query}` : target.slice(0, q);
}

export interface ForwardOptions {
  /** The body: the client's stream, bytes already read (form bodies OAuth 1.0a signed), or none. */
  body: IncomingMessage | Buffer | null;
  /** Headers to send upstream, already filtered of credentials and X-Applinks-* and with identity added. */
  headers: Record<string, string | string[] | undefined>;
  /** The request target to send, when it differs from the client's (credential parameters removed). */
  path?: string;
}

/** How a forwarded exchange ended: `error` only when nothing was written to the client yet. */
export type ForwardDone = (req: IncomingMessage, res: ServerResponse, error: AppError | undefined) => void;

/** One exchange in flight, undici's `opaque`: the only object the forwarder allocates per request. */
interface Exchange {
  req: IncomingMessage;
  res: ServerResponse;
  done: ForwardDone;
}

/**
 * Forwards requests to the host over a keep-alive undici Pool, streaming bodies both ways. This
 * is the gateway's hot path: no framework in between, one pass over the headers each way, and
 * no closure or promise per request (undici hands the exchange back as `opaque`).
 */
export class Forwarder {
  private readonly pool: Pool;
  private readonly pathPrefix: string;

  constructor(
    upstreamUrl: string,
    private readonly headersTimeoutMs: number,
    private readonly done: ForwardDone,
  ) {
    const url = new URL(upstreamUrl);
    this.pool = new Pool(url.origin, { connections: 256, pipelining: 1, keepAliveTimeout: 30_000, headersTimeout: headersTimeoutMs, bodyTimeout: 0 });
    this.pathPrefix = url.pathname.replace(/\/$/, '');
  }

  /** Streams the upstream answer into `res`, then calls `done` (with an AppError only if nothing was written). */
  forward(req: IncomingMessage, res: ServerResponse, options: ForwardOptions): void {
    const method = req.method ?? 'GET';
    const hasBody = options.body !== null && method !== 'GET' && method !== 'HEAD';
    const exchange: Exchange = { req, res, done: this.done };
    this.pool.stream(
      {
        path: this.pathPrefix + (options.path ?? req.url ?? '/'),
        method,
        headers: options.headers,
        body: hasBody ? options.body! : null,
        headersTimeout: this.headersTimeoutMs,
        signal: undefined,
        opaque: exchange,
      },
      onUpstreamHeaders,
      onUpstreamEnd,
    );
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

function onUpstreamHeaders({ statusCode, headers, opaque }: { statusCode: number; headers: Record<string, string | string[] | undefined>; opaque: unknown }): ServerResponse {
  const { res } = opaque as Exchange;
  res.writeHead(statusCode, responseHeaders(headers));
  return res;
}

function onUpstreamEnd(error: Error | null, { opaque }: { opaque: unknown }): void {
  const { req, res, done } = opaque as Exchange;
  if (!error) return done(req, res, undefined);
  if (res.headersSent) {
    // The answer was already streaming: all the client can be told is that it broke off.
    res.destroy(error);
    return done(req, res, undefined);
  }
  done(req, res, upstreamError(error));
}

/** Request headers for the host: the client's minus hop-by-hop, credentials and X-Applinks-*, plus X-Forwarded-*. */
export function upstreamHeaders(
  incoming: IncomingHttpHeaders,
  drop: (name: string) => boolean,
  add: Record<string, string>,
): Record<string, string | string[] | undefined> {
  const out: Record<string, string | string[] | undefined> = {};
  const connectionTokens = connectionOptions(incoming.connection);
  for (const name in incoming) {
    if (HOP_BY_HOP.has(name) || drop(name) || (connectionTokens !== undefined && connectionTokens.includes(name))) continue;
    out[name] = incoming[name];
  }
  for (const name in add) out[name] = add[name];
  return out;
}

/** The header names a Connection header lists (RFC 9110 §7.6.1), undefined for the usual bare keep-alive or close. */
function connectionOptions(connection: string | undefined): string[] | undefined {
  if (connection === undefined || connection === 'keep-alive' || connection === 'close') return undefined;
  return connection.toLowerCase().split(',').map((t) => t.trim());
}

function responseHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || HOP_BY_HOP.has(name)) continue;
    out[name] = value;
  }
  return out;
}

function upstreamError(error: Error): AppError {
  const code = (error as { code?: string }).code;
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return new AppError('upstream_timeout', { detail: error.message });
  if (code === 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH' || code === 'UND_ERR_ABORTED') return new AppError('invalid_request', { detail: error.message });
  return new AppError('upstream_unavailable', { detail: `${code ?? ''} ${error.message}` });
}
