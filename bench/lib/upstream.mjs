// A trivial upstream for benchmarks: answers a small body and echoes the user header it got.
import http from 'node:http';

const body = Buffer.from('{"hello":"world"}');
const server = http.createServer((req, res) => {
  res.writeHead(200, {
    'content-type': 'application/json',
    'content-length': body.length,
    'x-seen-user': req.headers['x-applinks-user'] ?? '',
  });
  res.end(body);
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => console.log(`listening http://127.0.0.1:${server.address().port}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
