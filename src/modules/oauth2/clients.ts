import { Type, type Static } from '@sinclair/typebox';
import type { LinkAuthSpec } from '../../auth/registry.js';
import { AppError } from '../../errors/index.js';
import { checkRedirectUriRegistration } from '../../protocols/oauth2/redirect-uri.js';
import { normalize, SCOPES, type Scope } from '../../protocols/oauth2/scopes.js';
import type { Services } from '../../services/index.js';
import type { LinkAuthRecord, LinkRecord } from '../../storage/repositories/links.js';

export const OAUTH2_TYPE = 'oauth2';

/** Client ids are unreserved characters only, so they travel unchanged in forms, URLs and Basic. */
export const CLIENT_ID_PATTERN = '^[A-Za-z0-9._~-]{8,128}$';

export const ScopeSchema = Type.Union(SCOPES.map((s) => Type.Literal(s)));

/**
 * The incoming `oauth2` configuration of a link: one OAuth 2.0 client. Its secret is not part of
 * it: secrets are generated, shown once and stored as hashes in their own table (see
 * `/api/v1/oauth2/clients`).
 */
export const ClientConfigSchema = Type.Object(
  {
    clientId: Type.String({ pattern: CLIENT_ID_PATTERN, description: 'The client_id. A new id is a new client: what the old one was issued is revoked.' }),
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'The application name on the consent page; the link name when left out.' })),
    confidential: Type.Boolean({ description: 'Confidential clients authenticate with a secret; public clients (native and browser apps) must use PKCE.' }),
    redirectUris: Type.Array(Type.String({ minLength: 1, maxLength: 2000 }), {
      maxItems: 20,
      description: 'Exact-match redirect URIs: https, or http://127.0.0.1 / http://[::1] (any port) for native apps.',
    }),
    scopes: Type.Array(ScopeSchema, { minItems: 1, maxItems: 4, description: 'The scopes this client may ask for.' }),
    requirePkce: Type.Optional(Type.Boolean({ description: 'Require PKCE from this confidential client too (always required from public clients).' })),
    serviceAccountUserId: Type.Optional(
      Type.Union([Type.String({ minLength: 1, maxLength: 100 }), Type.Null()], {
        description: 'A confidential client marked as a service account may use client_credentials, acting as this user.',
      }),
    ),
  },
  { additionalProperties: false },
);
export type ClientConfig = Static<typeof ClientConfigSchema>;

/** A registered client as the endpoints use it (shared between requests: read-only). */
export interface Client {
  readonly linkId: string;
  readonly linkName: string;
  readonly clientId: string;
  readonly name: string;
  readonly confidential: boolean;
  readonly redirectUris: readonly string[];
  readonly scopes: readonly Scope[];
  readonly requirePkce: boolean;
  readonly serviceAccountUserId: string | null;
}

// Link records are cached objects, replaced when they change: one Client view per record pair.
const views = new WeakMap<LinkAuthRecord, { link: LinkRecord; client: Client }>();

export function toClient(link: LinkRecord, auth: LinkAuthRecord): Client {
  const hit = views.get(auth);
  if (hit && hit.link === link) return hit.client;
  const client = buildClient(link, auth);
  views.set(auth, { link, client });
  return client;
}

function buildClient(link: LinkRecord, auth: LinkAuthRecord): Client {
  const c = auth.config as ClientConfig;
  return {
    linkId: link.id,
    linkName: link.name,
    clientId: c.clientId,
    name: c.name ?? link.name,
    confidential: c.confidential,
    redirectUris: c.redirectUris,
    scopes: normalize(c.scopes),
    requirePkce: !c.confidential || c.requirePkce === true,
    serviceAccountUserId: c.serviceAccountUserId ?? null,
  };
}

/** The `incoming` side of the `oauth2` authentication type. */
export function clientSpec(): LinkAuthSpec {
  return {
    schema: ClientConfigSchema,
    lookupKey: (config) => String(config.clientId),
    async validate(config: Record<string, unknown>, s: Services) {
      const c = config as ClientConfig;
      const rules = { dangerouslyAllowHttp: s.config.oauth2DangerouslyAllowHttpRedirects };
      const redirectUris = [...new Set(c.redirectUris.map((uri, i) => checkRedirectUriRegistration(uri, rules, `incoming.oauth2.redirectUris.${i}`)))];
      const serviceAccountUserId = c.serviceAccountUserId ?? null;
      if (serviceAccountUserId !== null) {
        if (!c.confidential) {
          throw new AppError('validation_failed', { field: 'incoming.oauth2.serviceAccountUserId', message: 'incoming.oauth2.serviceAccountUserId: only a confidential client can be a service account.' });
        }
        if (!(await s.store.users.findById(serviceAccountUserId))) {
          throw new AppError('validation_failed', { field: 'incoming.oauth2.serviceAccountUserId', message: 'incoming.oauth2.serviceAccountUserId: no such user.' });
        }
      }
      const out: ClientConfig = { clientId: c.clientId, confidential: c.confidential, redirectUris, scopes: normalize(c.scopes), serviceAccountUserId };
      if (c.name !== undefined) out.name = c.name.trim();
      if (c.requirePkce !== undefined) out.requirePkce = c.requirePkce;
      return out;
    },
    warnings(config) {
      const c = config as ClientConfig;
      const out: string[] = [];
      if (c.redirectUris.length === 0 && !c.serviceAccountUserId) out.push('The client has no redirect URI and is not a service account: it cannot obtain tokens.');
      if (c.redirectUris.some((u) => u.startsWith('http:') && !/^http:\/\/(127\.0\.0\.1|\[::1\])[:/?]/.test(u + '/'))) {
        out.push('A redirect URI uses plain http: authorization codes travel unencrypted.');
      }
      if (c.scopes.includes('SYSTEM_ADMIN')) out.push('The client may ask for SYSTEM_ADMIN: an administrator who consents hands it the whole system.');
      return out;
    },
  };
}
