import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { USERNAME_PATTERN } from '../../services/users.js';

/** Times in API responses are RFC 3339 strings. */
export const Time = Type.String({ format: 'date-time' });
export const iso = (ms: number) => new Date(ms).toISOString();
export const isoOrNull = (ms: number | null) => (ms === null ? null : iso(ms));
const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

export const ErrorBody = Type.Object(
  { error: Type.String(), message: Type.String(), field: Type.Optional(Type.String()) },
  { $id: 'Error', description: 'Every error: a stable code from the catalog, a message, and the field at fault.' },
);

export const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) });

// ---------- users
export const User = Type.Object({
  id: Type.String(),
  username: Type.String(),
  displayName: Type.String(),
  email: Nullable(Type.String()),
  admin: Type.Boolean(),
  disabled: Type.Boolean(),
  hasPassword: Type.Boolean(),
  groups: Type.Array(Type.String()),
  createdAt: Time,
  updatedAt: Time,
});

const Group = Type.String({ minLength: 1, maxLength: 100 });
const Password = Type.String({ minLength: 8, maxLength: 1024, description: 'Write-only.' });

export const UserCreate = Type.Object(
  {
    username: Type.String({ pattern: USERNAME_PATTERN, maxLength: 100 }),
    displayName: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    email: Type.Optional(Nullable(Type.String({ format: 'email', maxLength: 320 }))),
    password: Type.Optional(Nullable(Password)),
    admin: Type.Optional(Type.Boolean()),
    disabled: Type.Optional(Type.Boolean()),
    groups: Type.Optional(Type.Array(Group, { maxItems: 200 })),
  },
  { additionalProperties: false },
);
export type UserCreate = Static<typeof UserCreate>;

export const UserUpdate = Type.Partial(UserCreate, { additionalProperties: false });
export type UserUpdate = Static<typeof UserUpdate>;

export const UserList = Type.Object({ users: Type.Array(User), total: Type.Integer() });
export const UserListQuery = Type.Object(
  {
    search: Type.Optional(Type.String({ maxLength: 200 })),
    limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
    offset: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, default: 0 }),
  },
  { additionalProperties: false },
);

// ---------- API tokens
export const ApiToken = Type.Object({
  id: Type.String(),
  name: Type.String(),
  createdAt: Time,
  expiresAt: Nullable(Time),
  lastUsedAt: Nullable(Time),
  linkId: Nullable(Type.String({ description: 'The application link the token was issued for; it dies with the link.' })),
});
export const ApiTokenCreate = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    expiresAt: Type.Optional(Nullable(Type.String({ format: 'date-time', description: 'Optional expiry; absent or null never expires.' }))),
    linkId: Type.Optional(Nullable(Type.String({ minLength: 1, maxLength: 100, description: 'Issue the token for this application link.' }))),
  },
  { additionalProperties: false },
);
export const ApiTokenCreated = Type.Object({
  ...ApiToken.properties,
  token: Type.String({ description: 'The token itself. Shown this once; only its hash is stored.' }),
});
export const ApiTokenList = Type.Object({ tokens: Type.Array(ApiToken) });
export const TokenParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }), tokenId: Type.String({ minLength: 1, maxLength: 100 }) });

// ---------- principal (security indicator)
export const Principal = Type.Object({
  authenticated: Type.Boolean(),
  user: Nullable(
    Type.Object({
      id: Type.String(),
      username: Type.String(),
      displayName: Type.String(),
      email: Nullable(Type.String()),
      admin: Type.Boolean(),
      groups: Type.Array(Type.String()),
    }),
  ),
  link: Nullable(Type.Object({ id: Type.String(), name: Type.String() })),
  authType: Type.String(),
  scopes: Nullable(Type.Array(Type.String())),
  connection: Type.String(),
  warnings: Type.Array(Type.Object({ code: Type.String(), message: Type.String() })),
  csrfToken: Type.Optional(
    Type.String({ description: 'Signed in by the browser session only: the X-CSRF-Token value that changes through the API (POST, PUT, PATCH, DELETE) must carry.' }),
  ),
});

// ---------- links
export const AuthView = Type.Object({
  type: Type.String(),
  config: Type.Record(Type.String(), Type.Unknown(), { description: 'The non-secret configuration.' }),
  secretsSet: Type.Array(Type.String(), { description: 'Secret fields that hold a value; values are never returned.' }),
  warnings: Type.Array(Type.String()),
  updatedAt: Time,
});
export const Link = Type.Object({
  id: Type.String(),
  name: Type.String(),
  url: Nullable(Type.String()),
  applicationType: Type.String(),
  remoteApplicationId: Nullable(Type.String()),
  incoming: Type.Array(AuthView),
  outgoing: Type.Array(AuthView),
  primaryOutgoingType: Nullable(Type.String()),
  incomingOnly: Type.Boolean(),
  createdAt: Time,
  updatedAt: Time,
});
const SecretsByType = Type.Record(Type.String(), Type.Record(Type.String(), Type.String()));
/** What a write that creates or configures a link answers: the link, and the secrets it generated, this once. */
export const LinkWritten = Type.Object({
  ...Link.properties,
  issuedSecrets: Type.Optional(
    Type.Object(
      { incoming: Type.Optional(SecretsByType), outgoing: Type.Optional(SecretsByType) },
      {
        description:
          'Secrets this write generated, by side, type and field, e.g. incoming.oauth2.clientSecret when it created a confidential OAuth 2.0 client or made a public one confidential. Shown this once: only a hash is stored and no later answer contains them. Absent when the write generated none.',
      },
    ),
  ),
});
export const LinkList = Type.Object({ links: Type.Array(Link) });
export const LinkUpdate = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    url: Type.Optional(Nullable(Type.String({ maxLength: 2000 }))),
    applicationType: Type.Optional(Type.String({ maxLength: 50 })),
  },
  { additionalProperties: false },
);
export const LinkAuthParams = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 100 }),
  direction: Type.Union([Type.Literal('incoming'), Type.Literal('outgoing')]),
  type: Type.String({ minLength: 1, maxLength: 100 }),
});
export const LinkHealth = Type.Object({
  linkId: Type.String(),
  healthy: Type.Boolean(),
  checkedAt: Time,
  warnings: Type.Array(Type.String()),
  remote: Nullable(
    Type.Object({
      url: Type.String(),
      reachable: Type.Boolean(),
      status: Nullable(Type.Integer()),
      manifest: Nullable(Type.Record(Type.String(), Type.Unknown())),
      error: Nullable(Type.String()),
    }),
  ),
});
export const AuthTypeInfo = Type.Object({
  id: Type.String(),
  title: Type.String(),
  atlassianType: Nullable(Type.String()),
  weight: Type.Integer(),
  impersonating: Type.Boolean(),
  incoming: Nullable(Type.Object({ schema: Type.Record(Type.String(), Type.Unknown()), secretFields: Type.Array(Type.String()) })),
  outgoing: Nullable(Type.Object({ schema: Type.Record(Type.String(), Type.Unknown()), secretFields: Type.Array(Type.String()) })),
});

// ---------- audit
export const AuditEntry = Type.Object({
  id: Type.String(),
  at: Time,
  actor: Type.Object({ id: Nullable(Type.String()), name: Nullable(Type.String()), address: Nullable(Type.String()) }),
  action: Type.String(),
  target: Nullable(Type.Object({ type: Nullable(Type.String()), id: Nullable(Type.String()), name: Nullable(Type.String()) })),
  details: Type.Record(Type.String(), Type.Unknown()),
});
export const AuditList = Type.Object({ entries: Type.Array(AuditEntry), next: Nullable(Type.String()) });
export const AuditQuery = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 500, default: 100 }),
    before: Type.Optional(Type.String({ maxLength: 100 })),
    action: Type.Optional(Type.String({ maxLength: 100 })),
    target: Type.Optional(Type.String({ maxLength: 100 })),
  },
  { additionalProperties: false },
);

// ---------- authorized applications
export const AuthorizationView = Type.Object({
  id: Type.String(),
  type: Type.String(),
  application: Type.Object({ name: Type.String(), linkId: Nullable(Type.String()), linkName: Nullable(Type.String()) }),
  scopes: Nullable(Type.Array(Type.String())),
  createdAt: Time,
  lastUsedAt: Nullable(Time),
  expiresAt: Nullable(Time),
});
export const AuthorizationList = Type.Object({ authorizations: Type.Array(AuthorizationView) });
export const UserAuthorizationParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }), authorizationId: Type.String({ minLength: 1, maxLength: 200 }) });
