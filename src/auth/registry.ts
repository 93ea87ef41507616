import type { TObject } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { OutgoingSigner } from '../outgoing/types.js';
import type { Actor } from '../services/audit.js';
import type { Services } from '../services/index.js';
import type { AuthorizationProvider } from '../services/authorizations.js';
import type { SealedColumn } from '../services/keys.js';
import type { Executor } from '../storage/repositories/common.js';
import type { Repositories } from '../storage/store.js';
import type { SafeHtml } from '../server/pages/html.js';
import type { Principal, PrincipalUser } from './principal.js';
import type { AuthRequest } from './request.js';

/** How one direction (incoming or outgoing) of a link is configured for an authentication type. */
export interface LinkAuthSpec {
  /** TypeBox schema of the configuration, secret fields included (they are write-only). */
  readonly schema: TObject;
  /** Fields of the schema that are secrets: sealed at rest, never returned, kept when omitted on update. */
  readonly secretFields?: readonly string[];
  /**
   * Whether an omitted secret keeps its stored value, given the rest of the new configuration
   * (default: it does). A configuration that no longer uses the secret (a consumer switched from a
   * shared secret to an RSA key) drops it instead.
   */
  keepsSecret?(name: string, input: Record<string, unknown>): boolean;
  /** A value the type finds a link by (OAuth consumer key, client id); unique per direction and type. */
  lookupKey?(config: Record<string, unknown>): string | undefined;
  /**
   * Checks beyond the schema (a key that must parse, a user that must exist). Throws
   * AppError('validation_failed', { field }) naming the field. May normalise the config.
   */
  validate?(config: Record<string, unknown>, services: Services): Promise<Record<string, unknown>> | Record<string, unknown>;
  /** Warnings an admin must see with this configuration (shown by the API and the console). */
  warnings?(config: Record<string, unknown>): string[];
}

/**
 * A self-describing authentication type. Adding a type is one descriptor in a protocol module.
 * Weight: the link's primary outgoing type is its configured type of highest weight.
 */
export interface AuthTypeDescriptor {
  readonly id: string;
  readonly title: string;
  /** The Atlassian provider class name announced in the manifest, when the type has one. */
  readonly atlassianType?: string;
  readonly weight: number;
  /** Acts as any user the caller names (Trusted Apps, 2LO with impersonation, JWT with sub). */
  readonly impersonating: boolean;
  /** Accepted from users' own credentials without any link configuration (Basic, API tokens). */
  readonly userCredential?: boolean;
  /**
   * Configured as part of another type's incoming configuration (2-legged OAuth is a switch of
   * the `oauth1` consumer): the type is still announced as inbound in the manifest.
   */
  readonly incomingVia?: string;
  readonly incoming?: LinkAuthSpec;
  readonly outgoing?: LinkAuthSpec & {
    readonly signer?: OutgoingSigner;
    /** Signs only for a named user (3-legged OAuth, impersonation): a call for no user does not choose it as the primary type. */
    readonly forUsersOnly?: boolean;
  };
}

/**
 * One authenticator of the pipeline. It answers a principal, `undefined` when the request carries
 * none of its credentials (the next one is asked), or throws an AppError when it carries its
 * credentials and they are bad: a failed credential never falls through to anonymous.
 */
export interface Authenticator {
  readonly id: string;
  authenticate(req: AuthRequest): Promise<Principal | undefined> | Principal | undefined;
  /** The `WWW-Authenticate` challenge this authenticator offers on a 401, e.g. `Basic realm="applinks"`. */
  challenge?(req: AuthRequest): string | undefined;
}

/**
 * A protocol module: its authentication types and, through `setup`, its runtime for one process
 * (state such as caches lives there). Modules are listed in src/modules/index.ts; adding one is
 * a folder and a line there.
 */
export interface ProtocolModule {
  readonly id: string;
  readonly authTypes: readonly AuthTypeDescriptor[];
  /** Path prefixes this module owns: never forwarded to the host even when no route matches. */
  readonly ownedPrefixes?: readonly string[];
  /** Tables of this module holding sealed values, re-sealed by `applinks keys rotate`. */
  readonly sealedColumns?: readonly SealedColumn[];
  /** Builds the module's runtime once the services exist. */
  setup?(services: Services): ModuleRuntime;
}

/** What a module deleted when a link changed, counted by kind (`{ oauth1OutgoingTokens: 2 }`), for the audit log. */
export type Forgotten = Readonly<Record<string, number>>;

/** What a module contributes at run time. Every member is optional. */
export interface ModuleRuntime {
  /** Authenticators with their position in the pipeline (lower `order` runs first). */
  readonly authenticators?: ReadonlyArray<{ order: number; authenticator: Authenticator }>;
  /**
   * Rules applied after authentication to requests bound for the host (gateway, forward-auth,
   * library): e.g. a READ-scoped token may only use safe methods. Throws AppError('forbidden').
   */
  authorize?(principal: Principal, req: AuthRequest): void;
  /** Registers the module's own endpoints (form bodies are parsed in this context). */
  routes?(app: FastifyInstance): Promise<void> | void;
  /**
   * A section of the user's account page (e.g. the applications they authorized, with revoke
   * buttons). Forms must carry `csrf` in a `csrf_token` field.
   */
  accountSection?(context: { user: PrincipalUser; csrf: string }): Promise<SafeHtml>;
  /**
   * Runs inside the transaction that removes a link's configuration of a type (`type`) or the
   * whole link (`type` undefined): delete what was issued through it, on the incoming side, or
   * obtained with it, on the outgoing side. Rows that reference `links(id)` with ON DELETE
   * CASCADE go with a deleted link by themselves. Answers what it deleted, for the audit entry.
   */
  onAuthRemoved?(trx: Executor, linkId: string, direction: 'incoming' | 'outgoing', type: string): Promise<Forgotten | void>;
  /**
   * Runs inside the transaction that gives a link a different URL: delete the credentials
   * obtained from the remote it pointed at (users' tokens, dances in progress), which must never
   * be sent, signed, to whatever it points at now. Answers what it deleted, for the audit entry.
   */
  onLinkMoved?(trx: Executor, linkId: string): Promise<Forgotten | void>;
  /**
   * Runs inside the transaction that changes a link's configuration of a type in place (same
   * lookup key; a new key is a removal): revoke what the old configuration issued that the new one
   * no longer vouches for (a client that changed type, a service account reassigned, users'
   * remote tokens when our consumer key or the remote's token host changed). Answers what it
   * deleted, for the audit entry.
   */
  onAuthChanged?(change: AuthChange): Promise<Forgotten | void>;
  /**
   * Runs inside the transaction that sets a link's configuration of a type (created, changed in
   * place, or replaced by one of a new lookup key), after `onAuthChanged` or `onAuthRemoved`: make
   * the credentials the new configuration needs and only the module can make (a confidential
   * OAuth 2.0 client's secret), keeping only what the module stores (its hash). Answers them by
   * name; whoever set the configuration is shown them this once (`issuedSecrets` in the admin
   * API), and the audit entry names them without their values.
   */
  onAuthSet?(set: AuthSet): Promise<IssuedSecrets | void>;
  /**
   * Runs inside the transaction that deletes a user: drop references to them from link
   * configurations (an OAuth 2.0 client's service account), so nothing names a deleted user.
   * Answers the ids of the links it changed; their cached configurations go once it commits.
   */
  onUserDeleted?(repos: Repositories, userId: string): Promise<readonly string[]>;
  /** The per-user authorizations this module issues, for the authorized-applications list. */
  readonly authorizations?: AuthorizationProvider;
  /**
   * Extra elements of the manifest (our extension; Atlassian readers ignore unknown elements),
   * e.g. the OAuth 1.0a consumer key and where its public key is published.
   */
  manifestFields?(): Promise<Record<string, string>>;
  /** Starts background work (pruning...); the returned function stops it. */
  start?(): (() => Promise<void> | void) | void;
}

/** A link configuration changed in place, as `onAuthChanged` sees it (inside the transaction). */
export interface AuthChange {
  readonly trx: Executor;
  readonly repos: Repositories;
  readonly actor: Actor;
  readonly linkId: string;
  readonly direction: 'incoming' | 'outgoing';
  readonly type: string;
  /** The plain (unsealed) configuration before and after. */
  readonly before: Record<string, unknown>;
  readonly after: Record<string, unknown>;
}

/**
 * A link configuration was set, as `onAuthSet` sees it (inside the transaction). `before` is
 * undefined when the configuration is new to the link or has a new lookup key (a new client).
 */
export interface AuthSet extends Omit<AuthChange, 'before'> {
  readonly before: Record<string, unknown> | undefined;
}

/** Credentials a module generated for a configuration, by field name (`{ clientSecret: 'alcs_…' }`): shown once, never stored in plain. */
export type IssuedSecrets = Readonly<Record<string, string>>;

/** The authentication types of every module, by id. */
export class AuthTypeRegistry {
  private readonly types = new Map<string, AuthTypeDescriptor>();

  constructor(modules: readonly ProtocolModule[]) {
    for (const module of modules) {
      for (const type of module.authTypes) {
        if (this.types.has(type.id)) throw new Error(`authentication type ${type.id} registered twice`);
        this.types.set(type.id, type);
      }
    }
  }

  get(id: string): AuthTypeDescriptor | undefined {
    return this.types.get(id);
  }

  all(): AuthTypeDescriptor[] {
    return [...this.types.values()].sort((a, b) => b.weight - a.weight);
  }

  configurable(direction: 'incoming' | 'outgoing'): AuthTypeDescriptor[] {
    return this.all().filter((t) => t[direction] !== undefined);
  }

  /**
   * Of the given configured outgoing type ids, the one of highest weight; with `withoutUser` (a
   * call for no user), the one of highest weight among those that can sign without one.
   */
  primary(typeIds: readonly string[], options: { withoutUser?: boolean } = {}): AuthTypeDescriptor | undefined {
    return typeIds
      .map((id) => this.types.get(id))
      .filter((t): t is AuthTypeDescriptor => t !== undefined && !(options.withoutUser && t.outgoing?.forUsersOnly))
      .sort((a, b) => b.weight - a.weight)[0];
  }
}
