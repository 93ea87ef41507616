import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SeenRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  bodySha256: string;
  bodyLength: number;
}

/**
 * A host application for gateway tests. It records what reached it and answers from the
 * identity headers: `/rest/api/2/myself` as Jira would (from X-Applinks-User), `/download/<n>`
 * with n bytes, anything else with a JSON echo of what it saw.
 */
export async function startUpstream(): Promise<{ url: string; seen: SeenRequest[]; close(): Promise<void> }> {
  const seen: SeenRequest[] = [];
  const server = http.createServer((req, res) => {
    const hash = createHash('sha256');
    let length = 0;
    req.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      length += chunk.length;
    });
    req.on('end', () => {
      const record: SeenRequest = { method: req.method!, url: req.url!, headers: req.headers, bodySha256: hash.digest('hex'), bodyLength: length };
      seen.push(record);
      const user = req.headers['x-applinks-user'];
      if (req.url?.startsWith('/rest/api/2/myself')) {
        if (!user) {
          res.writeHead(401, { 'content-type': 'application/json' });
          return res.end('{"errorMessages":["You are not authenticated."]}');
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(JSON.stringify({ name: user, key: user, displayName: user, active: true, self: `http://upstream/rest/api/2/user?username=${String(user)}` }));
      }
      if (req.url?.startsWith('/rest/api/2/serverInfo')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(JSON.stringify({ baseUrl: 'http://upstream', version: '9.12.0', versionNumbers: [9, 12, 0], deploymentType: 'Server', buildNumber: 912000, serverTitle: 'Test upstream' }));
      }
      const download = /^\/download\/(\d+)$/.exec(req.url ?? '');
      if (download) {
        const size = Number(download[1]);
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
        const chunk = Buffer.alloc(64 * 1024, 7);
        let left = size;
        const pump = () => {
          while (left > 0) {
            const n = Math.min(left, chunk.length);
            left -= n;
            if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return res.once('drain', pump);
          }
          res.end();
        };
        return pump();
      }
      res.writeHead(200, { 'content-type': 'application/json', 'set-cookie': 'host_session=abc; Path=/' });
      res.end(JSON.stringify(record));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
