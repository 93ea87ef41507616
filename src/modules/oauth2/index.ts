import { OAuth2Repository } from './repository.js';
import type { ProtocolModule } from '../../auth/registry.js';
import { html } from '../../server/pages/html.js';
import type { Services } from '../../services/index.js';
import { bearerAuthenticator, unclaimedBearerAuthenticator, scopeRule } from './authenticator.js';
import { clientSpec, OAUTH2_TYPE } from './clients.js';
import { oauth2Api } from './api.js';
import { ClientManager } from './management.js';
import { oauth2Routes } from './routes.js';
import { OAuth2Service } from './service.js';

const instances = new WeakMap<Services, OAuth2Service>();

/** The OAuth 2.0 service of a container (the CLI and tests reach it through here). */
export function oauth2Of(s: Services): OAuth2Service {
  const service = instances.get(s);
  if (!service) throw new Error('the oauth2 module is not set up in this container');
  return service;
}

/**
 * OAuth 2.0 authorization server: 3-legged applications and OAuth 2.0 application links
 * (authorization code with PKCE, refresh rotation, client credentials for service accounts),
 * with the Data Center endpoints under /rest/oauth2/latest/ and RFC 8414 metadata. Weight 55:
 * above the shared tokens, a per-user consented protocol; never impersonating.
 */
export const oauth2Module: ProtocolModule = {
  id: 'oauth2',
  authTypes: [
    {
      id: OAUTH2_TYPE,
      title: 'OAuth 2.0 (authorization code with PKCE; client credentials for service accounts)',
      weight: 55,
      impersonating: false,
      incoming: clientSpec(),
    },
  ],
  ownedPrefixes: ['/rest/oauth2/'],
  setup(s) {
    const oauth = new OAuth2Service(s);
    instances.set(s, oauth);
    return {
      // Before the API-token authenticator (50): `Bearer alat_...` is ours, anything else is not.
      authenticators: [
        { order: 40, authenticator: bearerAuthenticator(s, oauth) },
        // After API tokens (50) and Basic (90), before the session cookie (95).
        { order: 92, authenticator: unclaimedBearerAuthenticator(s) },
      ],
      authorize: scopeRule(s),
      async routes(app) {
        await oauth2Routes(app, s, oauth);
        await oauth2Api(app, s, oauth);
      },
      authorizations: {
        list: (userId) => oauth.authorizationsOf(userId),
        revoke: (userId, id, actor) => oauth.revokeAuthorization(userId, id, actor),
        revokeForLink: (linkId, actor) => oauth.revokeLink(linkId, actor),
        revokeForUser: (trx, userId) => new OAuth2Repository(trx).revokeUser(userId),
      },
      // The developer area on the account page: the applications this user registered.
      async accountSection({ user }) {
        const apps = await new ClientManager(s, oauth).list(user.id);
        if (!s.config.oauth2DeveloperApps && apps.length === 0) return html``;
        return html`<h2>Your OAuth 2.0 applications</h2>
          <p>Applications you registered to act for users of ${s.config.appName}. Register, change, rotate secrets and delete them with the API at <code>/api/v1/me/oauth2/clients</code>.</p>
          ${
            apps.length === 0
              ? html`<p>You have registered no application.</p>`
              : html`<table id="oauth2-apps"><thead><tr><th>Name</th><th>Client id</th><th>Type</th><th>Scopes</th><th>Redirect URIs</th></tr></thead><tbody>
              ${apps.map((a) => html`<tr><td>${a.name}</td><td><code>${a.clientId}</code></td><td>${a.confidential ? 'confidential' : 'public'}</td><td>${a.scopes.join(' ')}</td><td>${a.redirectUris.join(' ')}</td></tr>`)}
              </tbody></table>`
          }`;
      },
      async onAuthRemoved(trx, linkId, direction, type) {
        if (direction === 'incoming' && (type === OAUTH2_TYPE || type === undefined)) await oauth.clientRemoved(trx, linkId);
      },
      onUserDeleted: (repos, userId) => oauth.serviceAccountDeleted(repos, userId),
      async onAuthChanged(change) {
        if (change.direction === 'incoming' && change.type === OAUTH2_TYPE) await oauth.clientChanged(change);
      },
      async onAuthSet(set) {
        if (set.direction === 'incoming' && set.type === OAUTH2_TYPE) return oauth.clientSet(set);
      },
      start() {
        const timers = [
          setInterval(() => void oauth.flushLastUsed().catch((err: unknown) => s.logger.warn({ err }, 'oauth2: could not write grant last-use times')), 10_000),
          // Data Center prunes every minute (PROTOCOLS.md §5.4).
          setInterval(() => void oauth.prune().catch((err: unknown) => s.logger.warn({ err }, 'oauth2: prune failed')), 60_000),
        ];
        for (const t of timers) t.unref();
        return async () => {
          for (const t of timers) clearInterval(t);
          await oauth.flushLastUsed().catch(() => undefined);
        };
      },
    };
  },
};
