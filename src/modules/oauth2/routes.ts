import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, type ErrorCode } from '../../errors/index.js';
import { parseClientAuthentication } from '../../protocols/oauth2/client-auth.js';
import {
  authorizationCodeLocation,
  authorizationErrorLocation,
  bearerChallenge,
  clientChallenge,
  oauth2ErrorOf,
  tokenErrorBody,
} from '../../protocols/oauth2/errors.js';
import { authorizationServerMetadata, OAUTH2_PATHS } from '../../protocols/oauth2/metadata.js';
import { OAuthParams } from '../../protocols/oauth2/params.js';
import { checkCodeChallenge } from '../../protocols/oauth2/pkce.js';
import { resolveRedirectUri } from '../../protocols/oauth2/redirect-uri.js';
import { capForUser } from '../../protocols/oauth2/scopes.js';
import { API_TOKEN_PREFIX } from '../../services/api-tokens.js';
import type { Services } from '../../services/index.js';
import { SESSION_COOKIE } from '../../services/sessions.js';
import { FORM, rawFormParser } from '../../server/body-parsers.js';
import { checkCsrf, CSRF_FIELD, issueCsrfToken } from '../../server/csrf.js';
import { logError, toAppError } from '../../server/errors.js';
import { sendPage } from '../../server/pages/html.js';
import { signInRedirect } from '../../server/pages/sign-in.js';
import { readCookie } from '../core/cookies.js';
import { authorizationErrorPage, consentPage, FORWARDED_PARAMS } from './consent.js';
import type { OAuth2Service } from './service.js';

/** Errors of the authorization endpoint that are shown on a page even after the redirect URI is validated. */
const PAGE_ONLY: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['csrf_failed', 'oauth2_client_removed', 'unauthenticated']);

/** Token-endpoint responses must not be cached (RFC 6749 §5.1). */
function noStore(reply: FastifyReply): FastifyReply {
  return reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
}

/**
 * CORS on what a browser-based client calls itself (the metadata, token and revocation
 * endpoints; OAuth 2.0 for Browser-Based Applications §6.3.1): any origin, without credentials.
 * These endpoints never read cookies, and what they take (a code with its PKCE verifier, a
 * refresh token, a client secret) proves itself whichever page sends it. Introspection is for
 * confidential clients and the host, server to server, and gets none.
 */
function cors(reply: FastifyReply): FastifyReply {
  return reply.header('access-control-allow-origin', '*').header('access-control-expose-headers', 'WWW-Authenticate');
}

/** Answers OPTIONS: `Allow`, and the CORS preflight of {@link cors} (cached by browsers for two hours). */
function preflight(reply: FastifyReply, methods: string): FastifyReply {
  return cors(reply)
    .code(204)
    .header('allow', methods)
    .header('access-control-allow-methods', methods)
    .header('access-control-allow-headers', 'Authorization, Content-Type')
    .header('access-control-max-age', '7200')
    .send();
}

/** The parameters of a POST: RFC 6749 §3.2 requires the form encoding. */
function bodyParams(request: FastifyRequest): OAuthParams {
  const body = request.body;
  if (body === undefined || body === null) return new OAuthParams(new URLSearchParams());
  if (!(body instanceof URLSearchParams)) throw new AppError('oauth2_invalid_request', { message: `The request body must be ${FORM}.` });
  return new OAuthParams(body);
}

function queryParams(request: FastifyRequest): URLSearchParams {
  const q = request.url.indexOf('?');
  return new URLSearchParams(q < 0 ? '' : request.url.slice(q + 1));
}

/**
 * The endpoints of the authorization server under /rest/oauth2/latest/ (Data Center paths) and
 * the RFC 8414 metadata. The token, revocation and introspection endpoints answer errors as
 * RFC 6749 §5.2 JSON; the authorization endpoint shows a page until the redirect URI is
 * validated and redirects errors to the client after (§4.1.2.1).
 */
export async function oauth2Routes(app: FastifyInstance, s: Services, oauth: OAuth2Service): Promise<void> {
  const realm = s.config.appName;

  const metadata = async (_request: FastifyRequest, reply: FastifyReply) =>
    cors(reply).header('cache-control', 'public, max-age=300').send(authorizationServerMetadata(oauth.issuer, s.config.baseUrl));
  // RFC 8414 §3.1: an issuer with a path has its metadata at the well-known path followed by it
  // (on the issuer's host: a reverse proxy that strips the base URL's prefix must route it here).
  const issuerPath = new URL(oauth.issuer).pathname.replace(/\/+$/, '');
  const metadataPaths = [OAUTH2_PATHS.metadata, OAUTH2_PATHS.metadataDataCenter, ...(issuerPath ? [`${OAUTH2_PATHS.metadata}${issuerPath}`] : [])];
  for (const url of metadataPaths) {
    app.get(url, { schema: { hide: true } }, metadata);
    app.options(url, { schema: { hide: true } }, async (_request, reply) => preflight(reply, 'GET, HEAD, OPTIONS'));
  }

  // ------------------------------------------------ token, revocation, introspection (JSON errors)
  await app.register(async (api) => {
    rawFormParser(api, s.config.bodyLimit);
    api.setErrorHandler((error, request, reply) => {
      let e = toAppError(error);
      // RFC 6749 §5.2 has no 415: a body in another encoding is a malformed request.
      if (e.code === 'unsupported_media_type') e = new AppError('oauth2_invalid_request', { message: `The request body must be ${FORM}.` });
      logError(request, e);
      if (e.code === 'oauth2_invalid_client' && e.headers['www-authenticate'] === undefined) e.headers['www-authenticate'] = clientChallenge(realm);
      // A browser-based client reads its errors too.
      if (request.routeOptions.url !== OAUTH2_PATHS.introspect) cors(reply);
      return noStore(reply.code(e.status).headers(e.headers)).send(tokenErrorBody(oauth2ErrorOf(e.code), e.status >= 500 ? undefined : e.message));
    });

    // RFC 6749 §3.2, RFC 7009 §2.1, RFC 7662 §2.1: these endpoints take POST only.
    api.route({
      method: ['GET', 'PUT', 'PATCH', 'DELETE'],
      url: `${OAUTH2_PATHS.prefix}/:endpoint(^token$|^revoke$|^introspect$)`,
      schema: { hide: true },
      handler: async () => {
        throw new AppError('oauth2_invalid_request', { message: 'Use POST with an application/x-www-form-urlencoded body.', headers: { allow: 'POST, OPTIONS' } });
      },
    });
    // OPTIONS says what they take; for the token and revocation endpoints it is a CORS preflight.
    api.options(OAUTH2_PATHS.token, { schema: { hide: true } }, async (_request, reply) => preflight(reply, 'POST, OPTIONS'));
    api.options(OAUTH2_PATHS.revoke, { schema: { hide: true } }, async (_request, reply) => preflight(reply, 'POST, OPTIONS'));
    api.options(OAUTH2_PATHS.introspect, { schema: { hide: true } }, async (_request, reply) => reply.code(204).header('allow', 'POST, OPTIONS').send());

    api.post(OAUTH2_PATHS.token, { schema: { hide: true } }, async (request, reply) => {
      const params = bodyParams(request);
      params.rejectRepeated();
      const client = await oauth.authenticateClient(parseClientAuthentication(request.headers.authorization, params));
      const grantType = params.require('grant_type');
      let response;
      switch (grantType) {
        case 'authorization_code':
          response = await oauth.exchangeCode(client, { code: params.require('code'), redirectUri: params.get('redirect_uri'), codeVerifier: params.get('code_verifier') });
          break;
        case 'refresh_token':
          response = await oauth.refresh(client, { refreshToken: params.require('refresh_token'), scope: params.get('scope'), redirectUri: params.get('redirect_uri') });
          break;
        case 'client_credentials':
          response = await oauth.clientCredentials(client, params.get('scope'));
          break;
        default:
          throw new AppError('oauth2_unsupported_grant_type', { message: `grant_type must be authorization_code, refresh_token or client_credentials.` });
      }
      return noStore(cors(reply)).send(response);
    });

    api.post(OAUTH2_PATHS.revoke, { schema: { hide: true } }, async (request, reply) => {
      const params = bodyParams(request);
      params.rejectRepeated();
      const client = await oauth.authenticateClient(parseClientAuthentication(request.headers.authorization, params));
      // RFC 7009 §2.1: the hint only speeds up the lookup; both kinds are found either way.
      await oauth.revoke(client, params.require('token'));
      return noStore(cors(reply)).code(200).send();
    });

    api.post(OAUTH2_PATHS.introspect, { schema: { hide: true } }, async (request, reply) => {
      const params = bodyParams(request);
      params.rejectRepeated();
      const authorization = request.headers.authorization;
      let answer: Record<string, unknown>;
      if (authorization !== undefined && /^bearer /i.test(authorization)) {
        // The host: an administrator's personal API token (RFC 7662 §2.1 leaves the means open).
        const value = authorization.slice(7).trim();
        try {
          if (!value.startsWith(API_TOKEN_PREFIX)) throw new AppError('oauth2_invalid_token', { message: 'Introspect with client authentication, or as the host with an administrator API token.' });
          const { user } = await s.apiTokens.authenticate(value);
          if (!user.isAdmin) throw new AppError('oauth2_insufficient_scope', { message: "Only an administrator's API token may introspect every token." });
        } catch (error) {
          if (error instanceof AppError && (error.status === 401 || error.status === 403)) {
            const code = error.status === 401 ? 'invalid_token' : 'insufficient_scope';
            error.headers['www-authenticate'] = bearerChallenge({ realm, error: code, description: error.message });
          }
          throw error;
        }
        answer = await oauth.introspect(params.require('token'), { kind: 'host' });
      } else {
        const client = await oauth.authenticateClient(parseClientAuthentication(authorization, params));
        if (!client.confidential) throw new AppError('oauth2_invalid_client', { message: 'Public clients cannot introspect tokens: they cannot authenticate.' });
        answer = await oauth.introspect(params.require('token'), { kind: 'client', client });
      }
      return noStore(reply).send(answer);
    });
  });

  // ------------------------------------------------ authorization endpoint and consent (pages and redirects)
  await app.register(async (pages) => {
    rawFormParser(pages, s.config.bodyLimit);
    pages.setErrorHandler((error, request, reply) => {
      const e = toAppError(error);
      logError(request, e);
      sendPage(reply, e.status, 'Authorization error', authorizationErrorPage(e.status >= 500 ? 'Something went wrong on our side; try again.' : e.message), s.config.appName);
      return reply;
    });

    pages.get(OAUTH2_PATHS.authorize, { schema: { hide: true } }, async (request, reply) => authorize(request, reply, new OAuthParams(queryParams(request)), undefined));

    pages.post(OAUTH2_PATHS.authorize, { schema: { hide: true } }, async (request, reply) => {
      const body = request.body instanceof URLSearchParams ? request.body : new URLSearchParams();
      // A decision without the form's CSRF token was not made on our page: shown, never redirected.
      checkCsrf(s, request, body.get(CSRF_FIELD) ?? undefined);
      const decision = body.get('decision');
      if (decision !== 'allow' && decision !== 'deny') throw new AppError('oauth2_invalid_request', { message: 'Choose Allow or Deny.' });
      body.delete(CSRF_FIELD);
      body.delete('decision');
      return authorize(request, reply, new OAuthParams(body), decision);
    });
  });

  /**
   * RFC 6749 §4.1.1 and §4.1.2, in order: the client and its redirect URI first (errors on a
   * page), then every other check with errors sent back to the client (§4.1.2.1, with `iss`),
   * then the signed-in user, remembered consent or the consent page, and the code.
   */
  async function authorize(request: FastifyRequest, reply: FastifyReply, params: OAuthParams, decision: 'allow' | 'deny' | undefined): Promise<FastifyReply> {
    // 1. Until the redirect URI is validated, nothing goes back to it.
    if (params.isRepeated('client_id') || params.isRepeated('redirect_uri')) {
      throw new AppError('oauth2_invalid_request', { message: 'client_id or redirect_uri is repeated.' });
    }
    const clientId = params.get('client_id');
    if (clientId === undefined) throw new AppError('oauth2_invalid_request', { message: 'The client_id parameter is missing.' });
    const client = await oauth.findClient(clientId);
    if (!client) throw new AppError('oauth2_invalid_request', { message: 'No application is registered with this client_id.' });
    const redirectUriParam = params.get('redirect_uri');
    const redirectUri = resolveRedirectUri(client.redirectUris, redirectUriParam);

    // 2. From here the client hears about its mistakes.
    const state = params.isRepeated('state') ? undefined : params.get('state');
    const back = (location: string) => noStore(reply).code(303).header('location', location).send();
    try {
      params.rejectRepeated();
      const responseType = params.get('response_type');
      if (responseType === undefined) throw new AppError('oauth2_invalid_request', { message: 'The response_type parameter is missing.' });
      if (responseType !== 'code') throw new AppError('oauth2_unsupported_response_type', { message: 'Only response_type=code is supported (no implicit grant).' });
      const challenge = checkCodeChallenge(params.get('code_challenge'), params.get('code_challenge_method'), client.requirePkce);
      const requested = oauth.requestedScopes(client, params.get('scope'));

      // 3. The user, signed in with a browser session.
      const session = await s.sessions.resolve(readCookie(request.headers.cookie, SESSION_COOKIE));
      if (!session) {
        const forwarded = new URLSearchParams();
        for (const name of [...FORWARDED_PARAMS, 'prompt']) {
          const value = params.get(name);
          if (value !== undefined) forwarded.set(name, value);
        }
        return noStore(reply).code(303).header('location', signInRedirect(`${OAUTH2_PATHS.authorize}?${forwarded.toString()}`)).send();
      }
      const user = session.user;
      const granted = capForUser(requested, user.isAdmin);
      const forceConsent = (params.get('prompt') ?? '').split(' ').includes('consent');

      // 4. Remembered consent, the consent page, or the decision just made on it. Consent is
      // remembered for confidential clients only. RFC 8252 §8.6: "unless the identity of the
      // client can be proven, the request SHOULD be processed as if no previous request had been
      // approved" (also RFC 6749 §10.2): any program can send a public client's client_id with a
      // loopback redirect of its own, so a public client's user always decides.
      if (decision === 'deny') throw new AppError('oauth2_access_denied', { message: 'The user denied the request.' });
      const remembered = client.confidential && !forceConsent && (await oauth.consentCovers(user.id, client.linkId, granted));
      if (decision === undefined && !remembered) {
        const forwarded: Record<string, string | undefined> = {};
        for (const name of FORWARDED_PARAMS) forwarded[name] = params.get(name);
        const csrf = issueCsrfToken(s, request, reply);
        sendPage(
          reply,
          200,
          `Authorize ${client.name}`,
          consentPage({ appName: s.config.appName, action: OAUTH2_PATHS.authorize, client, user, requested, granted, redirectUri, params: forwarded, csrf }),
          s.config.appName,
        );
        return reply;
      }
      const code = await oauth.issueCode({
        client,
        user,
        redirectUri,
        redirectUriSent: redirectUriParam !== undefined,
        scopes: granted,
        challenge,
        ...(decision === 'allow' ? { consent: { id: user.id, name: user.username, address: request.ip } } : {}),
      });
      return back(authorizationCodeLocation(redirectUri, { code, ...(state !== undefined ? { state } : {}), iss: oauth.issuer }));
    } catch (error) {
      const e = toAppError(error);
      // A decision not made on our page is shown, never sent anywhere; nor is anything once the
      // client or the user was removed while the user decided (the client is no longer trusted).
      if (PAGE_ONLY.has(e.code)) throw e;
      logError(request, e);
      // §4.1.2.1: our own failures go back as server_error, without our message.
      const description = e.status >= 500 ? undefined : e.message;
      return back(authorizationErrorLocation(redirectUri, { error: oauth2ErrorOf(e.code), description, ...(state !== undefined ? { state } : {}), iss: oauth.issuer }));
    }
  }
}
