// The baseline of every gateway benchmark: node:http + undici Pool, no authentication, the same
// forwarding technique as the gateway (pool.stream straight into the response).
import http from 'node:http';
import { Pool } from 'undici';

const HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host']);
const upstream = new URL(process.env.UPSTREAM);
// Fixed headers to add (a benchmark's reference configuration); none for the baseline itself.
const ADD = process.env.ADD_HEADERS ? JSON.parse(process.env.ADD_HEADERS) : undefined;
const pool = new Pool(upstream.origin, { connections: 256, pipelining: 1, keepAliveTimeout: 30_000 });

const server = http.createServer((req, res) => {
  const headers = {};
  for (const name in req.headers) if (!HOP.has(name)) headers[name] = req.headers[name];
  if (ADD) for (const name in ADD) headers[name] = ADD[name];
  pool.stream(
    { path: req.url, method: req.method, headers, body: req.method === 'GET' || req.method === 'HEAD' ? null : req, opaque: res },
    ({ statusCode, headers: h, opaque }) => {
      const out = {};
      for (const name in h) if (!HOP.has(name)) out[name] = h[name];
      opaque.writeHead(statusCode, out);
      return opaque;
    },
    (err) => {
      if (err && !res.headersSent) {
        res.writeHead(502);
        res.end();
      }
    },
  );
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => console.log(`listening http://127.0.0.1:${server.address().port}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
