import type { Kysely } from 'kysely';
import { migrate, openDatabase, type Capabilities, type OpenOptions } from './database.js';
import type { Database } from './schema.js';
import type { Executor } from './repositories/common.js';
import { KyselyApiTokenRepository, type ApiTokenRepository } from './repositories/api-tokens.js';
import { KyselyAuditRepository, type AuditRepository } from './repositories/audit.js';
import { KyselyInstanceRepository, type InstanceRepository } from './repositories/instances.js';
import { KyselyLeaseRepository, type LeaseRepository } from './repositories/leases.js';
import { KyselyLinkRepository, type LinkRepository } from './repositories/links.js';
import { KyselyMetaRepository, type MetaRepository } from './repositories/meta.js';
import { KyselySessionRepository, type SessionRepository } from './repositories/sessions.js';
import { KyselySigningKeyRepository, type SigningKeyRepository } from './repositories/signing-keys.js';
import { KyselyThrottleRepository, type ThrottleRepository } from './repositories/throttle.js';
import { KyselyUserRepository, type UserRepository } from './repositories/users.js';

/** Every repository, bound to one executor (the database, or one transaction). */
export interface Repositories {
  readonly users: UserRepository;
  readonly sessions: SessionRepository;
  readonly apiTokens: ApiTokenRepository;
  readonly links: LinkRepository;
  readonly audit: AuditRepository;
  readonly throttle: ThrottleRepository;
  readonly signingKeys: SigningKeyRepository;
  readonly meta: MetaRepository;
  readonly instances: InstanceRepository;
  readonly leases: LeaseRepository;
}

function repositories(db: Executor): Repositories {
  return {
    users: new KyselyUserRepository(db),
    sessions: new KyselySessionRepository(db),
    apiTokens: new KyselyApiTokenRepository(db),
    links: new KyselyLinkRepository(db),
    audit: new KyselyAuditRepository(db),
    throttle: new KyselyThrottleRepository(db),
    signingKeys: new KyselySigningKeyRepository(db),
    meta: new KyselyMetaRepository(db),
    instances: new KyselyInstanceRepository(db),
    leases: new KyselyLeaseRepository(db),
  };
}

/**
 * The store: repositories over one database, and `transaction()` for writes that must land
 * together or not at all.
 */
export class Store implements Repositories {
  readonly users: UserRepository;
  readonly sessions: SessionRepository;
  readonly apiTokens: ApiTokenRepository;
  readonly links: LinkRepository;
  readonly audit: AuditRepository;
  readonly throttle: ThrottleRepository;
  readonly signingKeys: SigningKeyRepository;
  readonly meta: MetaRepository;
  readonly instances: InstanceRepository;
  readonly leases: LeaseRepository;

  private constructor(
    readonly db: Kysely<Database>,
    readonly capabilities: Capabilities,
  ) {
    const repos = repositories(db);
    this.users = repos.users;
    this.sessions = repos.sessions;
    this.apiTokens = repos.apiTokens;
    this.links = repos.links;
    this.audit = repos.audit;
    this.throttle = repos.throttle;
    this.signingKeys = repos.signingKeys;
    this.meta = repos.meta;
    this.instances = repos.instances;
    this.leases = repos.leases;
  }

  /** Opens and migrates the store named by the URL. */
  static async open(url: string, options: OpenOptions = {}): Promise<Store> {
    const { db, capabilities } = openDatabase(url, options);
    try {
      await migrate(db, capabilities, options.schema);
    } catch (error) {
      await capabilities.stopBackground();
      await db.destroy();
      throw error;
    }
    return new Store(db, capabilities);
  }

  /**
   * Runs `work` in one transaction; repositories passed to it write inside that transaction, and
   * `trx` lets module-owned repositories join it.
   */
  transaction<T>(work: (repos: Repositories, trx: Executor) => Promise<T>): Promise<T> {
    return this.db.transaction().execute((trx) => work(repositories(trx), trx));
  }

  async close(): Promise<void> {
    await this.capabilities.stopBackground();
    await this.db.destroy();
  }
}
