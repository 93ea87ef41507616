import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { principalView, type Principal } from '../../auth/principal.js';
import { AppError } from '../../errors/index.js';
import { actorOf } from '../../services/audit.js';
import type { Services } from '../../services/index.js';
import { principalOf } from '../auth.js';
import { SESSION_COOKIE } from '../../services/sessions.js';
import { checkCsrf, cookieHeader, CSRF_FIELD, issueCsrfToken } from '../csrf.js';
import { html, sendPage, type SafeHtml } from './html.js';
import { ACCOUNT_PATH, signInRedirect, SIGN_OUT_PATH } from './sign-in.js';

const fmt = (ms: number | null) => (ms === null ? '—' : new Date(ms).toISOString().replace('T', ' ').slice(0, 16) + ' UTC');

/** The signed-in user of a page request, or a redirect to sign in. */
async function pageUser(s: Services, request: FastifyRequest, reply: FastifyReply): Promise<Principal | undefined> {
  let principal: Principal;
  try {
    principal = await principalOf(s, request);
  } catch {
    principal = { user: null } as Principal;
  }
  if (principal.user && principal.authType === 'session') return principal;
  await reply.code(303).header('location', signInRedirect(request.url)).send();
  return undefined;
}

function indicator(p: Principal): SafeHtml {
  const v = principalView(p);
  return html`<p>Signed in as <strong>${v.user?.displayName}</strong> (${v.user?.username})${v.user?.admin ? ', administrator' : ''},
    through a ${v.authType} over a ${p.warnings.some((w) => w.code === 'insecure-transport') ? 'plain HTTP' : 'secure'} connection.</p>
    ${v.warnings.map((w) => html`<p class="warning">${w.message}</p>`)}`;
}

async function accountPage(s: Services, request: FastifyRequest, reply: FastifyReply, principal: Principal, status: number, notice?: SafeHtml) {
  const user = principal.user!;
  const csrf = issueCsrfToken(s, request, reply);
  const tokens = await s.apiTokens.list(user.id);
  const authorizations = await s.authorizations.list(user.id);
  const sections = await Promise.all(s.runtimes.filter((r) => r.accountSection).map((r) => r.accountSection!({ user, csrf })));
  sendPage(
    reply,
    status,
    'Your account',
    html`<header><h1>Your account</h1>
        <form class="inline" method="post" action="${SIGN_OUT_PATH}"><input type="hidden" name="${CSRF_FIELD}" value="${csrf}"><button class="secondary" type="submit">Sign out</button></form>
      </header>
      ${indicator(principal)}
      ${notice ?? ''}
      <h2>API tokens</h2>
      <p>Scripts and tools use a token instead of your password: <code>Authorization: Bearer &lt;token&gt;</code>, or as the password with your username in Basic authentication.</p>
      ${
        tokens.length === 0
          ? html`<p>You have no API tokens.</p>`
          : html`<table><thead><tr><th>Name</th><th>Created</th><th>Last used</th><th>Expires</th><th></th></tr></thead><tbody>
          ${tokens.map(
            (t) => html`<tr><td>${t.name}</td><td>${fmt(t.createdAt)}</td><td>${fmt(t.lastUsedAt)}</td><td>${t.expiresAt === null ? 'never' : fmt(t.expiresAt)}</td>
              <td><form class="inline" method="post" action="${ACCOUNT_PATH}/tokens/${t.id}/revoke"><input type="hidden" name="${CSRF_FIELD}" value="${csrf}"><button class="danger" type="submit" aria-label="Revoke ${t.name}">Revoke</button></form></td></tr>`,
          )}</tbody></table>`
      }
      <form method="post" action="${ACCOUNT_PATH}/tokens">
        <input type="hidden" name="${CSRF_FIELD}" value="${csrf}">
        <label for="token-name">Token name</label>
        <input type="text" id="token-name" name="name" maxlength="200" required>
        <label for="token-expiry">Expires on (optional)</label>
        <input type="date" id="token-expiry" name="expires">
        <button type="submit">Create token</button>
      </form>
      <h2>Password</h2>
      <form method="post" action="${ACCOUNT_PATH}/password">
        <input type="hidden" name="${CSRF_FIELD}" value="${csrf}">
        <label for="current-password">Current password</label>
        <input type="password" id="current-password" name="currentPassword" autocomplete="current-password" required>
        <label for="new-password">New password</label>
        <input type="password" id="new-password" name="newPassword" autocomplete="new-password" minlength="8" required>
        <button type="submit">Change password</button>
      </form>
      <h2>Connected applications</h2>
      ${
        authorizations.length === 0
          ? html`<p>No application is authorized to act for you.</p>`
          : html`<p>These applications can act for you without your password. Revoke one and it loses access at once.</p>
          <table><thead><tr><th>Application</th><th>Can</th><th>Authorized</th><th>Last used</th><th></th></tr></thead><tbody>
          ${authorizations.map(
            (a) => html`<tr><td>${a.application.name}${a.application.linkName && a.application.linkName !== a.application.name ? html` <small>(${a.application.linkName})</small>` : ''}</td>
              <td>${a.scopes ? a.scopes.join(', ') : 'act as you'}</td><td>${fmt(a.createdAt)}</td><td>${fmt(a.lastUsedAt)}</td>
              <td><form class="inline" method="post" action="${ACCOUNT_PATH}/authorizations/${a.id}/revoke"><input type="hidden" name="${CSRF_FIELD}" value="${csrf}"><button class="danger" type="submit" aria-label="Revoke ${a.application.name}">Revoke</button></form></td></tr>`,
          )}</tbody></table>`
      }
      ${sections}`,
    s.config.appName,
  );
}

/** The user's own page: who they are, how they are connected, their API tokens, and module sections. */
export async function accountPages(app: FastifyInstance, s: Services): Promise<void> {
  app.get(ACCOUNT_PATH, { schema: { hide: true } }, async (request, reply) => {
    const principal = await pageUser(s, request, reply);
    if (principal) await accountPage(s, request, reply, principal, 200);
    return reply;
  });

  app.post(`${ACCOUNT_PATH}/tokens`, { schema: { hide: true } }, async (request, reply) => {
    const principal = await pageUser(s, request, reply);
    if (!principal) return reply;
    const form = (request.body ?? {}) as Record<string, unknown>;
    checkCsrf(s, request, form[CSRF_FIELD]);
    const name = typeof form.name === 'string' ? form.name.trim() : '';
    const expires = typeof form.expires === 'string' && form.expires ? Date.parse(`${form.expires}T23:59:59Z`) : null;
    try {
      if (!name || name.length > 200) throw new AppError('validation_failed', { field: 'name', message: 'Give the token a name of up to 200 characters.' });
      if (expires !== null && Number.isNaN(expires)) throw new AppError('validation_failed', { field: 'expires', message: 'The expiry date is not a date.' });
      const { token } = await s.apiTokens.create(principal.user!.id, { name, expiresAt: expires }, actorOf(principal, request.ip));
      await accountPage(s, request, reply, principal, 201, html`<div class="ok"><p>Your new token <strong>${name}</strong>. Copy it now: it is not shown again.</p><code class="secret" id="new-token">${token}</code></div>`);
    } catch (error) {
      if (!(error instanceof AppError) || error.status >= 500) throw error;
      await accountPage(s, request, reply, principal, error.status, html`<p class="error" role="alert">${error.message}</p>`);
    }
    return reply;
  });

  app.post(`${ACCOUNT_PATH}/password`, { schema: { hide: true } }, async (request, reply) => {
    const principal = await pageUser(s, request, reply);
    if (!principal) return reply;
    const form = (request.body ?? {}) as Record<string, unknown>;
    checkCsrf(s, request, form[CSRF_FIELD]);
    try {
      const user = await s.signIn.changePassword(principal.user!.id, String(form.currentPassword ?? ''), String(form.newPassword ?? ''), request.ip, actorOf(principal, request.ip));
      // Every session ended with the change; this browser continues in a new one.
      const { cookie } = await s.sessions.create(user.id, request.ip, request.headers['user-agent'] ?? null);
      reply.header('set-cookie', cookieHeader(s, SESSION_COOKIE, cookie, s.config.sessionTtlSeconds));
      await accountPage(s, request, reply, principal, 200, html`<p class="ok">Your password was changed. You were signed out everywhere else.</p>`);
    } catch (error) {
      if (!(error instanceof AppError) || error.status >= 500) throw error;
      await accountPage(s, request, reply, principal, error.status, html`<p class="error" role="alert">${error.message}</p>`);
    }
    return reply;
  });

  app.post(`${ACCOUNT_PATH}/authorizations/:id/revoke`, { schema: { hide: true } }, async (request, reply) => {
    const principal = await pageUser(s, request, reply);
    if (!principal) return reply;
    checkCsrf(s, request, ((request.body ?? {}) as Record<string, unknown>)[CSRF_FIELD]);
    if (!(await s.authorizations.revoke(principal.user!.id, (request.params as { id: string }).id, actorOf(principal, request.ip)))) {
      throw new AppError('not_found', { message: 'No such authorization.' });
    }
    return reply.code(303).header('location', ACCOUNT_PATH).send();
  });

  app.post(`${ACCOUNT_PATH}/tokens/:id/revoke`, { schema: { hide: true } }, async (request, reply) => {
    const principal = await pageUser(s, request, reply);
    if (!principal) return reply;
    checkCsrf(s, request, ((request.body ?? {}) as Record<string, unknown>)[CSRF_FIELD]);
    await s.apiTokens.revoke((request.params as { id: string }).id, actorOf(principal, request.ip), principal.user!.id);
    return reply.code(303).header('location', ACCOUNT_PATH).send();
  });
}
