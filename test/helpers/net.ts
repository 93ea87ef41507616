import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A TCP port that was free a moment ago (for servers whose own URL must be configured first). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A small node:http host: answers every request with what it saw, as JSON, and records it. */
export async function echoUpstream(): Promise<{ url: string; seen: SeenRequest[]; close(): Promise<void> }> {
  const seen: SeenRequest[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const entry = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      seen.push(entry);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ host: 'echo', ...entry }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * A loopback redirect target (RFC 8252 §7.3) that records the URL the browser arrived with.
 * Only URLs carrying one of `marks` count (authorization responses; browsers also ask for
 * /favicon.ico): OAuth 2.0's `code`/`error` by default, OAuth 1.0a's `oauth_token`/`oauth_verifier`.
 */
export async function callbackServer(marks: readonly string[] = ['code', 'error']): Promise<{ port: number; url: string; next(): Promise<URL>; close(): Promise<void> }> {
  let waiting: ((url: URL) => void) | undefined;
  const arrived: URL[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', `http://${req.headers.host ?? '127.0.0.1'}`);
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<!doctype html><title>done</title><p>You can close this window.</p>');
    if (!marks.some((m) => url.searchParams.has(m))) return;
    if (waiting) {
      waiting(url);
      waiting = undefined;
    } else arrived.push(url);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    next: () => (arrived.length > 0 ? Promise.resolve(arrived.shift()!) : new Promise<URL>((resolve) => (waiting = resolve))),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
