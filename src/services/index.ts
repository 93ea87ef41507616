import path from 'node:path';
import type { Logger } from 'pino';
import { Edge } from '../auth/edge.js';
import { Pipeline } from '../auth/pipeline.js';
import { lockEmbeddedStore } from '../storage/sqlite-lock.js';
import { AuthTypeRegistry, type ModuleRuntime, type ProtocolModule } from '../auth/registry.js';
import type { Config } from '../config/schema.js';
import type { Keyring } from '../crypto/keyring.js';
import { modules as defaultModules } from '../modules/index.js';
import { OutgoingClient } from '../outgoing/client.js';
import { createLogger } from '../server/logger.js';
import type { OpenOptions } from '../storage/database.js';
import { Store } from '../storage/store.js';
import { systemClock, type Clock } from '../util/clock.js';
import { ApiTokenService } from './api-tokens.js';
import { AssertionService } from './assertions.js';
import { AuditService, SYSTEM_ACTOR } from './audit.js';
import { Authorizations } from './authorizations.js';
import { InstallationIdentity } from './identity.js';
import { CORE_SEALED_COLUMNS, KeyService, type SealedColumn } from './keys.js';
import { LinkService } from './links.js';
import { INSTANCE_TIMING, InstanceRegistry, type InstanceTiming } from './instances.js';
import { loadMasterKeys, MASTER_KEY_FILE, type KeySourceKind } from './master-key.js';
import { Revocations } from './revocations.js';
import { SessionService } from './sessions.js';
import { SignInService } from './sign-in.js';
import { UserService } from './users.js';

/** Everything the routes, the gateway, the library and the CLI use, built once per process. */
export interface Services {
  readonly config: Config;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly store: Store;
  readonly keyring: Keyring;
  /** Where the master keys come from: the key file (followed while running) or APPLINKS_MASTER_KEY (fixed until restart). */
  readonly keySource: KeySourceKind;
  /** The key file, when the keys come from it. */
  readonly keyFile: string | undefined;
  /** This process as a registered serving instance (see InstanceRegistry); undefined in short CLI commands. */
  readonly instance: InstanceRegistry | undefined;
  readonly edge: Edge;
  readonly modules: readonly ProtocolModule[];
  /** Each module's runtime, in module order. */
  readonly runtimes: readonly ModuleRuntime[];
  readonly registry: AuthTypeRegistry;
  readonly revocations: Revocations;
  readonly audit: AuditService;
  readonly users: UserService;
  readonly sessions: SessionService;
  readonly apiTokens: ApiTokenService;
  readonly signIn: SignInService;
  readonly links: LinkService;
  readonly keys: KeyService;
  readonly identity: InstallationIdentity;
  readonly assertions: AssertionService;
  readonly pipeline: Pipeline;
  /** Every module's per-user authorizations (authorized applications), as one list. */
  readonly authorizations: Authorizations;
  /** Calls linked applications with the link's outgoing authentication. */
  readonly outgoing: OutgoingClient;
  /** Set when this start created the `admin` user with a generated password: print it once. */
  readonly generatedAdminPassword: string | undefined;
  /** Stops background work, writes what is batched, closes the store. */
  close(): Promise<void>;
}

export interface CreateServicesOptions {
  clock?: Clock;
  logger?: Logger;
  modules?: readonly ProtocolModule[];
  storeOptions?: OpenOptions;
  /** Run periodic jobs (flush last-use, prune); off for short-lived CLI commands. */
  background?: boolean;
  /** Create the `admin` user when there are no users (the server does; the CLI does not). */
  bootstrapAdmin?: boolean;
  /**
   * Register as a serving instance: follow the key file and report the keys held, for key
   * rotation (see InstanceRegistry). Defaults to `background`.
   */
  instance?: boolean;
  instanceTiming?: Partial<InstanceTiming>;
}

/** Opens the store, loads keys and builds every service. */
export async function createServices(config: Config, options: CreateServicesOptions = {}): Promise<Services> {
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? createLogger(config);
  const modules = options.modules ?? defaultModules;
  const master = loadMasterKeys(config);
  const keyring = master.keyring;
  if (master.created) logger.info({ file: path.join(config.dataDir, MASTER_KEY_FILE) }, 'generated a new master key');
  // A serving process takes the embedded store for itself (short CLI commands share it).
  const sqliteFile = config.databaseUrl.startsWith('sqlite:') ? config.databaseUrl.slice('sqlite:'.length) : undefined;
  const unlock = options.background && sqliteFile && sqliteFile !== ':memory:' ? lockEmbeddedStore(path.resolve(sqliteFile)) : () => undefined;
  let store: Store;
  try {
    store = await Store.open(config.databaseUrl, { ...options.storeOptions, backgroundCheckpoints: options.background === true });
  } catch (error) {
    unlock();
    throw error;
  }
  try {
    const registry = new AuthTypeRegistry(modules);
    const revocations = new Revocations();
    const audit = new AuditService(store, clock);
    const ttl = config.authCacheTtlMs;
    const users = new UserService(store, clock, audit, revocations, ttl);
    const identity = await InstallationIdentity.load(store, keyring, config, registry);
    const sealedColumns: SealedColumn[] = [...CORE_SEALED_COLUMNS, ...modules.flatMap((m) => m.sealedColumns ?? [])];
    const keys = new KeyService(store, clock, keyring, sealedColumns);
    let services: Services | undefined;
    const instance = (options.instance ?? options.background) ? new InstanceRegistry(store, keyring, master.source, logger, { ...INSTANCE_TIMING, ...options.instanceTiming }) : undefined;
    const partial = {
      config,
      clock,
      logger,
      store,
      keyring,
      keySource: master.source,
      keyFile: master.file,
      instance,
      edge: new Edge(config),
      modules,
      registry,
      revocations,
      audit,
      users,
      sessions: new SessionService(store, clock, users, revocations, config.sessionTtlSeconds, ttl),
      apiTokens: new ApiTokenService(store, clock, users, audit, revocations, ttl),
      signIn: new SignInService(store, clock, users, audit, revocations, identity.hmacSecret, {
        maxFailuresPerUser: config.signInMaxFailuresPerUser,
        maxFailuresPerAddress: config.signInMaxFailuresPerAddress,
        windowSeconds: config.signInFailureWindowSeconds,
        passwordCacheTtlSeconds: config.passwordCacheTtlSeconds,
      }),
      links: new LinkService(store, clock, registry, keyring, audit, revocations, () => services!, ttl),
      keys,
      identity,
      assertions: new AssertionService(keys, clock, config.baseUrl, config.upstreamUrl ?? config.baseUrl, config.assertionTtlSeconds),
    };
    revocations.register(partial.assertions.revocable);
    const stops: Array<() => Promise<void> | void> = [];
    const built: Omit<Services, 'pipeline' | 'runtimes' | 'outgoing' | 'authorizations'> & {
      authorizations: Authorizations;
      pipeline?: Pipeline;
      runtimes?: ModuleRuntime[];
      outgoing?: OutgoingClient;
      generatedAdminPassword: string | undefined;
    } = {
      ...partial,
      authorizations: new Authorizations(() => services!),
      generatedAdminPassword: undefined,
      async close() {
        for (const stop of stops.splice(0)) await stop();
        await partial.apiTokens.flushLastUsed().catch((error: unknown) => logger.warn({ err: error }, 'could not write token last-use times'));
        await store.close();
        unlock();
      },
    };
    services = built as Services;
    built.outgoing = new OutgoingClient(services);
    // Modules are set up with the finished container (they read configuration and services).
    const runtimes = modules.map((m) => m.setup?.(services!) ?? {});
    built.runtimes = runtimes;
    partial.users.onDisable = (trx, userId) => built.authorizations.revokeForUser(trx, userId);
    partial.users.onDelete = async (repos, userId) => {
      const changed: string[] = [];
      for (const runtime of runtimes) changed.push(...((await runtime.onUserDeleted?.(repos, userId)) ?? []));
      return changed;
    };
    built.pipeline = new Pipeline(
      runtimes.flatMap((r) => r.authenticators ?? []),
      runtimes.flatMap((r) => (r.authorize ? [r.authorize.bind(r)] : [])),
    );
    if (options.bootstrapAdmin) {
      built.generatedAdminPassword = await bootstrapAdmin(services);
    }
    if (options.background) stops.push(...startBackground(services));
    if (instance) stops.push(await instance.start());
    return services;
  } catch (error) {
    await store.close();
    unlock();
    throw error;
  }
}

/**
 * Creates `admin` when no enabled administrator exists (a first start, even after users were
 * created from the command line); answers the generated password, if one was.
 */
async function bootstrapAdmin(s: Services): Promise<string | undefined> {
  if ((await s.store.users.countAdmins()) > 0) return undefined;
  const { randomBytes } = await import('node:crypto');
  const password = s.config.adminPassword ?? randomBytes(18).toString('base64url');
  try {
    await s.users.create({ username: 'admin', displayName: 'Administrator', password, isAdmin: true }, SYSTEM_ACTOR);
  } catch (error) {
    // Another instance created it at the same moment, or a user already has the name.
    const existing = await s.store.users.findByUsername('admin');
    if (existing === undefined) throw error;
    if (!existing.isAdmin || existing.disabled) s.logger.warn('no enabled administrator, and the name "admin" is taken: make one with `applinks users update <name> --admin true`');
    return undefined;
  }
  return s.config.adminPassword ? undefined : password;
}

function startBackground(s: Services): Array<() => Promise<void> | void> {
  const every = (ms: number, job: () => Promise<unknown>, what: string) => {
    const timer = setInterval(() => {
      job().catch((error: unknown) => s.logger.warn({ err: error }, `background job failed: ${what}`));
    }, ms);
    timer.unref();
    return () => clearInterval(timer);
  };
  const stops = [
    every(10_000, () => s.apiTokens.flushLastUsed(), 'write token last-use times'),
    every(600_000, () => s.sessions.pruneExpired(), 'prune expired sessions'),
    every(600_000, () => s.signIn.pruneThrottle(), 'prune throttle counters'),
  ];
  for (const runtime of s.runtimes) {
    const stop = runtime.start?.();
    if (stop) stops.push(stop);
  }
  return stops;
}
