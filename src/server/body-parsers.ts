import type { FastifyInstance } from 'fastify';

export const FORM = 'application/x-www-form-urlencoded';

/**
 * Form bodies as URLSearchParams, every pair kept in order: OAuth signs repeated parameters
 * (RFC 5849) or must refuse them (RFC 6749 §3.2), and @fastify/formbody would merge them.
 */
export function rawFormParser(app: FastifyInstance, limit: number): void {
  app.removeContentTypeParser(FORM);
  app.addContentTypeParser(FORM, { parseAs: 'string', bodyLimit: limit }, (_request, body, done) => done(null, new URLSearchParams(String(body))));
}

/** Bodies of any other type are neither read nor refused: the handler sees `undefined`. */
export function leaveBodiesUnread(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null, undefined));
}
