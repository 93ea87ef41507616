import { OAuth1Repository } from './repository.js';
import type { ProtocolModule } from '../../auth/registry.js';
import type { OutgoingSigner } from '../../outgoing/types.js';
import { CSRF_FIELD } from '../../server/csrf.js';
import { html } from '../../server/pages/html.js';
import type { Services } from '../../services/index.js';
import { oauth1Api } from './api.js';
import { oauth1Authenticator } from './authenticator.js';
import { DANCE_START_PATH, OAuth1Consumer } from './consumer.js';
import {
  consumerSpec,
  OAUTH1_2LO_TYPE,
  OAUTH1_2LOI_TYPE,
  OAUTH1_TYPE,
  OutgoingThreeLeggedSchema,
  OutgoingTwoLeggedSchema,
  validateOutgoingIdentity,
  type OutgoingIdentityConfig,
} from './consumers.js';
import { OAuth1Provider } from './provider.js';
import { CONSUMER_INFO_PATH, FORGET_PATH_PREFIX, oauth1Routes } from './routes.js';
import { sealContexts } from './tables.js';

const instances = new WeakMap<Services, { provider: OAuth1Provider; consumer: OAuth1Consumer }>();

/** The OAuth 1.0a provider and consumer of a container (the CLI, the API and tests reach them here). */
export function oauth1Of(s: Services): { provider: OAuth1Provider; consumer: OAuth1Consumer } {
  const found = instances.get(s);
  if (!found) throw new Error('the oauth1 module is not set up in this container');
  return found;
}

/** The signers are found through the container they sign for (the module list is static). */
function lazySigner(pick: (consumer: OAuth1Consumer) => OutgoingSigner): OutgoingSigner {
  return {
    sign: (request, ctx) => pick(oauth1Of(ctx.services).consumer).sign(request, ctx),
    rejected: async (response, ctx) => pick(oauth1Of(ctx.services).consumer).rejected?.(response, ctx),
  };
}

const outgoingSpec = (type: string, schema: typeof OutgoingTwoLeggedSchema | typeof OutgoingThreeLeggedSchema) => ({
  schema,
  secretFields: ['sharedSecret'],
  // Switched to RSA (the default method), we sign with our key pair: the old shared secret goes.
  keepsSecret: (_name: string, input: Record<string, unknown>) => typeof input.signatureMethod === 'string' && input.signatureMethod.startsWith('HMAC'),
  validate: (config: Record<string, unknown>) => validateOutgoingIdentity(type, config as OutgoingIdentityConfig & Record<string, unknown>),
});

/** Whom users' remote tokens belong to: our consumer key at these endpoints' hosts (defaults follow the link URL). */
function remotePartyOf(config: Record<string, unknown>): string {
  return JSON.stringify([config.consumerKey ?? null, ...['requestTokenUrl', 'authorizeUrl', 'accessTokenUrl'].map((name) => originOf(config[name]))]);
}

/** The origin of an absolute endpoint URL; a path (below the link URL) or nothing follows the link. */
function originOf(value: unknown): string | null {
  if (typeof value !== 'string' || value.startsWith('/')) return null;
  try {
    return new URL(value).origin;
  } catch {
    return value;
  }
}

/**
 * OAuth 1.0a in both directions, wire-compatible with Jira and Confluence (PROTOCOLS.md §1).
 * Incoming, one consumer per link (`oauth1` on the incoming side) with switches for 3-legged,
 * 2-legged and 2-legged with impersonation; outgoing, applinks signs with its own RSA key.
 * Weights (ours): impersonation 70 acts for any user without a dance, 3-legged 60 per consenting
 * user, 2-legged 30 as one fixed user.
 */
export const oauth1Module: ProtocolModule = {
  id: 'oauth1',
  authTypes: [
    {
      id: OAUTH1_TYPE,
      title: 'OAuth 1.0a, 3-legged (users consent; RSA-SHA1 as Jira, or HMAC-SHA1)',
      atlassianType: 'com.atlassian.applinks.api.auth.types.OAuthAuthenticationProvider',
      weight: 60,
      impersonating: false,
      incoming: consumerSpec(),
      outgoing: { ...outgoingSpec(OAUTH1_TYPE, OutgoingThreeLeggedSchema), signer: lazySigner((c) => c.threeLeggedSigner()), forUsersOnly: true },
    },
    {
      id: OAUTH1_2LOI_TYPE,
      title: 'OAuth 1.0a, 2-legged with impersonation (the caller names the user)',
      atlassianType: 'com.atlassian.applinks.api.auth.types.TwoLeggedOAuthWithImpersonationAuthenticationProvider',
      weight: 70,
      impersonating: true,
      incomingVia: OAUTH1_TYPE,
      outgoing: { ...outgoingSpec(OAUTH1_2LOI_TYPE, OutgoingTwoLeggedSchema), signer: lazySigner((c) => c.twoLeggedSigner(OAUTH1_2LOI_TYPE)), forUsersOnly: true },
    },
    {
      id: OAUTH1_2LO_TYPE,
      title: 'OAuth 1.0a, 2-legged (acts as one configured user, or anonymously)',
      atlassianType: 'com.atlassian.applinks.api.auth.types.TwoLeggedOAuthAuthenticationProvider',
      weight: 30,
      impersonating: false,
      incomingVia: OAUTH1_TYPE,
      outgoing: { ...outgoingSpec(OAUTH1_2LO_TYPE, OutgoingTwoLeggedSchema), signer: lazySigner((c) => c.twoLeggedSigner(OAUTH1_2LO_TYPE)) },
    },
  ],
  ownedPrefixes: ['/plugins/servlet/oauth/', '/plugins/servlet/applinks/'],
  sealedColumns: [
    { table: 'oauth1_request_tokens', keyColumns: ['token_hash'], column: 'secret_sealed', context: (r) => sealContexts.requestSecret(String(r.token_hash)) },
    { table: 'oauth1_access_tokens', keyColumns: ['token_hash'], column: 'secret_sealed', context: (r) => sealContexts.accessSecret(String(r.token_hash)) },
    ...(['token_sealed', 'secret_sealed', 'session_handle_sealed'] as const).map((column) => ({
      table: 'oauth1_outgoing_tokens',
      keyColumns: ['link_id', 'user_id'],
      column,
      context: (r: Record<string, unknown>) => sealContexts.outgoing(column, String(r.link_id), String(r.user_id)),
    })),
    ...(['token_sealed', 'secret_sealed'] as const).map((column) => ({
      table: 'oauth1_outgoing_requests',
      keyColumns: ['link_id', 'user_id'],
      column,
      context: (r: Record<string, unknown>) => sealContexts.pending(column, String(r.link_id), String(r.user_id)),
    })),
  ],
  setup(s) {
    const provider = new OAuth1Provider(s);
    const consumer = new OAuth1Consumer(s);
    instances.set(s, { provider, consumer });
    return {
      // After the bearer authenticators (40, 50): `Authorization: OAuth` and signed queries are ours.
      authenticators: [{ order: 60, authenticator: oauth1Authenticator(s, provider) }],
      async routes(app) {
        await oauth1Routes(app, s, provider, consumer);
        await oauth1Api(app, s, provider, consumer);
      },
      authorizations: {
        list: (userId) => provider.authorizationsOf(userId),
        revoke: (userId, id, actor) => provider.revokeAuthorization(userId, id, actor),
        revokeForLink: (linkId, actor) => provider.revokeLink(linkId, actor),
        revokeForUser: (trx, userId) => new OAuth1Repository(trx).revokeUser(userId, 'revoked-for-user', s.clock.now()),
      },
      // The links this user authorized applinks to use for them, and those waiting for it.
      async accountSection({ user, csrf }) {
        const held = await consumer.heldFor(user.id);
        const links = (await s.links.list()).filter((l) => l.url && l.outgoing.some((o) => o.type === OAUTH1_TYPE));
        if (links.length === 0 && held.length === 0) return html``;
        const heldIds = new Set(held.map((h) => h.linkId));
        return html`<h2>Applications ${s.config.appName} uses for you</h2>
          <p>With your authorization, ${s.config.appName} calls these applications in your name (OAuth 1.0a).</p>
          <table id="oauth1-outgoing"><thead><tr><th>Application</th><th>Status</th><th></th></tr></thead><tbody>
          ${links.map(
            (l) => html`<tr><td>${l.name}</td><td>${heldIds.has(l.id) ? 'authorized' : 'not authorized'}</td><td>${
              heldIds.has(l.id)
                ? html`<form class="inline" method="post" action="${FORGET_PATH_PREFIX}/${l.id}/forget"><input type="hidden" name="${CSRF_FIELD}" value="${csrf}"><button class="danger" type="submit">Forget</button></form>`
                : html`<a href="${DANCE_START_PATH}?applicationLinkID=${l.id}">Authorize</a>`
            }</td></tr>`,
          )}</tbody></table>`;
      },
      async onAuthRemoved(trx, linkId, direction, type) {
        if (direction === 'incoming' && (type === OAUTH1_TYPE || type === undefined)) await provider.consumerRemoved(trx, linkId);
        // Users' tokens at the remote were obtained with the outgoing 3-legged configuration: they go with it.
        if (direction === 'outgoing' && type === OAUTH1_TYPE) return consumer.remoteGone(trx, linkId);
        return undefined;
      },
      onLinkMoved: (trx, linkId) => consumer.remoteGone(trx, linkId),
      // Another consumer key or token host is another party: users' tokens must not be sent to it.
      async onAuthChanged({ trx, linkId, direction, type, before, after }) {
        if (direction === 'outgoing' && type === OAUTH1_TYPE && remotePartyOf(before) !== remotePartyOf(after)) return consumer.remoteGone(trx, linkId);
        return undefined;
      },
      // Where a remote administrator finds what to register for us (our extension of the manifest).
      async manifestFields() {
        const id = await consumer.identity();
        return { oauthConsumerKey: id.key, oauthConsumerInfoUrl: s.edge.url(CONSUMER_INFO_PATH) };
      },
      start() {
        // The consumer identity (key pair and key) exists from the first start, not the first use.
        void consumer.identity().catch((err: unknown) => s.logger.warn({ err }, 'oauth1: could not create the consumer identity'));
        const timers = [
          setInterval(() => void provider.flushLastUsed().catch((err: unknown) => s.logger.warn({ err }, 'oauth1: could not write token last-use times')), 10_000),
          setInterval(() => void provider.prune().catch((err: unknown) => s.logger.warn({ err }, 'oauth1: prune failed')), 60_000),
        ];
        for (const t of timers) t.unref();
        return async () => {
          for (const t of timers) clearInterval(t);
          await provider.flushLastUsed().catch(() => undefined);
        };
      },
    };
  },
};
