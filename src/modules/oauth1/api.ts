import { Type } from '@sinclair/typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AppError } from '../../errors/index.js';
import { actorOf } from '../../services/audit.js';
import type { Services } from '../../services/index.js';
import { adminOnly, credentialAdminOnly, principalOf, requireUser } from '../../server/auth.js';
import { linkJson } from '../../server/routes/admin-api.js';
import * as S from '../../server/routes/schemas.js';
import { DANCE_START_PATH, type OAuth1Consumer } from './consumer.js';
import { OAUTH1_TYPE } from './consumers.js';
import type { OAuth1Provider } from './provider.js';
import { registerFromConsumerInfo } from './registration.js';
import { CONSUMER_INFO_PATH } from './routes.js';

const errors = { 400: S.ErrorBody, 401: S.ErrorBody, 403: S.ErrorBody, 404: S.ErrorBody, 409: S.ErrorBody, 502: S.ErrorBody };

const ConsumerIdentity = Type.Object({
  consumerKey: Type.String({ description: 'The key to register applinks under at the remote.' }),
  name: Type.String(),
  description: Type.String(),
  publicKey: Type.String({ description: 'RSA public key (PEM): the remote verifies our RSA-SHA1 signatures with it.' }),
  consumerInfoUrl: Type.String({ description: 'The Atlassian consumer-info document a remote can fetch to register us itself.' }),
  callbackUrl: Type.String(),
});

const AutoConfigure = Type.Object(
  {
    allow3LO: Type.Optional(Type.Boolean()),
    allow2LO: Type.Optional(Type.Boolean()),
    executeAs: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 100 }), Type.Null()])),
    allow2LOImpersonation: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

const OutgoingStatus = Type.Object({
  links: Type.Array(
    Type.Object({
      linkId: Type.String(),
      linkName: Type.String(),
      authorized: Type.Boolean(),
      authorizedAt: Type.Union([S.Time, Type.Null()]),
      authorizationUrl: Type.String({ description: 'Open in a browser signed in as this user to (re)authorize.' }),
    }),
  ),
});

/**
 * The OAuth 1.0a parts of the admin API: our consumer identity (what to register at a remote),
 * registering a remote's consumer from its consumer-info document (Atlassian's
 * `autoConfigure`), and a user's view of the applications applinks calls in their name.
 */
export async function oauth1Api(root: FastifyInstance, s: Services, _provider: OAuth1Provider, consumer: OAuth1Consumer): Promise<void> {
  const app = root.withTypeProvider<TypeBoxTypeProvider>();
  const admin = adminOnly(s);
  const credentialAdmin = credentialAdminOnly(s);
  const actor = async (request: FastifyRequest) => actorOf(await principalOf(s, request), request.ip);

  app.get('/api/v1/oauth1/consumer', { preValidation: admin, schema: { tags: ['oauth1'], summary: 'Our OAuth 1.0a consumer identity, to register at a remote', response: { 200: ConsumerIdentity, ...errors } } }, async () => {
    const id = await consumer.identity();
    return { consumerKey: id.key, name: id.name, description: id.description, publicKey: id.publicKeyPem, consumerInfoUrl: s.edge.url(CONSUMER_INFO_PATH), callbackUrl: id.callbackUrl };
  });

  app.post(
    '/api/v1/links/:id/incoming/oauth1/auto-configure',
    {
      preValidation: credentialAdmin,
      schema: {
        tags: ['oauth1'],
        summary: "Register the remote's consumer from its consumer-info document (its key, name and public key) on the link's incoming side",
        params: S.IdParams,
        body: AutoConfigure,
        response: { 200: S.Link, ...errors },
      },
    },
    async (request) => linkJson(await registerFromConsumerInfo(s, request.params.id, request.body, await actor(request))),
  );

  app.get('/api/v1/me/oauth1/outgoing', { schema: { tags: ['me'], summary: 'The linked applications applinks calls in your name with 3-legged OAuth, and whether you authorized it', response: { 200: OutgoingStatus, ...errors } } }, async (request) => {
    const p = await requireUser(s, request);
    const held = new Map((await consumer.heldFor(p.user.id)).map((h) => [h.linkId, h]));
    const links = (await s.links.list()).filter((l) => l.url && l.outgoing.some((o) => o.type === OAUTH1_TYPE));
    return {
      links: links.map((l) => ({
        linkId: l.id,
        linkName: l.name,
        authorized: held.has(l.id),
        authorizedAt: S.isoOrNull(held.get(l.id)?.createdAt ?? null),
        authorizationUrl: s.edge.url(`${DANCE_START_PATH}?applicationLinkID=${encodeURIComponent(l.id)}`),
      })),
    };
  });

  app.delete(
    '/api/v1/me/oauth1/outgoing/:id',
    { schema: { tags: ['me'], summary: 'Forget the token applinks holds for you at a linked application', params: S.IdParams, response: { 204: Type.Null(), ...errors } } },
    async (request, reply) => {
      const p = await requireUser(s, request);
      if (!(await consumer.forget(request.params.id, p.user.id))) throw new AppError('not_found', { message: 'applinks holds no token for you at this link.' });
      return reply.code(204).send(null);
    },
  );
}

