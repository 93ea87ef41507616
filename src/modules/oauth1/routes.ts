import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../errors/index.js';
import { appendParameters } from '../../protocols/oauth1/encoding.js';
import { collectParameters, MalformedOAuth, queryOf, type OAuthMessage } from '../../protocols/oauth1/parameters.js';
import type { Services } from '../../services/index.js';
import { SESSION_COOKIE } from '../../services/sessions.js';
import { toPrincipalUser } from '../../services/users.js';
import { leaveBodiesUnread, rawFormParser } from '../../server/body-parsers.js';
import { checkCsrf, CSRF_FIELD, issueCsrfToken } from '../../server/csrf.js';
import { logError, sendJsonError, toAppError } from '../../server/errors.js';
import { sendPage } from '../../server/pages/html.js';
import { ACCOUNT_PATH, safeNext, signInRedirect } from '../../server/pages/sign-in.js';
import type { UserRecord } from '../../storage/repositories/users.js';
import { isStorableName } from '../../util/text.js';
import { readCookie } from '../core/cookies.js';
import { consumerInfoXml, DANCE_CALLBACK_PATH, DANCE_START_PATH, type OAuth1Consumer } from './consumer.js';
import { authorizeErrorPage, AUTHORIZE_PATH, consentPage, deniedPage, verifierPage } from './pages.js';
import type { OAuth1Provider, SignedRequest } from './provider.js';

export const REQUEST_TOKEN_PATH = '/plugins/servlet/oauth/request-token';
export const ACCESS_TOKEN_PATH = '/plugins/servlet/oauth/access-token';
export const CONSUMER_INFO_PATH = '/plugins/servlet/oauth/consumer-info';
/** The account page's "Forget" buttons post to `<prefix>/<linkId>/forget`. */
export const FORGET_PATH_PREFIX = `${ACCOUNT_PATH}/oauth1`;

/** A link id from a page's URL: one no link could have is unknown without asking the store. */
function wireLinkId(value: string | null | undefined): string {
  if (!value) throw new AppError('validation_failed', { field: 'applicationLinkID', message: 'Which application link? (applicationLinkID is missing.)' });
  if (!isStorableName(value, 100)) throw new AppError('not_found', { message: 'No such application link.' });
  return value;
}

function bodyForm(request: FastifyRequest): URLSearchParams | undefined {
  return request.body instanceof URLSearchParams ? request.body : undefined;
}

/**
 * The provider's endpoints at Jira's paths (PROTOCOLS.md §1.1), the consumer-info document, the
 * consent page, and the two legs of our own consumer's dance. Token endpoints answer
 * `text/plain` form-encoded bodies and problems as Jira does; the consent step answers pages.
 */
export async function oauth1Routes(app: FastifyInstance, s: Services, provider: OAuth1Provider, consumer: OAuth1Consumer): Promise<void> {
  const signed = (request: FastifyRequest): SignedRequest => ({ method: request.method, url: s.edge.publicUrl(request.raw), secure: s.edge.secure(request.raw) });
  const messageOf = (request: FastifyRequest): OAuthMessage => {
    try {
      return collectParameters({ authorization: request.headers.authorization, query: queryOf(request.url), form: bodyForm(request) });
    } catch (error) {
      if (!(error instanceof MalformedOAuth)) throw error;
      throw provider.problem('oauth1_parameter_rejected', { advice: `The OAuth parameters cannot be read: ${error.message}.` });
    }
  };
  const tokenResponse = (reply: FastifyReply, body: string) =>
    reply.code(200).header('cache-control', 'no-store').header('pragma', 'no-cache').type('text/plain;charset=UTF-8').send(body);

  // ------------------------------------------------ token endpoints and consumer info
  await app.register(async (api) => {
    // RFC 5849 §3.5.2: only a form-encoded body carries parameters. Any other body is not read
    // (as Jira's servlets ignore it), so it can neither be refused nor fail to parse.
    leaveBodiesUnread(api);
    rawFormParser(api, s.config.bodyLimit);
    api.setErrorHandler((error, request, reply) => {
      const e = toAppError(error);
      logError(request, e);
      return sendJsonError(reply, e);
    });

    // The servlets implement POST only (PROTOCOLS.md §1.1).
    for (const url of [REQUEST_TOKEN_PATH, ACCESS_TOKEN_PATH]) {
      api.route({
        method: ['GET', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
        url,
        schema: { hide: true },
        handler: async () => {
          throw new AppError('method_not_allowed', { message: 'Use POST.', headers: { allow: 'POST' } });
        },
      });
    }
    api.post(REQUEST_TOKEN_PATH, { schema: { hide: true } }, async (request, reply) => tokenResponse(reply, await provider.requestToken(signed(request), messageOf(request))));
    api.post(ACCESS_TOKEN_PATH, { schema: { hide: true } }, async (request, reply) => tokenResponse(reply, await provider.accessToken(signed(request), messageOf(request))));

    api.get(CONSUMER_INFO_PATH, { schema: { hide: true } }, async (_request, reply) =>
      reply.type('application/xml;charset=UTF-8').header('cache-control', 'public, max-age=300').send(consumerInfoXml(await consumer.identity())),
    );
  });

  // ------------------------------------------------ the consent page and the dance (pages)
  await app.register(async (pages) => {
    rawFormParser(pages, s.config.bodyLimit);
    pages.setErrorHandler((error, request, reply) => {
      const e = toAppError(error);
      logError(request, e);
      sendPage(reply, e.status, 'Authorization error', authorizeErrorPage(e.status >= 500 && e.code !== 'upstream_unavailable' ? 'Something went wrong on our side; try again.' : e.message), s.config.appName);
      return reply;
    });

    const sessionUser = async (request: FastifyRequest): Promise<UserRecord | undefined> => (await s.sessions.resolve(readCookie(request.headers.cookie, SESSION_COOKIE)))?.user;
    const toSignIn = (reply: FastifyReply, next: string) => reply.code(303).header('cache-control', 'no-store').header('location', signInRedirect(next)).send();
    const redirect = (reply: FastifyReply, location: string) => reply.code(303).header('cache-control', 'no-store').header('location', location).send();

    pages.get(AUTHORIZE_PATH, { schema: { hide: true } }, async (request, reply) => {
      const query = new URLSearchParams(queryOf(request.url));
      const token = query.get('oauth_token') ?? undefined;
      const pending = await provider.pendingAuthorization(token);
      const user = await sessionUser(request);
      if (!user) return toSignIn(reply, request.url);
      const callbackParam = query.get('oauth_callback') ?? undefined;
      const csrf = issueCsrfToken(s, request, reply);
      sendPage(
        reply,
        200,
        `Authorize ${pending.consumer.name}`,
        consentPage({ appName: s.config.appName, lifetimeSeconds: s.config.oauth1AccessTokenTtlSeconds, consumer: pending.consumer, user, token: token!, callback: provider.callbackOf(pending, callbackParam), oauthCallbackParam: callbackParam, csrf }),
        s.config.appName,
      );
      return reply;
    });

    pages.post(AUTHORIZE_PATH, { schema: { hide: true } }, async (request, reply) => {
      const form = bodyForm(request) ?? new URLSearchParams();
      // A decision without the form's CSRF token was not made on our page (Jira: 403).
      checkCsrf(s, request, form.get(CSRF_FIELD) ?? undefined);
      const token = form.get('oauth_token') ?? undefined;
      const user = await sessionUser(request);
      if (!user) return toSignIn(reply, `${AUTHORIZE_PATH}?oauth_token=${encodeURIComponent(token ?? '')}`);
      const pending = await provider.pendingAuthorization(token);
      const callback = provider.callbackOf(pending, form.get('oauth_callback') ?? undefined);
      // Appended to the callback as registered, as net.oauth's OAuth.addParameters does: the
      // consumer's own query stays byte for byte (some sign or compare it).
      const back = (params: Record<string, string>) => redirect(reply, appendParameters(callback!, params));
      if (form.get('approve') === 'Allow') {
        const verifier = await provider.approve(pending, user, { id: user.id, name: user.username, address: request.ip });
        if (callback) return back({ oauth_token: token!, oauth_verifier: verifier });
        sendPage(reply, 200, `You allowed ${pending.consumer.name}`, verifierPage(pending.consumer, verifier), s.config.appName);
        return reply;
      }
      if (form.has('deny')) {
        await provider.deny(pending, user);
        if (callback) return back({ oauth_token: token!, oauth_verifier: 'denied' });
        sendPage(reply, 200, `You denied ${pending.consumer.name}`, deniedPage(pending.consumer), s.config.appName);
        return reply;
      }
      throw new AppError('invalid_request', { message: 'Choose Allow or Deny.' });
    });

    pages.post(`${FORGET_PATH_PREFIX}/:linkId/forget`, { schema: { hide: true } }, async (request, reply) => {
      checkCsrf(s, request, bodyForm(request)?.get(CSRF_FIELD) ?? undefined);
      const user = await sessionUser(request);
      if (!user) return toSignIn(reply, ACCOUNT_PATH);
      await consumer.forget(wireLinkId((request.params as { linkId: string }).linkId), user.id);
      return redirect(reply, ACCOUNT_PATH);
    });

    // Our consumer's dance with a linked application (Atlassian's login-dance paths, PROTOCOLS.md §1.8).
    pages.get(DANCE_START_PATH, { schema: { hide: true } }, async (request, reply) => {
      const query = new URLSearchParams(queryOf(request.url));
      const user = await sessionUser(request);
      if (!user) return toSignIn(reply, request.url);
      const linkId = wireLinkId(query.get('applicationLinkID'));
      return redirect(reply, await consumer.startDance(linkId, toPrincipalUser(user), safeNext(query.get('redirect') ?? undefined, ACCOUNT_PATH)));
    });

    pages.get(DANCE_CALLBACK_PATH, { schema: { hide: true } }, async (request, reply) => {
      const query = new URLSearchParams(queryOf(request.url));
      const user = await sessionUser(request);
      if (!user) throw new AppError('unauthenticated', { message: 'Sign in again and start the authorization from the beginning.' });
      const linkId = wireLinkId(query.get('applicationLinkID'));
      const next = await consumer.finishDance(linkId, toPrincipalUser(user), query.get('oauth_token') ?? undefined, query.get('oauth_verifier') ?? undefined, { id: user.id, name: user.username, address: request.ip });
      return redirect(reply, next);
    });
  });
}
