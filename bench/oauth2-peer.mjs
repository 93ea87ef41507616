// The peer of the OAuth 2.0 benchmark, configured as ../shared/BENCHMARKS.md describes: panva's
// oidc-provider with its built-in in-memory adapter, one confidential client authenticating with
// client_secret_basic, client credentials and introspection enabled, opaque access tokens (no
// `resource` parameter is sent), a 600 s client-credentials TTL, and an RS256 key in jwks.
import { generateKeyPairSync } from 'node:crypto';
import http from 'node:http';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), alg: 'RS256', use: 'sig', kid: 'bench' };

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: process.env.CLIENT_ID,
      client_secret: process.env.CLIENT_SECRET,
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  scopes: ['read'],
  features: { clientCredentials: { enabled: true }, introspection: { enabled: true }, devInteractions: { enabled: false } },
  ttl: { ClientCredentials: 600 },
  jwks: { keys: [jwk] },
});
// oidc-provider logs every error event at this level; the benchmark only counts responses.
provider.on('server_error', (ctx, err) => console.error('server_error', err));

const server = http.createServer(provider.callback());
server.keepAliveTimeout = 60_000;
server.listen(port, '127.0.0.1', () => console.log(`listening ${issuer}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
