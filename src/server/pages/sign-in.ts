import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../errors/index.js';
import { readCookie } from '../../modules/core/cookies.js';
import type { Services } from '../../services/index.js';
import { SESSION_COOKIE } from '../../services/sessions.js';
import { DEVICE_COOKIE, DEVICE_COOKIE_MAX_AGE_SECONDS } from '../../services/sign-in.js';
import { isUriText } from '../../util/text.js';
import { checkCsrf, cookieHeader, CSRF_FIELD, issueCsrfToken } from '../csrf.js';
import { toAppError } from '../errors.js';
import { html, sendPage } from './html.js';

export const SIGN_IN_PATH = '/applinks/login';
export const SIGN_OUT_PATH = '/applinks/logout';
export const ACCOUNT_PATH = '/applinks/account';

/** Only local absolute paths may be a `next` target: never another origin (open redirect). */
export function safeNext(next: unknown, fallback = ACCOUNT_PATH): string {
  return typeof next === 'string' && /^\/(?![/\\])/.test(next) && isUriText(next) ? next : fallback;
}

/** Where to send a visitor who must sign in first, coming back to `next` afterwards. */
export function signInRedirect(next: string): string {
  return `${SIGN_IN_PATH}?next=${encodeURIComponent(next)}`;
}

function signInPage(s: Services, request: FastifyRequest, reply: FastifyReply, status: number, next: string, username: string, error?: string) {
  const csrf = issueCsrfToken(s, request, reply);
  sendPage(
    reply,
    status,
    'Sign in',
    html`<h1>Sign in to ${s.config.appName}</h1>
      ${error ? html`<p class="error" role="alert">${error}</p>` : ''}
      <form method="post" action="${SIGN_IN_PATH}">
        <input type="hidden" name="${CSRF_FIELD}" value="${csrf}">
        <input type="hidden" name="next" value="${next}">
        <label for="username">Username</label>
        <input type="text" id="username" name="username" value="${username}" autocomplete="username" autofocus required>
        <label for="password">Password</label>
        <input type="password" id="password" name="password" autocomplete="current-password" required>
        <button type="submit">Sign in</button>
      </form>`,
    s.config.appName,
  );
}

/** The sign-in and sign-out pages. */
export async function signInPages(app: FastifyInstance, s: Services): Promise<void> {
  app.get(SIGN_IN_PATH, { schema: { hide: true } }, async (request, reply) => {
    const next = safeNext((request.query as Record<string, unknown>).next);
    const existing = await s.sessions.resolve(readCookie(request.headers.cookie, SESSION_COOKIE));
    if (existing) return reply.code(303).header('location', next).send();
    signInPage(s, request, reply, 200, next, '');
    return reply;
  });

  app.post(SIGN_IN_PATH, { schema: { hide: true } }, async (request, reply) => {
    const form = (request.body ?? {}) as Record<string, unknown>;
    const next = safeNext(form.next);
    const username = typeof form.username === 'string' ? form.username.slice(0, 200) : '';
    const password = typeof form.password === 'string' ? form.password : '';
    try {
      checkCsrf(s, request, form[CSRF_FIELD]);
      if (!username || !password) throw new AppError('invalid_credentials', { message: 'Enter your username and password.' });
      const user = await s.signIn.verify(username, password, 'form', request.ip, readCookie(request.headers.cookie, DEVICE_COOKIE));
      const { cookie } = await s.sessions.create(user.id, request.ip, request.headers['user-agent'] ?? null);
      // This browser is now known for this user: guesses made elsewhere no longer lock it out.
      // Sent to the sign-in form only, never to other paths or the host.
      const device = cookieHeader(s, DEVICE_COOKIE, s.signIn.deviceCookie(user.username), DEVICE_COOKIE_MAX_AGE_SECONDS, s.edge.basePath + SIGN_IN_PATH);
      return reply
        .code(303)
        .header('set-cookie', [cookieHeader(s, SESSION_COOKIE, cookie, s.config.sessionTtlSeconds), device])
        .header('location', next)
        .send();
    } catch (error) {
      const e = toAppError(error);
      if (e.status >= 500) throw e;
      for (const [k, v] of Object.entries(e.headers)) reply.header(k, v);
      const message =
        e.code === 'too_many_attempts'
          ? `Too many failed attempts. Try again in ${String(e.headers['retry-after'] ?? 'a few')} seconds.`
          : e.code === 'user_disabled'
            ? 'This account is disabled.'
            : e.code === 'csrf_failed'
              ? 'The form expired. Please sign in again.'
              : 'The username or password is wrong.';
      signInPage(s, request, reply, e.status, next, username, message);
      return reply;
    }
  });

  app.post(SIGN_OUT_PATH, { schema: { hide: true } }, async (request, reply) => {
    const form = (request.body ?? {}) as Record<string, unknown>;
    checkCsrf(s, request, form[CSRF_FIELD]);
    const cookie = readCookie(request.headers.cookie, SESSION_COOKIE);
    if (cookie) await s.sessions.destroy(cookie);
    return reply.code(303).header('set-cookie', cookieHeader(s, SESSION_COOKIE, '', 0)).header('location', SIGN_IN_PATH).send();
  });
}
