import { closure, SCOPE_WORDS, type Scope } from '../../protocols/oauth2/scopes.js';
import { CSRF_FIELD } from '../../server/csrf.js';
import { html, type SafeHtml } from '../../server/pages/html.js';
import { ACCOUNT_PATH } from '../../server/pages/sign-in.js';
import type { UserRecord } from '../../storage/repositories/users.js';
import type { Client } from './clients.js';

/** The authorization request parameters the consent form carries back (everything but the decision). */
export const FORWARDED_PARAMS = ['response_type', 'client_id', 'redirect_uri', 'scope', 'state', 'code_challenge', 'code_challenge_method'] as const;

/**
 * The consent page: the application by name, what it will be able to do in words (every scope
 * the granted ones include), where the browser goes next, and Allow / Deny. Works without
 * JavaScript; the form posts back to the authorization endpoint with the CSRF token.
 */
export function consentPage(input: {
  appName: string;
  action: string;
  client: Client;
  user: UserRecord;
  requested: readonly Scope[];
  granted: readonly Scope[];
  redirectUri: string;
  params: Record<string, string | undefined>;
  csrf: string;
}): SafeHtml {
  const { client, user, granted, requested } = input;
  const reduced = requested.some((s) => !granted.includes(s)) && closure(granted).length < closure(requested).length;
  let destination = input.redirectUri;
  try {
    const url = new URL(input.redirectUri);
    destination = url.host;
  } catch {
    /* registered URIs always parse; keep the raw value otherwise */
  }
  return html`<h1>Allow ${client.name} to act for you?</h1>
    <p><strong>${client.name}</strong>${client.name !== client.linkName ? html` <small>(application link “${client.linkName}”)</small>` : ''}
      asks to use ${input.appName} as <strong>${user.displayName}</strong> (${user.username}), without your password. It will be able to:</p>
    <ul id="scopes">
      ${closure(granted).map((s) => html`<li data-scope="${s}"><strong>${s}</strong>: ${SCOPE_WORDS[s]}</li>`)}
    </ul>
    ${reduced ? html`<p class="warning">It asked for ${requested.join(' ')}; you are not an administrator, so it gets no more than you may do.</p>` : ''}
    <p>After you decide, your browser returns to <strong>${destination}</strong>. You can revoke this at any time from <a href="${ACCOUNT_PATH}">your account</a>.</p>
    <form method="post" action="${input.action}">
      <input type="hidden" name="${CSRF_FIELD}" value="${input.csrf}">
      ${FORWARDED_PARAMS.map((name) => (input.params[name] === undefined ? '' : html`<input type="hidden" name="${name}" value="${input.params[name]}">`))}
      <button type="submit" name="decision" value="allow" id="allow">Allow</button>
      <button type="submit" name="decision" value="deny" id="deny" class="secondary">Deny</button>
    </form>`;
}

/** A page for errors that must not be redirected (the client or redirect URI is not trusted yet). */
export function authorizationErrorPage(message: string): SafeHtml {
  return html`<h1>This application's request cannot be accepted</h1>
    <p class="error" role="alert">${message}</p>
    <p>The application that sent you here is misconfigured or is not registered. You were not redirected back to it, to keep your account safe.</p>
    <p><a href="${ACCOUNT_PATH}">Go to your account</a></p>`;
}
