import type { KeyObject } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import type { LinkAuthSpec } from '../../auth/registry.js';
import { AppError } from '../../errors/index.js';
import { parseRsaPublicKey, type SignatureMethod } from '../../protocols/oauth1/signature.js';
import type { Services } from '../../services/index.js';
import type { LinkAuthRecord, LinkRecord } from '../../storage/repositories/links.js';

/** The three authentication types of OAuth 1.0a (PROTOCOLS.md §3.3). */
export const OAUTH1_TYPE = 'oauth1';
export const OAUTH1_2LO_TYPE = 'oauth1-2lo';
export const OAUTH1_2LOI_TYPE = 'oauth1-2lo-impersonation';

/** The smallest RSA key a consumer may register. */
export const MIN_RSA_BITS = 2048;
/** The largest key whose signature fits the protocol parameter bound (validate.ts). */
export const MAX_RSA_BITS = 16_384;

/**
 * The incoming `oauth1` configuration of a link: one OAuth 1.0a consumer, as Jira's "Incoming
 * Authentication" page and the applinks-oauth REST entity hold it (PROTOCOLS.md §1.7), with an
 * HMAC shared secret as our extension. The switches say which kinds of OAuth the consumer may use.
 */
export const ConsumerConfigSchema = Type.Object(
  {
    consumerKey: Type.String({ minLength: 1, maxLength: 255, pattern: '^[\\x21-\\x7e]+$', description: 'The oauth_consumer_key the remote signs with (printable ASCII, no spaces).' }),
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'The application name on the consent page; the link name when left out.' })),
    description: Type.Optional(Type.String({ maxLength: 1000, description: 'Shown on the consent page.' })),
    publicKey: Type.Optional(
      Type.String({ minLength: 1, maxLength: 16_384, description: `The consumer's RSA public key (PEM, certificate or bare base64; ${MIN_RSA_BITS} to ${MAX_RSA_BITS} bits): it signs with RSA-SHA1.` }),
    ),
    sharedSecret: Type.Optional(Type.String({ minLength: 16, maxLength: 1024, description: 'Instead of a public key: a shared secret for HMAC-SHA1 (write-only, sealed at rest).' })),
    callback: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 2000 }), Type.Null()], { description: 'Where users return after consent when a request token names no callback.' })),
    allow3LO: Type.Optional(Type.Boolean({ description: '3-legged OAuth: users authorize the consumer on the consent page (default true).' })),
    allow2LO: Type.Optional(Type.Boolean({ description: '2-legged OAuth: requests with an empty token act as `executeAs` (default false).' })),
    executeAs: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 100 }), Type.Null()], { description: 'The username 2-legged requests act as; anonymous when null.' })),
    allow2LOImpersonation: Type.Optional(
      Type.Boolean({ description: '2-legged OAuth with impersonation: the consumer names the user (xoauth_requestor_id) and acts as them without consent (default false).' }),
    ),
  },
  { additionalProperties: false },
);
export type ConsumerConfig = Static<typeof ConsumerConfigSchema>;

export const IMPERSONATION_WARNING =
  '2-legged OAuth with impersonation lets this application act as any user it names, without that user signing in or consenting: enable it only when both applications share one user base and you trust the remote as much as this server.';

/** A registered consumer as the endpoints use it (built once per cached configuration record). */
export interface Consumer {
  readonly linkId: string;
  readonly linkName: string;
  readonly key: string;
  readonly name: string;
  readonly description: string | null;
  readonly callback: string | null;
  readonly rsaKey: KeyObject | null;
  readonly sharedSecret: string | null;
  readonly allow3LO: boolean;
  readonly allow2LO: boolean;
  readonly executeAs: string | null;
  readonly allow2LOImpersonation: boolean;
}

const views = new WeakMap<LinkAuthRecord, { link: LinkRecord; consumer: Consumer }>();

/** The consumer of a link configuration; the key is parsed and the secret opened once per record. */
export function toConsumer(link: LinkRecord, auth: LinkAuthRecord, openSecrets: (auth: LinkAuthRecord) => Record<string, unknown>): Consumer {
  const hit = views.get(auth);
  if (hit && hit.link === link) return hit.consumer;
  const c = auth.config as ConsumerConfig;
  const secret = openSecrets(auth).sharedSecret;
  const consumer: Consumer = {
    linkId: link.id,
    linkName: link.name,
    key: c.consumerKey,
    name: c.name ?? link.name,
    description: c.description ?? null,
    callback: c.callback ?? null,
    rsaKey: c.publicKey ? parseRsaPublicKey(c.publicKey).key : null,
    sharedSecret: typeof secret === 'string' ? secret : null,
    allow3LO: c.allow3LO !== false,
    allow2LO: c.allow2LO === true,
    executeAs: c.executeAs ?? null,
    allow2LOImpersonation: c.allow2LOImpersonation === true,
  };
  views.set(auth, { link, consumer });
  return consumer;
}

/** RFC 5849 §3.4: the methods a consumer may sign with. RSA consumers: RSA only (Jira's rule). */
export function allowedMethods(consumer: Pick<Consumer, 'rsaKey' | 'sharedSecret'>, secure: boolean): SignatureMethod[] {
  if (consumer.rsaKey) return ['RSA-SHA1', 'RSA-SHA256'];
  return secure ? ['HMAC-SHA1', 'HMAC-SHA256', 'PLAINTEXT'] : ['HMAC-SHA1', 'HMAC-SHA256'];
}

/** An absolute http(s) URL without credentials or fragment, else a validation error naming `field`. */
export function checkHttpUrl(value: string, field: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new AppError('validation_failed', { field, message: `${field}: must be an absolute http(s) URL.` });
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password || url.hash || /[\s\u0000-\u001f]/.test(value)) {
    throw new AppError('validation_failed', { field, message: `${field}: must be an absolute http(s) URL without credentials or fragment.` });
  }
  return value;
}

/** The `incoming` side of the `oauth1` type: a consumer registration. */
export function consumerSpec(): LinkAuthSpec {
  const field = (name: string) => `incoming.oauth1.${name}`;
  return {
    schema: ConsumerConfigSchema,
    secretFields: ['sharedSecret'],
    // A consumer given an RSA key now signs with it: the old shared secret goes.
    keepsSecret: (_name, input) => input.publicKey === undefined,
    lookupKey: (config) => String(config.consumerKey),
    async validate(config: Record<string, unknown>, s: Services) {
      const c = config as ConsumerConfig;
      if ((c.publicKey === undefined) === (c.sharedSecret === undefined)) {
        throw new AppError('validation_failed', {
          field: field('publicKey'),
          message: `${field('publicKey')}: give either the consumer's RSA public key (RSA-SHA1) or a shared secret (HMAC-SHA1), not both.`,
        });
      }
      const out: ConsumerConfig = {
        consumerKey: c.consumerKey,
        allow3LO: c.allow3LO !== false,
        allow2LO: c.allow2LO === true,
        executeAs: c.executeAs ?? null,
        allow2LOImpersonation: c.allow2LOImpersonation === true,
        callback: c.callback ? checkHttpUrl(c.callback, field('callback')) : null,
      };
      if (c.name !== undefined) out.name = c.name.trim();
      if (c.description !== undefined) out.description = c.description.trim();
      if (c.publicKey !== undefined) {
        let parsed;
        try {
          parsed = parseRsaPublicKey(c.publicKey);
        } catch (error) {
          throw new AppError('validation_failed', { field: field('publicKey'), message: `${field('publicKey')}: ${(error as Error).message}.` });
        }
        if (parsed.bits < MIN_RSA_BITS || parsed.bits > MAX_RSA_BITS) {
          const bound = parsed.bits < MIN_RSA_BITS ? `at least ${MIN_RSA_BITS}` : `at most ${MAX_RSA_BITS}`;
          throw new AppError('validation_failed', { field: field('publicKey'), message: `${field('publicKey')}: the key has ${parsed.bits} bits; ${bound} are required.` });
        }
        out.publicKey = parsed.pem;
      }
      if (c.sharedSecret !== undefined) out.sharedSecret = c.sharedSecret;
      if (out.executeAs !== null && out.executeAs !== undefined) {
        const user = await s.users.findByUsername(out.executeAs);
        if (!user) throw new AppError('validation_failed', { field: field('executeAs'), message: `${field('executeAs')}: no user "${out.executeAs}".` });
        out.executeAs = user.username;
      }
      return out;
    },
    warnings(config) {
      const c = config as ConsumerConfig;
      const out: string[] = [];
      if (c.allow2LOImpersonation) out.push(IMPERSONATION_WARNING);
      if (c.allow2LO && c.executeAs) out.push(`2-legged requests act as "${c.executeAs}" without any user consenting: they get everything that user may do.`);
      if (c.allow3LO === false && !c.allow2LO && !c.allow2LOImpersonation) out.push('Every kind of OAuth is switched off for this consumer: it cannot call in.');
      return out;
    },
  };
}

/** How we sign as a consumer towards one linked application. */
export const OutgoingIdentitySchema = {
  signatureMethod: Type.Optional(Type.Union([Type.Literal('RSA-SHA1'), Type.Literal('RSA-SHA256'), Type.Literal('HMAC-SHA1'), Type.Literal('HMAC-SHA256')], { description: 'Default RSA-SHA1 with our own key pair.' })),
  consumerKey: Type.Optional(Type.String({ minLength: 1, maxLength: 255, pattern: '^[\\x21-\\x7e]+$', description: 'The key the remote registered us under; ours (see consumer-info) when left out.' })),
  sharedSecret: Type.Optional(Type.String({ minLength: 1, maxLength: 1024, description: 'For HMAC signature methods: the secret the remote gave us (write-only).' })),
};

export const OutgoingThreeLeggedSchema = Type.Object(
  {
    ...OutgoingIdentitySchema,
    requestTokenUrl: Type.Optional(Type.String({ maxLength: 2000, description: 'Default: <link URL>/plugins/servlet/oauth/request-token (Jira, Confluence).' })),
    authorizeUrl: Type.Optional(Type.String({ maxLength: 2000, description: 'Default: <link URL>/plugins/servlet/oauth/authorize.' })),
    accessTokenUrl: Type.Optional(Type.String({ maxLength: 2000, description: 'Default: <link URL>/plugins/servlet/oauth/access-token.' })),
  },
  { additionalProperties: false },
);
export type OutgoingThreeLeggedConfig = Static<typeof OutgoingThreeLeggedSchema>;

export const OutgoingTwoLeggedSchema = Type.Object(OutgoingIdentitySchema, { additionalProperties: false });
export type OutgoingIdentityConfig = Static<typeof OutgoingTwoLeggedSchema>;

/** Checks shared by the outgoing sides of the three types. */
export function validateOutgoingIdentity(type: string, c: OutgoingIdentityConfig & Record<string, unknown>): Record<string, unknown> {
  const f = (name: string) => `outgoing.${type}.${name}`;
  const method = c.signatureMethod ?? 'RSA-SHA1';
  if (method.startsWith('HMAC') && (!c.sharedSecret || !c.consumerKey)) {
    throw new AppError('validation_failed', { field: f('sharedSecret'), message: `${f('sharedSecret')}: ${method} needs the consumerKey and sharedSecret the remote registered us with.` });
  }
  if (method.startsWith('RSA') && c.sharedSecret !== undefined) {
    throw new AppError('validation_failed', { field: f('sharedSecret'), message: `${f('sharedSecret')}: ${method} signs with our key pair; a shared secret is for HMAC methods.` });
  }
  const out: Record<string, unknown> = { ...c, signatureMethod: method };
  for (const name of ['requestTokenUrl', 'authorizeUrl', 'accessTokenUrl']) {
    const value = c[name];
    if (typeof value === 'string' && /^[a-z][a-z0-9+.-]*:/i.test(value)) checkHttpUrl(value, f(name));
    else if (typeof value === 'string' && !value.startsWith('/')) throw new AppError('validation_failed', { field: f(name), message: `${f(name)}: an absolute URL or a path below the link URL.` });
  }
  return out;
}
