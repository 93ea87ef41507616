import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { Pool } from 'undici';
import { AppError } from '../errors/index.js';

/** Hop-by-hop headers (RFC 9110 §7.6.1) and those the forwarder sets itself. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'trailers', 'transfer-encoding', 'upgrade', 'host']);

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

/**
 * Forwards requests to the host over a keep-alive undici Pool, streaming bodies both ways. This
 * is the gateway's hot path: no framework in between, one pass over the headers each way.
 */
export class Forwarder {
  private readonly pool: Pool;
  private readonly pathPrefix: string;

  constructor(
    upstreamUrl: string,
    private readonly headersTimeoutMs: number,
  ) {
    const url = new URL(upstreamUrl);
    this.pool = new Pool(url.origin, { connections: 256, pipelining: 1, keepAliveTimeout: 30_000, headersTimeout: headersTimeoutMs, bodyTimeout: 0 });
    this.pathPrefix = url.pathname.replace(/\/$/, '');
  }

  /** Streams the upstream answer into `res`. Throws an AppError only before anything was written. */
  forward(req: IncomingMessage, res: ServerResponse, options: ForwardOptions): Promise<void> {
    const method = req.method ?? 'GET';
    const hasBody = options.body !== null && method !== 'GET' && method !== 'HEAD';
    return new Promise<void>((resolve, reject) => {
      let started = false;
      this.pool.stream(
        {
          path: this.pathPrefix + (options.path ?? req.url ?? '/'),
          method,
          headers: options.headers,
          body: hasBody ? options.body! : null,
          headersTimeout: this.headersTimeoutMs,
          signal: undefined,
          opaque: res,
        },
        ({ statusCode, headers, opaque }) => {
          const out = opaque as ServerResponse;
          started = true;
          out.writeHead(statusCode, responseHeaders(headers));
          return out;
        },
        (error) => {
          if (!error) return resolve();
          if (started) {
            res.destroy(error);
            return resolve();
          }
          reject(upstreamError(error));
        },
      );
    });
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

/** Request headers for the host: the client's minus hop-by-hop, credentials and X-Applinks-*, plus X-Forwarded-*. */
export function upstreamHeaders(
  incoming: IncomingHttpHeaders,
  drop: (name: string) => boolean,
  add: Record<string, string>,
): Record<string, string | string[] | undefined> {
  const out: Record<string, string | string[] | undefined> = {};
  const connectionTokens = typeof incoming.connection === 'string' ? incoming.connection.toLowerCase().split(',').map((t) => t.trim()) : [];
  for (const name in incoming) {
    if (HOP_BY_HOP.has(name) || drop(name) || connectionTokens.includes(name)) continue;
    out[name] = incoming[name];
  }
  for (const name in add) out[name] = add[name];
  return out;
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
