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

interface AuthRequestInit {
  method: string;
  /** The URL, or how to build it: most requests never need it (only signatures cover it). */
  url: string | (() => string);
  headers: IncomingHttpHeaders;
  remoteAddress: string;
  secure: boolean;
  connection: Connection;
  body?: BodySource | Buffer | URLSearchParams | undefined;
  formLimit?: number;
}

/** Builds an AuthRequest; `body` is consulted only for form bodies and only when asked. */
export function createAuthRequest(init: AuthRequestInit): AuthRequest {
  return new RequestView(init);
}

/**
 * The AuthRequest of one request. A class, not an object literal: V8 gives an object literal
 * with a getter a fresh hidden class per instance, which cost ~0.9 µs and a steady stream of
 * promoted garbage per gateway request.
 */
class RequestView implements AuthRequest {
  readonly method: string;
  readonly headers: IncomingHttpHeaders;
  readonly remoteAddress: string;
  readonly secure: boolean;
  readonly connection: Connection;
  consumedParameters?: (name: string) => boolean;
  private buffered: Buffer | undefined;
  private parsed: URLSearchParams | undefined | null;
  private resolvedUrl: string | undefined;

  constructor(private readonly init: AuthRequestInit) {
    this.method = init.method.toUpperCase();
    this.headers = init.headers;
    this.remoteAddress = init.remoteAddress;
    this.secure = init.secure;
    this.connection = init.connection;
    this.buffered = Buffer.isBuffer(init.body) ? init.body : undefined;
    this.parsed = init.body instanceof URLSearchParams ? init.body : null;
    this.resolvedUrl = typeof init.url === 'string' ? init.url : undefined;
  }

  get url(): string {
    return (this.resolvedUrl ??= (this.init.url as () => string)());
  }

  async form(): Promise<URLSearchParams | undefined> {
    if (this.parsed !== null) return this.parsed;
    const init = this.init;
    if (init.method === 'GET' || init.method === 'HEAD' || !FORM_TYPE.test(String(init.headers['content-type'] ?? ''))) return (this.parsed = undefined);
    if (!this.buffered) {
      const source = init.body;
      if (!source || Buffer.isBuffer(source) || source instanceof URLSearchParams) return (this.parsed = undefined);
      this.buffered = await source.read(init.formLimit ?? 1_048_576);
    }
    return (this.parsed = new URLSearchParams(this.buffered.toString('utf8')));
  }

  bufferedBody(): Buffer | undefined {
    return this.buffered;
  }
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
