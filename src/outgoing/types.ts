import type { PrincipalUser } from '../auth/principal.js';
import type { LinkRecord } from '../storage/repositories/links.js';
import type { Services } from '../services/index.js';

/** A request to a linked application before and after signing. */
export interface OutgoingRequest {
  method: string;
  /** Absolute URL. */
  url: string;
  headers: Record<string, string>;
  body?: string | Buffer;
}

export interface SignContext {
  link: LinkRecord;
  /** The type's non-secret configuration of the link's outgoing side. */
  config: Record<string, unknown>;
  /** The type's opened secret fields. */
  secrets: Record<string, unknown>;
  /** The user the request is made for, or null for a request as the application itself. */
  asUser: PrincipalUser | null;
  services: Services;
}

export type SignResult =
  | { kind: 'signed'; request: OutgoingRequest }
  /** The user must first authorize this application at the remote (e.g. the OAuth 1.0a dance). */
  | { kind: 'authorization-required'; authorizationUrl: string; message: string };

/** What the remote answered, for a signer that learns from it. */
export interface OutgoingResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** Signs requests for one outgoing authentication type. */
export interface OutgoingSigner {
  sign(request: OutgoingRequest, context: SignContext): Promise<SignResult>;
  /**
   * Called with a 401 answer: a signer whose stored credential the remote no longer accepts (a
   * revoked OAuth token) forgets it and answers that the user must authorize again; undefined
   * lets the response through as it is.
   */
  rejected?(response: OutgoingResponse, context: SignContext): Promise<Extract<SignResult, { kind: 'authorization-required' }> | undefined>;
}
