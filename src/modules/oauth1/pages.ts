import { CSRF_FIELD } from '../../server/csrf.js';
import { html, type SafeHtml } from '../../server/pages/html.js';
import { ACCOUNT_PATH } from '../../server/pages/sign-in.js';
import type { UserRecord } from '../../storage/repositories/users.js';
import { durationInWords } from '../../util/duration.js';
import type { Consumer } from './consumers.js';

export const AUTHORIZE_PATH = '/plugins/servlet/oauth/authorize';

function hostOf(url: string | null): string | null {
  if (!url) return null;
  try {
    return new URL(url).host;
  } catch {
    return null;
  }
}

/**
 * The OAuth 1.0a consent page: the application by name and link, what it will be able to do in
 * words (OAuth 1.0a has no scopes: everything the user may do), where the browser goes next,
 * and Allow / Deny. The form posts `oauth_token` (and a 1.0 client's `oauth_callback`) back
 * with the CSRF token and `approve=Allow` as Atlassian's page does (PROTOCOLS.md §1.6).
 */
export function consentPage(input: { appName: string; lifetimeSeconds: number; consumer: Consumer; user: UserRecord; token: string; callback: string | null; oauthCallbackParam: string | undefined; csrf: string }): SafeHtml {
  const { consumer, user } = input;
  const destination = hostOf(input.callback);
  return html`<h1>Allow ${consumer.name} to act for you?</h1>
    <p><strong>${consumer.name}</strong>${consumer.name !== consumer.linkName ? html` <small>(application link “${consumer.linkName}”)</small>` : ''}
      asks to use ${input.appName} as <strong>${user.displayName}</strong> (${user.username}), without your password.</p>
    ${consumer.description ? html`<p><em>${consumer.description}</em></p>` : ''}
    <p>It will be able to:</p>
    <ul id="abilities">
      <li>read everything you can read in ${input.appName};</li>
      <li>create, change and delete what you can, in your name;</li>
      <li>keep this access until you revoke it, for up to ${durationInWords(input.lifetimeSeconds)}.</li>
    </ul>
    <p>${destination ? html`After you decide, your browser returns to <strong>${destination}</strong>.` : html`After you allow it, you will be shown a code to give to the application.`}
      You can revoke this at any time from <a href="${ACCOUNT_PATH}">your account</a>.</p>
    <form method="post" action="${AUTHORIZE_PATH}">
      <input type="hidden" name="${CSRF_FIELD}" value="${input.csrf}">
      <input type="hidden" name="oauth_token" value="${input.token}">
      ${input.oauthCallbackParam !== undefined ? html`<input type="hidden" name="oauth_callback" value="${input.oauthCallbackParam}">` : ''}
      <button type="submit" name="approve" value="Allow" id="allow">Allow</button>
      <button type="submit" name="deny" value="Deny" id="deny" class="secondary">Deny</button>
    </form>`;
}

/** After "Allow" with no callback (`oob`): the verifier the user types into the application. */
export function verifierPage(consumer: Consumer, verifier: string): SafeHtml {
  return html`<h1>You allowed ${consumer.name}</h1>
    <p>Give ${consumer.name} this verification code to finish connecting:</p>
    <code class="secret" id="verifier">${verifier}</code>
    <p>You can revoke this at any time from <a href="${ACCOUNT_PATH}">your account</a>.</p>`;
}

export function deniedPage(consumer: Consumer): SafeHtml {
  return html`<h1>You denied ${consumer.name}</h1>
    <p class="ok">${consumer.name} was not given access. You can close this window.</p>
    <p><a href="${ACCOUNT_PATH}">Go to your account</a></p>`;
}

/** Errors of the authorize step (unknown or expired token...): shown, never redirected. */
export function authorizeErrorPage(message: string): SafeHtml {
  return html`<h1>This authorization request cannot be completed</h1>
    <p class="error" role="alert">${message}</p>
    <p>You were not sent back to the application. Start again from the application that sent you here.</p>
    <p><a href="${ACCOUNT_PATH}">Go to your account</a></p>`;
}
