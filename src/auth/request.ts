import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { AppError } from '../errors/index.js';
import type { Connection } from './principal.js';

/**
 * A request as authenticators see it, free of any HTTP framework: the URL the client used (as
 * rebuilt from the public base URL and trusted proxy headers), headers, and a lazily read form
 * body. The gateway, forward-auth, the library and applinks' own routes all build one.
 */
export interface AuthRequest {
  readonly method: string;
  /** Absolute URL the client addressed, e.g. `https://host.example/rest/api/2/myself?x=1`. */
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  /** The client address (after trusted-proxy resolution). */
  readonly remoteAddress: string;
  /** True when the client's connection to the edge was https. */
  readonly secure: boolean;
  readonly connection: Connection;
  /**
   * The body parameters when it is `application/x-www-form-urlencoded` (OAuth 1.0a signs them),
   * otherwise undefined. Reading it buffers the body; `bufferedBody()` then gives it back.
   */
  form(): Promise<URLSearchParams | undefined>;
  /** The body bytes if something already read them. */
  bufferedBody(): Buffer | undefined;
  /**
   * Set by an authenticator whose credentials travel as query or form parameters (OAuth 1.0a's
   * `oauth_*`): the parameters it names are removed before the request goes on to the host, as
   * a consumed Authorization header is.
   */
  consumedParameters?: (name: string) => boolean;
}

export interface BodySource {
  /** Reads the whole body up to `limit` bytes. */
  read(limit: number): Promise<Buffer>;
}

const FORM_TYPE = /^application\/x-www-form-urlencoded\s*(;|$)/i;

/** Builds an AuthRequest; `body` is consulted only for form bodies and only when asked. */
export function createAuthRequest(init: {
  method: string;
  /** The URL, or how to build it: most requests never need it (only signatures cover it). */
  url: string | (() => string);
  headers: IncomingHttpHeaders;
  remoteAddress: string;
  secure: boolean;
  connection: Connection;
  body?: BodySource | Buffer | URLSearchParams | undefined;
  formLimit?: number;
}): AuthRequest {
  let buffered: Buffer | undefined = Buffer.isBuffer(init.body) ? init.body : undefined;
  let parsed: URLSearchParams | undefined | null = init.body instanceof URLSearchParams ? init.body : null;
  const isForm = FORM_TYPE.test(String(init.headers['content-type'] ?? ''));
  let url = typeof init.url === 'string' ? init.url : undefined;
  return {
    method: init.method.toUpperCase(),
    get url() {
      return (url ??= (init.url as () => string)());
    },
    headers: init.headers,
    remoteAddress: init.remoteAddress,
    secure: init.secure,
    connection: init.connection,
    async form() {
      if (parsed !== null) return parsed;
      if (!isForm || init.method === 'GET' || init.method === 'HEAD') return (parsed = undefined);
      if (!buffered) {
        const source = init.body;
        if (!source || Buffer.isBuffer(source) || source instanceof URLSearchParams) return (parsed = undefined);
        buffered = await source.read(init.formLimit ?? 1_048_576);
      }
      return (parsed = new URLSearchParams(buffered.toString('utf8')));
    },
    bufferedBody: () => buffered,
  };
}

/** Reads a Node request stream fully, refusing more than `limit` bytes. */
export function streamBodySource(req: IncomingMessage): BodySource {
  return {
    read(limit) {
      return new Promise<Buffer>((resolve, reject) => {
        const declared = Number(req.headers['content-length']);
        if (Number.isFinite(declared) && declared > limit) {
          reject(new AppError('payload_too_large'));
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        req.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > limit) {
            reject(new AppError('payload_too_large'));
            req.destroy();
            return;
          }
          chunks.push(chunk);
        });
        req.on('end', () => resolve(Buffer.concat(chunks)));
        req.on('error', (error) => reject(new AppError('invalid_request', { detail: error.message })));
      });
    },
  };
}
