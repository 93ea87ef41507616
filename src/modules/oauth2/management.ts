import { AppError } from '../../errors/index.js';
import { covers, normalize, SCOPES, type Scope } from '../../protocols/oauth2/scopes.js';
import type { Actor } from '../../services/audit.js';
import type { Services } from '../../services/index.js';
import type { LinkWritten, Within } from '../../services/links.js';
import { isForeignKeyViolation } from '../../storage/repositories/common.js';
import type { UserRecord } from '../../storage/repositories/users.js';
import { clientSpec, OAUTH2_TYPE, toClient, type Client, type ClientConfig } from './clients.js';
import { OAuth2Repository } from './repository.js';
import { OAuth2Service } from './service.js';

/** What an administrator (or a developer, for their own app) registers. */
export interface ClientInput {
  name: string;
  /** Attach the client to this existing link instead of creating one (administrators only). */
  linkId?: string;
  url?: string | null;
  applicationType?: string;
  confidential?: boolean;
  redirectUris: string[];
  scopes?: Scope[];
  requirePkce?: boolean;
  /** Username of the service account a client_credentials token acts as (administrators only). */
  serviceAccount?: string | null;
  clientId?: string;
}

export type ClientPatch = Partial<Pick<ClientInput, 'name' | 'confidential' | 'redirectUris' | 'scopes' | 'requirePkce' | 'serviceAccount'>>;

/** A registered client as the admin API and the developer area show it: never a secret. */
export interface ClientView {
  clientId: string;
  name: string;
  linkId: string;
  linkName: string;
  confidential: boolean;
  redirectUris: string[];
  scopes: Scope[];
  requirePkce: boolean;
  serviceAccount: { id: string; username: string } | null;
  owner: { id: string; username: string } | null;
  secrets: Array<{ id: string; createdAt: number; expiresAt: number | null }>;
  warnings: string[];
  createdAt: number;
  updatedAt: number;
}

/**
 * Registering, changing, rotating and removing OAuth 2.0 clients. A client is the `oauth2`
 * incoming configuration of a link (so deleting the link revokes everything); its secrets live in
 * their own table as hashes. Applications users register in the developer area get a link of
 * their own, recorded as theirs in `oauth2_client_owners`; deleting the app deletes that link.
 */
export class ClientManager {
  constructor(
    private readonly s: Services,
    private readonly oauth: OAuth2Service,
  ) {}

  /** Registers a client; answers it with its secret (confidential clients), shown this once. */
  /**
   * Registers a client. `owner` makes it a developer's app; `ownerLimit` is how many apps that
   * developer may hold, counted inside the registration's transaction (two registrations at once
   * cannot both take the last slot).
   */
  async create(input: ClientInput, actor: Actor, owner?: UserRecord, ownerLimit?: number): Promise<{ client: ClientView; clientSecret: string | undefined }> {
    const confidential = input.confidential ?? true;
    const config: ClientConfig = {
      clientId: input.clientId ?? OAuth2Service.newClientId(),
      confidential,
      redirectUris: input.redirectUris,
      scopes: normalize(input.scopes ?? ['READ', 'WRITE']),
      serviceAccountUserId: await this.serviceAccountId(input.serviceAccount),
    };
    if (input.requirePkce !== undefined) config.requirePkce = input.requirePkce;
    // The secret (issued by OAuth2Service.clientSet for a confidential client), the owner and the
    // audit entry are written in the link's own transaction: a failure leaves nothing half-registered.
    const within: Within = async (repos, trx, linkId) => {
      if (owner) {
        const repo = new OAuth2Repository(trx);
        // Two registrations of one developer count their apps one after the other.
        if (ownerLimit !== undefined) await this.s.store.capabilities.lockRow(trx, 'users', owner.id, 'update');
        await repo.setOwner(linkId, owner.id, this.s.clock.now());
        if (ownerLimit !== undefined && (await repo.ownedLinks(owner.id)).length > ownerLimit) throw tooManyApps(ownerLimit);
      }
      await this.s.audit.record(
        actor,
        { action: 'oauth2.client.create', target: { type: 'link', id: linkId, name: input.name }, details: { clientId: config.clientId, confidential, scopes: config.scopes, developer: owner !== undefined } },
        repos,
      );
    };
    let written: LinkWritten;
    if (input.linkId !== undefined) {
      const link = await this.s.store.links.findById(input.linkId);
      if (!link) throw new AppError('validation_failed', { field: 'linkId', message: 'linkId: no such application link.' });
      if (await this.s.store.links.findAuth(link.id, 'incoming', OAUTH2_TYPE)) {
        throw new AppError('conflict', { message: 'This link already has an OAuth 2.0 client; change or delete that one.' });
      }
      config.name = input.name;
      written = await this.s.links.setAuth(link.id, 'incoming', OAUTH2_TYPE, config as unknown as Record<string, unknown>, actor, within);
    } else {
      const linkName = owner ? `${input.name} (${owner.username})` : input.name;
      if (owner) config.name = input.name;
      try {
        written = await this.s.links.create(
          { name: linkName, url: input.url ?? null, applicationType: input.applicationType ?? 'generic', incoming: { [OAUTH2_TYPE]: config as unknown as Record<string, unknown> } },
          actor,
          within,
        );
      } catch (error) {
        // The developer was deleted (here or on another instance) since their session was read:
        // the owner row names no user, so the whole registration is rolled back.
        if (owner && isForeignKeyViolation(error) && !(await this.s.store.users.findById(owner.id))) {
          this.s.revocations.user(owner.id);
          throw new AppError('unauthenticated', { message: 'Your account was removed: nothing was registered.', cause: error });
        }
        throw error;
      }
    }
    return { client: await this.view(await this.byClientId(config.clientId)), clientSecret: issuedSecret(written) };
  }

  /** The client registered under a client id, or not_found. */
  async byClientId(clientId: string): Promise<Client> {
    const client = await this.oauth.findClient(clientId);
    if (!client) throw new AppError('not_found', { message: 'No OAuth 2.0 client with this client id.' });
    return client;
  }

  /** A client of the developer area, only for its owner (not_found for anyone else: no probing). */
  async ownedBy(clientId: string, user: UserRecord): Promise<Client> {
    const client = await this.oauth.findClient(clientId);
    if (!client || (await this.oauth.repo.ownerOf(client.linkId)) !== user.id) throw new AppError('not_found', { message: 'You have no application with this client id.' });
    return client;
  }

  /**
   * Changes a client. Changing its type revokes everything it holds and deletes its secrets (see
   * OAuth2Service.clientChanged); a client made confidential gets a new secret (clientSet),
   * answered this once, as the generic link API answers it.
   */
  async update(client: Client, patch: ClientPatch, actor: Actor): Promise<{ client: ClientView; clientSecret: string | undefined }> {
    const auth = await this.s.store.links.findAuth(client.linkId, 'incoming', OAUTH2_TYPE);
    if (!auth) throw new AppError('not_found', { message: 'No OAuth 2.0 client with this client id.' });
    const config = { ...(auth.config as ClientConfig) };
    if (patch.name !== undefined) config.name = patch.name;
    if (patch.confidential !== undefined) config.confidential = patch.confidential;
    if (patch.redirectUris !== undefined) config.redirectUris = patch.redirectUris;
    if (patch.scopes !== undefined) config.scopes = normalize(patch.scopes);
    if (patch.requirePkce !== undefined) config.requirePkce = patch.requirePkce;
    if (patch.serviceAccount !== undefined) config.serviceAccountUserId = await this.serviceAccountId(patch.serviceAccount);
    const written = await this.s.links.setAuth(client.linkId, 'incoming', OAUTH2_TYPE, config as unknown as Record<string, unknown>, actor);
    return { client: await this.view(await this.byClientId(client.clientId)), clientSecret: issuedSecret(written) };
  }

  /**
   * Removes a client: its tokens, grants, consents and secrets go in the same transaction. With
   * `deleteLink` (always for developer apps) the whole link goes.
   */
  async delete(client: Client, actor: Actor, deleteLink: boolean): Promise<void> {
    const owned = (await this.oauth.repo.ownerOf(client.linkId)) !== undefined;
    if (deleteLink || owned) await this.s.links.delete(client.linkId, actor);
    else await this.s.links.deleteAuth(client.linkId, 'incoming', OAUTH2_TYPE, actor);
  }

  /** Every client, or those a user owns. */
  async list(ownerId?: string): Promise<ClientView[]> {
    const owners = await this.oauth.repo.owners();
    const out: ClientView[] = [];
    for (const link of await this.s.store.links.list()) {
      if (ownerId !== undefined && owners.get(link.id) !== ownerId) continue;
      const auth = await this.s.store.links.findAuth(link.id, 'incoming', OAUTH2_TYPE);
      if (auth) out.push(await this.view(toClient(link, auth)));
    }
    return out;
  }

  async count(ownerId: string): Promise<number> {
    return (await this.oauth.repo.ownedLinks(ownerId)).length;
  }

  async view(client: Client): Promise<ClientView> {
    const auth = await this.s.store.links.findAuth(client.linkId, 'incoming', OAUTH2_TYPE);
    const ownerId = await this.oauth.repo.ownerOf(client.linkId);
    const owner = ownerId ? await this.s.store.users.findById(ownerId) : undefined;
    const service = client.serviceAccountUserId ? await this.s.store.users.findById(client.serviceAccountUserId) : undefined;
    const secrets = client.confidential ? await this.oauth.repo.liveSecrets(client.linkId, this.s.clock.now()) : [];
    const warnings = clientSpec().warnings?.(auth?.config ?? {}) ?? [];
    if (client.confidential && secrets.length === 0) warnings.push('The client has no secret yet: rotate one before it can authenticate.');
    return {
      clientId: client.clientId,
      name: client.name,
      linkId: client.linkId,
      linkName: client.linkName,
      confidential: client.confidential,
      redirectUris: [...client.redirectUris],
      scopes: [...client.scopes],
      requirePkce: client.requirePkce,
      serviceAccount: service ? { id: service.id, username: service.username } : null,
      owner: owner ? { id: owner.id, username: owner.username } : null,
      secrets: secrets.map((x) => ({ id: x.id, createdAt: x.createdAt, expiresAt: x.expiresAt })),
      warnings,
      createdAt: auth?.createdAt ?? 0,
      updatedAt: auth?.updatedAt ?? 0,
    };
  }

  /** Developer-area limits: the switch, the number of apps, the widest scope. */
  checkDeveloperInput(scopes: readonly Scope[] | undefined): void {
    if (!this.s.config.oauth2DeveloperApps) throw new AppError('forbidden', { message: 'Registering your own OAuth 2.0 applications is switched off (APPLINKS_OAUTH2_DEVELOPER_APPS).' });
    const max = this.s.config.oauth2DeveloperMaxScope;
    if (scopes && !covers([max], scopes)) {
      throw new AppError('validation_failed', { field: 'scopes', message: `scopes: applications registered here may ask for at most ${SCOPES.slice(0, SCOPES.indexOf(max) + 1).join(' ')}.` });
    }
  }

  private async serviceAccountId(username: string | null | undefined): Promise<string | null> {
    if (username === undefined || username === null) return null;
    const user = await this.s.store.users.findByUsername(username);
    if (!user) throw new AppError('validation_failed', { field: 'serviceAccount', message: 'serviceAccount: no such user.' });
    return user.id;
  }
}

/** The client secret a write of a link's `oauth2` configuration generated, if it made the client confidential. */
export function issuedSecret(written: LinkWritten): string | undefined {
  return written.issuedSecrets?.incoming?.[OAUTH2_TYPE]?.clientSecret;
}

/** A developer who already holds as many apps as the configuration allows. */
export function tooManyApps(max: number): AppError {
  return new AppError('forbidden', { message: `You may register at most ${max} applications.` });
}
