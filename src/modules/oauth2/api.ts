import { Type } from '@sinclair/typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AppError } from '../../errors/index.js';
import { closure, type Scope } from '../../protocols/oauth2/scopes.js';
import { actorOf } from '../../services/audit.js';
import type { Services } from '../../services/index.js';
import { adminOnly, credentialAdminOnly, principalOf, requireUnscoped, requireUser, usersOnly } from '../../server/auth.js';
import * as S from '../../server/routes/schemas.js';
import { CLIENT_ID_PATTERN, ScopeSchema } from './clients.js';
import { ClientManager, tooManyApps, type ClientView } from './management.js';
import { MAX_SECRET_GRACE_SECONDS, type OAuth2Service } from './service.js';

const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);
const errors = { 400: S.ErrorBody, 401: S.ErrorBody, 403: S.ErrorBody, 404: S.ErrorBody, 409: S.ErrorBody, 413: S.ErrorBody };

const RedirectUris = Type.Array(Type.String({ minLength: 1, maxLength: 2000 }), {
  maxItems: 20,
  description: 'Exact-match redirect URIs: https, or http://127.0.0.1 / http://[::1] with any port for native apps (RFC 8252 §7.3).',
});
const Scopes = Type.Array(ScopeSchema, { minItems: 1, maxItems: 4, description: 'The scopes the client may ask for (each includes the ones before it: READ, WRITE, ADMIN, SYSTEM_ADMIN).' });

export const OAuth2Client = Type.Object(
  {
    clientId: Type.String(),
    name: Type.String({ description: 'Shown on the consent page.' }),
    linkId: Type.String({ description: 'The application link the client belongs to: deleting it revokes everything.' }),
    linkName: Type.String(),
    confidential: Type.Boolean(),
    redirectUris: Type.Array(Type.String()),
    scopes: Type.Array(Type.String()),
    requirePkce: Type.Boolean({ description: 'Always true for public clients.' }),
    serviceAccount: Type.Union([Type.Object({ id: Type.String(), username: Type.String() }), Type.Null()], { description: 'The user client_credentials tokens act as.' }),
    owner: Type.Union([Type.Object({ id: Type.String(), username: Type.String() }), Type.Null()], { description: 'The user who registered it in the developer area.' }),
    secrets: Type.Array(Type.Object({ id: Type.String(), createdAt: S.Time, expiresAt: Type.Union([S.Time, Type.Null()]) }), {
      description: 'Live secrets (values are never shown again); one with an expiry is in its rotation grace period.',
    }),
    warnings: Type.Array(Type.String()),
    createdAt: S.Time,
    updatedAt: S.Time,
  },
  { $id: 'OAuth2Client' },
);
const OAuth2ClientCreated = Type.Object({
  ...OAuth2Client.properties,
  clientSecret: Type.Union([Type.String(), Type.Null()], { description: 'The secret of a confidential client. Shown this once; only its hash is stored.' }),
});
const OAuth2ClientUpdated = Type.Object({
  ...OAuth2Client.properties,
  clientSecret: Type.Optional(Type.String({ description: 'Only when the change made a public client confidential: its new secret, shown this once.' })),
});
const OAuth2ClientList = Type.Object({ clients: Type.Array(OAuth2Client) });
const ClientParams = Type.Object({ clientId: Type.String({ minLength: 1, maxLength: 128 }) });

const AdminCreate = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200, description: 'The application name; also the name of the link created for it.' }),
    linkId: Type.Optional(Type.String({ maxLength: 100, description: 'Add the client to this existing link instead of creating one.' })),
    url: Type.Optional(Nullable(Type.String({ maxLength: 2000, description: 'URL of the remote application, for a new link.' }))),
    applicationType: Type.Optional(Type.String({ maxLength: 50 })),
    confidential: Type.Optional(Type.Boolean({ default: true })),
    redirectUris: RedirectUris,
    scopes: Type.Optional(Scopes),
    requirePkce: Type.Optional(Type.Boolean()),
    serviceAccount: Type.Optional(Nullable(Type.String({ maxLength: 100, description: 'Username: the client may use client_credentials, acting as this user.' }))),
    clientId: Type.Optional(Type.String({ pattern: CLIENT_ID_PATTERN, description: 'Generated (32 hex characters) when left out.' })),
  },
  { additionalProperties: false },
);
const AdminUpdate = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    confidential: Type.Optional(Type.Boolean()),
    redirectUris: Type.Optional(RedirectUris),
    scopes: Type.Optional(Scopes),
    requirePkce: Type.Optional(Type.Boolean()),
    serviceAccount: Type.Optional(Nullable(Type.String({ maxLength: 100 }))),
  },
  { additionalProperties: false },
);
const DeveloperCreate = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 150 }),
    confidential: Type.Optional(Type.Boolean({ default: true })),
    redirectUris: Type.Array(Type.String({ minLength: 1, maxLength: 2000 }), { minItems: 1, maxItems: 20 }),
    scopes: Type.Optional(Scopes),
    requirePkce: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
const DeveloperUpdate = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 150 })),
    redirectUris: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 2000 }), { minItems: 1, maxItems: 20 })),
    scopes: Type.Optional(Scopes),
    requirePkce: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
const Rotate = Type.Object(
  { graceSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_SECRET_GRACE_SECONDS, description: 'How long the previous secret keeps working; APPLINKS_OAUTH2_SECRET_GRACE_SECONDS when left out.' })) },
  { additionalProperties: false },
);
const Rotated = Type.Object({ clientSecret: Type.String({ description: 'The new secret, shown this once.' }), client: OAuth2Client });
const DeleteQuery = Type.Object(
  { deleteLink: Type.Boolean({ default: false, description: 'Delete the whole link, not only its OAuth 2.0 client.' }) },
  { additionalProperties: false },
);

export function clientJson(v: ClientView) {
  return {
    ...v,
    secrets: v.secrets.map((x) => ({ id: x.id, createdAt: S.iso(x.createdAt), expiresAt: S.isoOrNull(x.expiresAt) })),
    createdAt: S.iso(v.createdAt),
    updatedAt: S.iso(v.updatedAt),
  };
}

/**
 * The admin API for OAuth 2.0 clients (/api/v1/oauth2/clients) and the developer area where
 * users register their own applications (/api/v1/me/oauth2/clients, when
 * APPLINKS_OAUTH2_DEVELOPER_APPS allows). Both are thin: ClientManager does the work.
 */
export async function oauth2Api(root: FastifyInstance, s: Services, oauth: OAuth2Service): Promise<void> {
  const app = root.withTypeProvider<TypeBoxTypeProvider>();
  const manager = new ClientManager(s, oauth);
  const admin = adminOnly(s);
  const credentialAdmin = credentialAdminOnly(s);
  const anyUser = usersOnly(s);
  const actor = async (request: FastifyRequest) => actorOf(await principalOf(s, request), request.ip);

  // ---------- administrators
  app.get('/api/v1/oauth2/clients', { preValidation: admin, schema: { tags: ['oauth2'], summary: 'List OAuth 2.0 clients', response: { 200: OAuth2ClientList, ...errors } } }, async () => ({
    clients: (await manager.list()).map(clientJson),
  }));
  app.post(
    '/api/v1/oauth2/clients',
    { preValidation: credentialAdmin, schema: { tags: ['oauth2'], summary: 'Register an OAuth 2.0 client on a link (the secret is shown once)', body: AdminCreate, response: { 201: OAuth2ClientCreated, ...errors } } },
    async (request, reply) => {
      const b = request.body;
      const { client, clientSecret } = await manager.create(
        {
          name: b.name,
          redirectUris: b.redirectUris,
          ...(b.linkId !== undefined ? { linkId: b.linkId } : {}),
          ...(b.url !== undefined ? { url: b.url } : {}),
          ...(b.applicationType !== undefined ? { applicationType: b.applicationType } : {}),
          ...(b.confidential !== undefined ? { confidential: b.confidential } : {}),
          ...(b.scopes !== undefined ? { scopes: b.scopes as Scope[] } : {}),
          ...(b.requirePkce !== undefined ? { requirePkce: b.requirePkce } : {}),
          ...(b.serviceAccount !== undefined ? { serviceAccount: b.serviceAccount } : {}),
          ...(b.clientId !== undefined ? { clientId: b.clientId } : {}),
        },
        await actor(request),
      );
      return reply.code(201).header('location', `/api/v1/oauth2/clients/${client.clientId}`).send({ ...clientJson(client), clientSecret: clientSecret ?? null });
    },
  );
  app.get(
    '/api/v1/oauth2/clients/:clientId',
    { preValidation: admin, schema: { tags: ['oauth2'], summary: 'Get an OAuth 2.0 client', params: ClientParams, response: { 200: OAuth2Client, ...errors } } },
    async (request) => clientJson(await manager.view(await manager.byClientId(request.params.clientId))),
  );
  app.patch(
    '/api/v1/oauth2/clients/:clientId',
    {
      preValidation: credentialAdmin,
      schema: {
        tags: ['oauth2'],
        summary: 'Change an OAuth 2.0 client (changing confidential revokes everything it holds; made confidential, it gets a new secret, shown once)',
        params: ClientParams,
        body: AdminUpdate,
        response: { 200: OAuth2ClientUpdated, ...errors },
      },
    },
    async (request) => {
      const b = request.body;
      const client = await manager.byClientId(request.params.clientId);
      const updated = await manager.update(client, { ...b, ...(b.scopes ? { scopes: b.scopes as Scope[] } : {}) } as Parameters<ClientManager['update']>[1], await actor(request));
      return { ...clientJson(updated.client), ...(updated.clientSecret !== undefined ? { clientSecret: updated.clientSecret } : {}) };
    },
  );
  app.delete(
    '/api/v1/oauth2/clients/:clientId',
    {
      preValidation: admin,
      schema: { tags: ['oauth2'], summary: 'Remove an OAuth 2.0 client and revoke everything issued to it', params: ClientParams, querystring: DeleteQuery, response: { 204: Type.Null(), ...errors } },
    },
    async (request, reply) => {
      await manager.delete(await manager.byClientId(request.params.clientId), await actor(request), request.query.deleteLink);
      return reply.code(204).send(null);
    },
  );
  app.post(
    '/api/v1/oauth2/clients/:clientId/secret',
    {
      preValidation: credentialAdmin,
      schema: { tags: ['oauth2'], summary: 'Rotate the client secret; the previous one works during the grace period', params: ClientParams, body: Rotate, response: { 200: Rotated, ...errors } },
    },
    async (request) => {
      const client = await manager.byClientId(request.params.clientId);
      const clientSecret = await oauth.rotateSecret(client, request.body?.graceSeconds ?? s.config.oauth2SecretGraceSeconds, await actor(request));
      return { clientSecret, client: clientJson(await manager.view(client)) };
    },
  );

  // ---------- the developer area: a user's own 3-legged applications
  // With the developer area switched off, a user still sees and deletes the applications
  // registered before; only registering and changing them is refused.
  const developer = async (request: FastifyRequest, changes = true) => {
    const p = await requireUser(s, request);
    // A scoped credential (an OAuth token) must not register applications that act for the user.
    requireUnscoped(p, 'Applications can be managed');
    if (changes) manager.checkDeveloperInput(undefined);
    // Read from the store, not the session's cache: deleted meanwhile (another instance), the user is asked to sign in again.
    const user = await s.store.users.findById(p.user.id);
    if (!user) throw new AppError('unauthenticated', { message: 'Your account was removed.' });
    return { user, actor: actorOf(p, request.ip) };
  };
  const defaultScopes = (): Scope[] => closure([s.config.oauth2DeveloperMaxScope === 'READ' ? 'READ' : 'WRITE']);

  app.get('/api/v1/me/oauth2/clients', { preValidation: anyUser, schema: { tags: ['me'], summary: 'My OAuth 2.0 applications (developer area)', response: { 200: OAuth2ClientList, ...errors } } }, async (request) => {
    const { user } = await developer(request, false);
    return { clients: (await manager.list(user.id)).map(clientJson) };
  });
  app.post(
    '/api/v1/me/oauth2/clients',
    { preValidation: anyUser, schema: { tags: ['me'], summary: 'Register an OAuth 2.0 application of mine (the secret is shown once)', body: DeveloperCreate, response: { 201: OAuth2ClientCreated, ...errors } } },
    async (request, reply) => {
      const { user, actor: who } = await developer(request);
      const b = request.body;
      manager.checkDeveloperInput(b.scopes as Scope[] | undefined);
      if ((await manager.count(user.id)) >= s.config.oauth2DeveloperMaxApps) throw tooManyApps(s.config.oauth2DeveloperMaxApps);
      const { client, clientSecret } = await manager.create(
        {
          name: b.name,
          redirectUris: b.redirectUris,
          scopes: (b.scopes as Scope[] | undefined) ?? defaultScopes(),
          ...(b.confidential !== undefined ? { confidential: b.confidential } : {}),
          ...(b.requirePkce !== undefined ? { requirePkce: b.requirePkce } : {}),
        },
        who,
        user,
        s.config.oauth2DeveloperMaxApps,
      );
      return reply.code(201).header('location', `/api/v1/me/oauth2/clients/${client.clientId}`).send({ ...clientJson(client), clientSecret: clientSecret ?? null });
    },
  );
  app.get(
    '/api/v1/me/oauth2/clients/:clientId',
    { preValidation: anyUser, schema: { tags: ['me'], summary: 'One of my OAuth 2.0 applications', params: ClientParams, response: { 200: OAuth2Client, ...errors } } },
    async (request) => {
      const { user } = await developer(request, false);
      return clientJson(await manager.view(await manager.ownedBy(request.params.clientId, user)));
    },
  );
  app.patch(
    '/api/v1/me/oauth2/clients/:clientId',
    { preValidation: anyUser, schema: { tags: ['me'], summary: 'Change one of my OAuth 2.0 applications', params: ClientParams, body: DeveloperUpdate, response: { 200: OAuth2Client, ...errors } } },
    async (request) => {
      const { user, actor: who } = await developer(request);
      const b = request.body;
      manager.checkDeveloperInput(b.scopes as Scope[] | undefined);
      const client = await manager.ownedBy(request.params.clientId, user);
      return clientJson((await manager.update(client, { ...b, ...(b.scopes ? { scopes: b.scopes as Scope[] } : {}) } as Parameters<ClientManager['update']>[1], who)).client);
    },
  );
  app.delete(
    '/api/v1/me/oauth2/clients/:clientId',
    { preValidation: anyUser, schema: { tags: ['me'], summary: 'Delete one of my OAuth 2.0 applications and revoke everything issued to it', params: ClientParams, response: { 204: Type.Null(), ...errors } } },
    async (request, reply) => {
      const { user, actor: who } = await developer(request, false);
      await manager.delete(await manager.ownedBy(request.params.clientId, user), who, true);
      return reply.code(204).send(null);
    },
  );
  app.post(
    '/api/v1/me/oauth2/clients/:clientId/secret',
    { preValidation: anyUser, schema: { tags: ['me'], summary: 'Rotate the secret of one of my applications', params: ClientParams, body: Rotate, response: { 200: Rotated, ...errors } } },
    async (request) => {
      const { user, actor: who } = await developer(request);
      const client = await manager.ownedBy(request.params.clientId, user);
      const clientSecret = await oauth.rotateSecret(client, request.body?.graceSeconds ?? s.config.oauth2SecretGraceSeconds, who);
      return { clientSecret, client: clientJson(await manager.view(client)) };
    },
  );
}
