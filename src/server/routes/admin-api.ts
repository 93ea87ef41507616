import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { principalView } from '../../auth/principal.js';
import type { LinkAuthSpec } from '../../auth/registry.js';
import { AppError } from '../../errors/index.js';
import { apiTokenView } from '../../services/api-tokens.js';
import { actorOf } from '../../services/audit.js';
import type { Authorization } from '../../services/authorizations.js';
import type { Services } from '../../services/index.js';
import type { LinkView, LinkWritten } from '../../services/links.js';
import type { ApiTokenRecord } from '../../storage/repositories/api-tokens.js';
import type { UserRecord } from '../../storage/repositories/users.js';
import { adminOnly, credentialAdminOnly, principalOf, requireUnscoped, requireUser, usersOnly } from '../auth.js';
import { issueCsrfToken } from '../csrf.js';
import { validatorCompiler } from '../validation.js';
import * as S from './schemas.js';

const errors = { 400: S.ErrorBody, 401: S.ErrorBody, 403: S.ErrorBody, 404: S.ErrorBody, 409: S.ErrorBody, 413: S.ErrorBody, 429: S.ErrorBody };

export function userJson(u: UserRecord) {
  return {
    id: u.id,
    username: u.username,
    displayName: u.displayName,
    email: u.email,
    admin: u.isAdmin,
    disabled: u.disabled,
    hasPassword: u.passwordHash !== null,
    groups: u.groups,
    createdAt: S.iso(u.createdAt),
    updatedAt: S.iso(u.updatedAt),
  };
}

export function tokenJson(t: ApiTokenRecord) {
  const v = apiTokenView(t);
  return { id: v.id, name: v.name, createdAt: S.iso(v.createdAt), expiresAt: S.isoOrNull(v.expiresAt), lastUsedAt: S.isoOrNull(v.lastUsedAt), linkId: v.linkId };
}

export function authorizationJson(a: Authorization) {
  return { ...a, createdAt: S.iso(a.createdAt), lastUsedAt: S.isoOrNull(a.lastUsedAt), expiresAt: S.isoOrNull(a.expiresAt) };
}

export function linkJson(l: LinkView) {
  return {
    ...l,
    incoming: l.incoming.map((a) => ({ ...a, updatedAt: S.iso(a.updatedAt) })),
    outgoing: l.outgoing.map((a) => ({ ...a, updatedAt: S.iso(a.updatedAt) })),
    createdAt: S.iso(l.createdAt),
    updatedAt: S.iso(l.updatedAt),
  };
}

/** A link as a write answers it: with `issuedSecrets` when the write generated any (shown this once). */
export function linkWrittenJson(l: LinkWritten) {
  return { ...linkJson(l), ...(l.issuedSecrets ? { issuedSecrets: l.issuedSecrets } : {}) };
}

function parseExpiry(value: string | null | undefined): number | null {
  if (value === undefined || value === null) return null;
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new AppError('validation_failed', { field: 'expiresAt', message: 'expiresAt: must be an RFC 3339 date-time.' });
  return ms;
}

/** The admin API under /api/v1, plus the self-service routes under /api/v1/me. */
export async function adminApi(root: FastifyInstance, s: Services): Promise<void> {
  const app = root.withTypeProvider<TypeBoxTypeProvider>();
  const admin = adminOnly(s);
  const credentialAdmin = credentialAdminOnly(s);
  const anyUser = usersOnly(s);
  const actor = async (request: FastifyRequest) => actorOf(await principalOf(s, request), request.ip);
  const createToken = async (userId: string, body: Static<typeof S.ApiTokenCreate>, request: FastifyRequest) => {
    const { token, record } = await s.apiTokens.create(userId, { name: body.name, expiresAt: parseExpiry(body.expiresAt), linkId: body.linkId ?? null }, await actor(request));
    return { ...tokenJson(record), token };
  };

  // ---------- who am I (the security indicator as JSON)
  app.get(
    '/api/v1/me',
    { schema: { tags: ['me'], summary: 'The principal of this request and how it is connected', response: { 200: S.Principal, ...errors } } },
    async (request, reply) => {
      const principal = await principalOf(s, request);
      // A page of ours (the console) reads the CSRF value here; another origin cannot read this answer.
      return principal.authType === 'session' ? { ...principalView(principal), csrfToken: issueCsrfToken(s, request, reply) } : principalView(principal);
    },
  );

  // ---------- own API tokens
  app.get('/api/v1/me/tokens', { preValidation: anyUser, schema: { tags: ['me'], summary: 'List my API tokens', response: { 200: S.ApiTokenList, ...errors } } }, async (request) => {
    const p = await requireUser(s, request);
    return { tokens: (await s.apiTokens.list(p.user.id)).map(tokenJson) };
  });
  app.post(
    '/api/v1/me/tokens',
    { preValidation: anyUser, schema: { tags: ['me'], summary: 'Create an API token (shown once)', body: S.ApiTokenCreate, response: { 201: S.ApiTokenCreated, ...errors } } },
    async (request, reply) => {
      const p = await requireUser(s, request);
      requireUnscoped(p, 'API tokens can be created');
      // A token tied to a link speaks for that application (X-Applinks-Link): an administrator's choice.
      if (request.body.linkId !== undefined && request.body.linkId !== null && !p.user.isAdmin) {
        throw new AppError('forbidden', { message: 'Only administrators may tie a token to an application link.' });
      }
      return reply.code(201).send(await createToken(p.user.id, request.body, request));
    },
  );
  app.delete(
    '/api/v1/me/tokens/:id',
    { preValidation: anyUser, schema: { tags: ['me'], summary: 'Revoke one of my API tokens', params: S.IdParams, response: { 204: Type.Null(), ...errors } } },
    async (request, reply) => {
      const p = await requireUser(s, request);
      requireUnscoped(p, 'API tokens can be revoked');
      await s.apiTokens.revoke(request.params.id, await actor(request), p.user.id);
      return reply.code(204).send(null);
    },
  );

  app.put(
    '/api/v1/me/password',
    {
      preValidation: anyUser,
      schema: {
        tags: ['me'],
        summary: 'Change my password (ends all my sessions)',
        body: Type.Object({ currentPassword: Type.String({ maxLength: 1024 }), newPassword: Type.String({ minLength: 8, maxLength: 1024 }) }, { additionalProperties: false }),
        response: { 204: Type.Null(), ...errors },
      },
    },
    async (request, reply) => {
      const p = await requireUser(s, request);
      requireUnscoped(p, 'The password can be changed');
      await s.signIn.changePassword(p.user.id, request.body.currentPassword, request.body.newPassword, request.ip, await actor(request));
      return reply.code(204).send(null);
    },
  );

  // ---------- own authorized applications
  app.get(
    '/api/v1/me/authorizations',
    { preValidation: anyUser, schema: { tags: ['me'], summary: 'Applications I authorized to act for me', response: { 200: S.AuthorizationList, ...errors } } },
    async (request) => {
      const p = await requireUser(s, request);
      return { authorizations: (await s.authorizations.list(p.user.id)).map(authorizationJson) };
    },
  );
  app.delete(
    '/api/v1/me/authorizations/:id',
    { preValidation: anyUser, schema: { tags: ['me'], summary: 'Revoke an application I authorized', params: S.IdParams, response: { 204: Type.Null(), ...errors } } },
    async (request, reply) => {
      const p = await requireUser(s, request);
      requireUnscoped(p, 'Authorizations can be revoked');
      if (!(await s.authorizations.revoke(p.user.id, request.params.id, await actor(request)))) throw new AppError('not_found', { message: 'No such authorization.' });
      return reply.code(204).send(null);
    },
  );

  // ---------- users
  app.get('/api/v1/users', { preValidation: admin, schema: { tags: ['users'], summary: 'List users', querystring: S.UserListQuery, response: { 200: S.UserList, ...errors } } }, async (request) => {
    const q = request.query;
    const { users, total } = await s.users.list({ limit: q.limit, offset: q.offset, ...(q.search ? { search: q.search } : {}) });
    return { users: users.map(userJson), total };
  });
  app.post('/api/v1/users', { preValidation: admin, schema: { tags: ['users'], summary: 'Create a user', body: S.UserCreate, response: { 201: S.User, ...errors } } }, async (request, reply) => {
    const b = request.body;
    if (b.password !== undefined || b.admin === true) requireUnscoped(await principalOf(s, request), 'Passwords and administrator rights can be given');
    const user = await s.users.create(
      {
        username: b.username,
        ...(b.displayName !== undefined ? { displayName: b.displayName } : {}),
        ...(b.email !== undefined ? { email: b.email } : {}),
        ...(b.password !== undefined ? { password: b.password } : {}),
        ...(b.admin !== undefined ? { isAdmin: b.admin } : {}),
        ...(b.disabled !== undefined ? { disabled: b.disabled } : {}),
        ...(b.groups !== undefined ? { groups: b.groups } : {}),
      },
      await actor(request),
    );
    return reply.code(201).header('location', `/api/v1/users/${user.id}`).send(userJson(user));
  });
  app.get('/api/v1/users/:id', { preValidation: admin, schema: { tags: ['users'], summary: 'Get a user', params: S.IdParams, response: { 200: S.User, ...errors } } }, async (request) =>
    userJson(await s.users.get(request.params.id)),
  );
  app.patch(
    '/api/v1/users/:id',
    { preValidation: admin, schema: { tags: ['users'], summary: 'Update, disable or enable a user', params: S.IdParams, body: S.UserUpdate, response: { 200: S.User, ...errors } } },
    async (request) => {
      const b = request.body;
      const p = await principalOf(s, request);
      if (b.password !== undefined || b.admin !== undefined) requireUnscoped(p, 'Passwords and administrator rights can be changed');
      const self = p.user!;
      if (request.params.id === self.id && (b.disabled === true || b.admin === false)) {
        throw new AppError('validation_failed', { field: b.disabled === true ? 'disabled' : 'admin', message: 'You cannot disable yourself or remove your own administrator rights.' });
      }
      const user = await s.users.update(
        request.params.id,
        {
          ...(b.username !== undefined ? { username: b.username } : {}),
          ...(b.displayName !== undefined ? { displayName: b.displayName } : {}),
          ...(b.email !== undefined ? { email: b.email } : {}),
          ...(b.password !== undefined ? { password: b.password } : {}),
          ...(b.admin !== undefined ? { isAdmin: b.admin } : {}),
          ...(b.disabled !== undefined ? { disabled: b.disabled } : {}),
          ...(b.groups !== undefined ? { groups: b.groups } : {}),
        },
        await actor(request),
      );
      return userJson(user);
    },
  );
  app.delete('/api/v1/users/:id', { preValidation: admin, schema: { tags: ['users'], summary: 'Delete a user', params: S.IdParams, response: { 204: Type.Null(), ...errors } } }, async (request, reply) => {
    if (request.params.id === (await principalOf(s, request)).user!.id) {
      throw new AppError('validation_failed', { field: 'id', message: 'You cannot delete yourself.' });
    }
    await s.users.delete(request.params.id, await actor(request));
    return reply.code(204).send(null);
  });
  app.get('/api/v1/users/:id/tokens', { preValidation: admin, schema: { tags: ['users'], summary: "List a user's API tokens", params: S.IdParams, response: { 200: S.ApiTokenList, ...errors } } }, async (request) => {
    await s.users.get(request.params.id);
    return { tokens: (await s.apiTokens.list(request.params.id)).map(tokenJson) };
  });
  app.post(
    '/api/v1/users/:id/tokens',
    { preValidation: credentialAdmin, schema: { tags: ['users'], summary: 'Create an API token for a user (shown once)', params: S.IdParams, body: S.ApiTokenCreate, response: { 201: S.ApiTokenCreated, ...errors } } },
    async (request, reply) => {
      return reply.code(201).send(await createToken(request.params.id, request.body, request));
    },
  );
  app.delete(
    '/api/v1/users/:id/tokens/:tokenId',
    { preValidation: admin, schema: { tags: ['users'], summary: "Revoke a user's API token", params: S.TokenParams, response: { 204: Type.Null(), ...errors } } },
    async (request, reply) => {
      await s.apiTokens.revoke(request.params.tokenId, await actor(request), request.params.id);
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/api/v1/users/:id/authorizations',
    { preValidation: admin, schema: { tags: ['users'], summary: 'Applications a user authorized', params: S.IdParams, response: { 200: S.AuthorizationList, ...errors } } },
    async (request) => {
      await s.users.get(request.params.id);
      return { authorizations: (await s.authorizations.list(request.params.id)).map(authorizationJson) };
    },
  );
  app.delete(
    '/api/v1/users/:id/authorizations',
    {
      preValidation: admin,
      schema: { tags: ['users'], summary: 'Revoke every application a user authorized (OAuth 1.0a tokens, OAuth 2.0 grants and consents)', params: S.IdParams, response: { 200: Type.Object({ revoked: Type.Integer() }), ...errors } },
    },
    async (request) => ({ revoked: await s.authorizations.revokeAllOfUser(request.params.id, await actor(request)) }),
  );
  app.delete(
    '/api/v1/users/:id/authorizations/:authorizationId',
    { preValidation: admin, schema: { tags: ['users'], summary: "Revoke an application's authorization for a user", params: S.UserAuthorizationParams, response: { 204: Type.Null(), ...errors } } },
    async (request, reply) => {
      if (!(await s.authorizations.revoke(request.params.id, request.params.authorizationId, await actor(request)))) throw new AppError('not_found', { message: 'No such authorization.' });
      return reply.code(204).send(null);
    },
  );

  // ---------- links
  const LinkCreate = Type.Object(
    {
      name: Type.String({ minLength: 1, maxLength: 200 }),
      url: Type.Optional(Type.Union([Type.String({ maxLength: 2000 }), Type.Null()], { description: 'Absent or null for an incoming-only link.' })),
      applicationType: Type.Optional(Type.String({ maxLength: 50 })),
      incoming: Type.Optional(
        Type.Object(Object.fromEntries(s.registry.configurable('incoming').map((t) => [t.id, Type.Optional(t.incoming!.schema)])), { additionalProperties: false }),
      ),
      outgoing: Type.Optional(
        Type.Object(Object.fromEntries(s.registry.configurable('outgoing').map((t) => [t.id, Type.Optional(t.outgoing!.schema)])), { additionalProperties: false }),
      ),
    },
    { additionalProperties: false },
  );
  app.get('/api/v1/auth-types', { preValidation: admin, schema: { tags: ['links'], summary: 'The registry of authentication types', response: { 200: Type.Object({ types: Type.Array(S.AuthTypeInfo) }), ...errors } } }, async () => ({
    types: s.registry.all().map((t) => ({
      id: t.id,
      title: t.title,
      atlassianType: t.atlassianType ?? null,
      weight: t.weight,
      impersonating: t.impersonating,
      incoming: t.incoming ? { schema: t.incoming.schema as Record<string, unknown>, secretFields: [...(t.incoming.secretFields ?? [])] } : null,
      outgoing: t.outgoing ? { schema: t.outgoing.schema as Record<string, unknown>, secretFields: [...(t.outgoing.secretFields ?? [])] } : null,
    })),
  }));
  app.get('/api/v1/links', { preValidation: admin, schema: { tags: ['links'], summary: 'List application links', response: { 200: S.LinkList, ...errors } } }, async () => ({
    links: (await s.links.list()).map(linkJson),
  }));
  app.post('/api/v1/links', { preValidation: admin, schema: { tags: ['links'], summary: 'Create an application link (secrets it generates, such as a confidential OAuth 2.0 client\'s, are answered once in issuedSecrets)', body: LinkCreate, response: { 201: S.LinkWritten, ...errors } } }, async (request, reply) => {
    const b = request.body as { name: string; url?: string | null; applicationType?: string; incoming?: Record<string, Record<string, unknown>>; outgoing?: Record<string, Record<string, unknown>> };
    if (b.incoming || b.outgoing) requireUnscoped(await principalOf(s, request), 'Authentication settings can be given');
    const link = await s.links.create(
      {
        name: b.name,
        url: b.url ?? null,
        ...(b.applicationType !== undefined ? { applicationType: b.applicationType } : {}),
        ...(b.incoming ? { incoming: b.incoming } : {}),
        ...(b.outgoing ? { outgoing: b.outgoing } : {}),
      },
      await actor(request),
    );
    return reply.code(201).header('location', `/api/v1/links/${link.id}`).send(linkWrittenJson(link));
  });
  app.get('/api/v1/links/:id', { preValidation: admin, schema: { tags: ['links'], summary: 'Get an application link', params: S.IdParams, response: { 200: S.Link, ...errors } } }, async (request) =>
    linkJson(await s.links.get(request.params.id)),
  );
  app.patch('/api/v1/links/:id', { preValidation: admin, schema: { tags: ['links'], summary: 'Rename or re-point a link', params: S.IdParams, body: S.LinkUpdate, response: { 200: S.Link, ...errors } } }, async (request) => {
    const b = request.body;
    return linkJson(
      await s.links.update(
        request.params.id,
        { ...(b.name !== undefined ? { name: b.name } : {}), ...(b.url !== undefined ? { url: b.url } : {}), ...(b.applicationType !== undefined ? { applicationType: b.applicationType } : {}) },
        await actor(request),
      ),
    );
  });
  app.delete(
    '/api/v1/links/:id',
    { preValidation: admin, schema: { tags: ['links'], summary: 'Delete a link and revoke everything issued through it', params: S.IdParams, response: { 204: Type.Null(), ...errors } } },
    async (request, reply) => {
      await s.links.delete(request.params.id, await actor(request));
      return reply.code(204).send(null);
    },
  );
  const setAuthSummary =
    "secret fields left out keep their values; a secret it generates, such as the clientSecret of an OAuth 2.0 client made confidential, is answered once in issuedSecrets";
  // One documented route per configurable type and side, so the OpenAPI document carries each
  // configuration's own schema. The body is checked by the links service against exactly that
  // schema (the CLI reaches it directly), with errors naming `<direction>.<type>.<field>`.
  for (const direction of ['incoming', 'outgoing'] as const) {
    for (const descriptor of s.registry.configurable(direction)) {
      app.put(
        `/api/v1/links/:id/${direction}/${descriptor.id}`,
        {
          preValidation: credentialAdmin,
          validatorCompiler: checkedByService,
          schema: {
            tags: ['links'],
            summary: `Set ${descriptor.title} on the ${direction} side of a link (${setAuthSummary})`,
            params: S.IdParams,
            body: writableConfigSchema(descriptor[direction]!),
            response: { 200: S.LinkWritten, ...errors },
          },
        },
        async (request) => linkWrittenJson(await s.links.setAuth(request.params.id, direction, descriptor.id, request.body as Record<string, unknown>, await actor(request))),
      );
    }
  }
  // Any other type or side: the service answers what cannot be configured there.
  app.put(
    '/api/v1/links/:id/:direction/:type',
    {
      preValidation: credentialAdmin,
      schema: {
        hide: true,
        tags: ['links'],
        summary: `Set one authentication type's configuration on one side of a link (${setAuthSummary})`,
        params: S.LinkAuthParams,
        body: ANY_CONFIG,
        response: { 200: S.LinkWritten, ...errors },
      },
    },
    async (request) => {
      const { id, direction, type } = request.params;
      return linkWrittenJson(await s.links.setAuth(id, direction, type, request.body, await actor(request)));
    },
  );
  app.delete(
    '/api/v1/links/:id/:direction/:type',
    { preValidation: admin, schema: { tags: ['links'], summary: 'Remove one authentication type from one side of a link', params: S.LinkAuthParams, response: { 200: S.Link, ...errors } } },
    async (request) => {
      const { id, direction, type } = request.params;
      return linkJson(await s.links.deleteAuth(id, direction, type, await actor(request)));
    },
  );
  app.delete(
    '/api/v1/links/:id/authorizations',
    { preValidation: admin, schema: { tags: ['links'], summary: 'Revoke every authorization issued through a link (the link stays)', params: S.IdParams, response: { 200: Type.Object({ revoked: Type.Integer() }), ...errors } } },
    async (request) => {
      await s.links.get(request.params.id);
      return { revoked: await s.authorizations.revokeForLink(request.params.id, await actor(request)) };
    },
  );
  app.get('/api/v1/links/:id/health', { preValidation: admin, schema: { tags: ['links'], summary: 'Check the remote of a link', params: S.IdParams, response: { 200: S.LinkHealth, ...errors } } }, async (request) => {
    const h = await s.links.health(request.params.id);
    return { ...h, checkedAt: S.iso(h.checkedAt) };
  });

  // ---------- audit
  app.get('/api/v1/audit', { preValidation: admin, schema: { tags: ['audit'], summary: 'Read the audit log, newest first', querystring: S.AuditQuery, response: { 200: S.AuditList, ...errors } } }, async (request) => {
    const q = request.query;
    const entries = await s.audit.list({ limit: q.limit, ...(q.before ? { before: q.before } : {}), ...(q.action ? { action: q.action } : {}), ...(q.target ? { targetId: q.target } : {}) });
    return {
      entries: entries.map((e) => ({
        id: e.id,
        at: S.iso(e.at),
        actor: { id: e.actorId, name: e.actorName, address: e.address },
        action: e.action,
        target: e.targetType || e.targetId || e.targetName ? { type: e.targetType, id: e.targetId, name: e.targetName } : null,
        details: e.details,
      })),
      next: entries.length === q.limit ? entries[entries.length - 1]!.id : null,
    };
  });
}

/** The body of a link-configuration PUT as the route checks it: a JSON object (the service checks the type's schema). */
const ANY_CONFIG = Type.Record(Type.String(), Type.Unknown());

/**
 * Validates a documented link-configuration route's body as ANY_CONFIG (an object, no NUL) and
 * everything else as usual: the type's own schema documents the body and the service applies it.
 */
const checkedByService: typeof validatorCompiler = (route) => validatorCompiler(route.httpPart === 'body' ? { ...route, schema: ANY_CONFIG } : route);

/** A type's configuration schema as written through the API: secret fields are write-only and may be left out to keep them. */
function writableConfigSchema(spec: LinkAuthSpec): Record<string, unknown> {
  const schema = JSON.parse(JSON.stringify(spec.schema)) as { required?: string[]; properties?: Record<string, Record<string, unknown>> };
  for (const name of spec.secretFields ?? []) {
    const property = schema.properties?.[name];
    if (property) property.description = `${property.description ? `${String(property.description)} ` : ''}Secret: never returned; left out, the stored value is kept.`;
  }
  if (schema.required) schema.required = schema.required.filter((name) => !(spec.secretFields ?? []).includes(name));
  if (schema.required?.length === 0) delete schema.required;
  return schema;
}
