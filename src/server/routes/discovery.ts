import { sql } from 'kysely';
import type { FastifyInstance } from 'fastify';
import { manifestXml, prefersJsonManifest } from '../../protocols/applinks/manifest.js';
import type { Services } from '../../services/index.js';

/** Anonymous discovery documents: the Application Links manifest, the assertion JWKS, and health. */
export async function discovery(app: FastifyInstance, s: Services): Promise<void> {
  app.get('/rest/applinks/1.0/manifest', { schema: { hide: true } }, async (request, reply) => {
    const extensions: Record<string, string> = {};
    for (const runtime of s.runtimes) Object.assign(extensions, await runtime.manifestFields?.());
    const manifest = { ...s.identity.manifest(), extensions };
    // The answer depends on Accept: a shared cache must not give the XML to a JSON client.
    reply.header('vary', 'Accept');
    if (prefersJsonManifest(request.headers.accept)) {
      const { extensions: extra, ...standard } = manifest;
      return reply.type('application/json').send({ ...standard, ...extra });
    }
    return reply.type('application/xml; charset=utf-8').send(manifestXml(manifest));
  });

  app.get('/rest/applinks/1.0/jwks.json', { schema: { hide: true } }, async (_request, reply) => {
    // Make sure the key exists before it is asked for: a host may fetch the JWKS before any request.
    await s.keys.activeKey('assertion', 'ES256');
    return reply.header('cache-control', 'public, max-age=300').send(await s.assertions.jwks());
  });

  app.get('/applinks/health', { schema: { hide: true } }, async (_request, reply) => {
    try {
      await sql`select 1`.execute(s.store.db);
      return reply.header('cache-control', 'no-store').send({ status: 'ok' });
    } catch {
      return reply.code(503).header('cache-control', 'no-store').send({ status: 'store unreachable' });
    }
  });
}
