import type { IncomingMessage } from 'node:http';
import proxyAddr from 'proxy-addr';
import type { Config } from '../config/schema.js';

/**
 * What the client saw at the edge: its address, whether it used https, and the absolute URL it
 * addressed. Forwarding headers are believed only from configured trusted proxies; an explicit
 * APPLINKS_BASE_URL always wins over them for scheme and host.
 */
export class Edge {
  private readonly trust: (addr: string, i: number) => boolean;
  private readonly base: URL;
  /** The path of the base URL without its trailing slash ('' at the root): a prefix a reverse proxy removes. */
  readonly basePath: string;
  /** Origins already derived from Host headers (a handful per deployment; bounded anyway). */
  private readonly httpOrigins = new Map<string, string | undefined>();
  private readonly httpsOrigins = new Map<string, string | undefined>();

  constructor(private readonly config: Pick<Config, 'baseUrl' | 'baseUrlExplicit' | 'trustedProxies'>) {
    this.trust = proxyAddr.compile(config.trustedProxies);
    this.base = new URL(config.baseUrl);
    this.basePath = this.base.pathname.replace(/\/$/, '');
  }

  /** True when the direct peer is a configured trusted proxy. */
  fromTrustedProxy(req: IncomingMessage): boolean {
    const peer = req.socket.remoteAddress ?? '';
    return this.config.trustedProxies.length > 0 && this.trust(peer, 0);
  }

  clientAddress(req: IncomingMessage): string {
    if (this.config.trustedProxies.length === 0) return req.socket.remoteAddress ?? '';
    return proxyAddr(req, this.trust);
  }

  /** The scheme and authority the client used, e.g. `https://jira.example.com`. */
  origin(req: IncomingMessage): string {
    if (this.config.baseUrlExplicit) return this.base.origin;
    if (this.fromTrustedProxy(req)) {
      const proto = firstValue(req.headers['x-forwarded-proto']);
      // nginx's usual `proxy_set_header Host $host` drops the port; X-Forwarded-Port carries it.
      const host = firstValue(req.headers['x-forwarded-host']) ?? firstValue(req.headers.host);
      if (host && (proto === 'http' || proto === 'https')) {
        const port = firstValue(req.headers['x-forwarded-port']);
        const withPort = port && /^\d{1,5}$/.test(port) && !/:\d+$/.test(host) ? `${host}:${port}` : host;
        return normalizeOrigin(`${proto}://${withPort}`) ?? this.base.origin;
      }
    }
    // Looked up by the raw Host header (a handful of values per deployment), per scheme.
    const header = req.headers.host;
    if (!header) return this.base.origin;
    const origins = (req.socket as { encrypted?: boolean }).encrypted ? this.httpsOrigins : this.httpOrigins;
    let origin = origins.get(header);
    if (origin === undefined && !origins.has(header)) {
      const host = firstValue(header);
      origin = host ? normalizeOrigin(`${origins === this.httpsOrigins ? 'https' : 'http'}://${host}`) : undefined;
      if (origins.size > 1000) origins.clear();
      origins.set(header, origin);
    }
    return origin ?? this.base.origin;
  }

  /**
   * Whether the client's connection was https (PLAINTEXT signatures, transport warnings): TLS on
   * our own socket; or what a trusted proxy says in X-Forwarded-Proto (the base URL's scheme when
   * it says nothing); or an https base URL served through a TLS terminator on this host (a
   * loopback peer). A plain-http request that reached us directly is not made https by the
   * configured base URL.
   */
  secure(req: IncomingMessage): boolean {
    if ((req.socket as { encrypted?: boolean }).encrypted) return true;
    const httpsBase = this.base.protocol === 'https:';
    if (this.fromTrustedProxy(req)) {
      const proto = firstValue(req.headers['x-forwarded-proto']);
      return proto === undefined ? httpsBase : proto === 'https';
    }
    return httpsBase && this.config.baseUrlExplicit && isLoopback(req.socket.remoteAddress ?? '');
  }

  /**
   * The absolute URL the client addressed. `path` is the request target as received (path and
   * query); a path in the base URL is a prefix the reverse proxy removed, so it is put back.
   */
  publicUrl(req: IncomingMessage, path = req.url ?? '/'): string {
    return this.origin(req) + this.basePath + (path.startsWith('/') ? path : `/${path}`);
  }

  /** Absolute URL of one of applinks' own paths, for links and redirects (always the base URL). */
  url(path: string): string {
    return this.base.origin + this.basePath + path;
  }

  get baseUrl(): string {
    return this.config.baseUrl;
  }
}

const LOOPBACK = /^(127\.|::1$|::ffff:127\.)/;

/** True for 127.0.0.0/8 and ::1 (also as IPv4-mapped IPv6). */
export function isLoopback(address: string): boolean {
  return LOOPBACK.test(address);
}

export function firstValue(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined) return undefined;
  const comma = value.indexOf(',');
  return (comma < 0 ? value : value.slice(0, comma)).trim() || undefined;
}

/** Lower-cases scheme and host and drops default ports (RFC 5849 §3.4.1.2). Undefined when invalid. */
function normalizeOrigin(candidate: string): string | undefined {
  try {
    const url = new URL(candidate);
    if (url.pathname !== '/' || url.search || url.username) return undefined;
    return url.origin;
  } catch {
    return undefined;
  }
}
