import { randomUUID } from 'node:crypto';
import { Value } from '@sinclair/typebox/value';
import { request as undiciRequest } from 'undici';
import type { AuthSet, AuthTypeDescriptor, AuthTypeRegistry, Forgotten, IssuedSecrets, LinkAuthSpec } from '../auth/registry.js';
import { SealError, type Keyring } from '../crypto/keyring.js';
import { AppError } from '../errors/index.js';
import { parseManifest, type Manifest } from '../protocols/applinks/manifest.js';
import { isForeignKeyViolation, UniqueViolation, type Executor } from '../storage/repositories/common.js';
import type { Direction, LinkAuthRecord, LinkRecord } from '../storage/repositories/links.js';
import type { Repositories, Store } from '../storage/store.js';
import type { Clock } from '../util/clock.js';
import type { Awaitable } from '../util/awaitable.js';
import { isStorableName } from '../util/text.js';
import { TtlCache } from '../util/ttl-cache.js';
import type { Actor, AuditService } from './audit.js';
import type { Revocations } from './revocations.js';
import type { Services } from './index.js';

export type AuthConfigs = Record<string, Record<string, unknown>>;

export interface LinkInput {
  name: string;
  url?: string | null;
  applicationType?: string;
  incoming?: AuthConfigs;
  outgoing?: AuthConfigs;
}

export interface LinkUpdate {
  name?: string;
  url?: string | null;
  applicationType?: string;
}

/** The public view of one direction's configuration of one type: secrets are only named. */
export interface AuthView {
  type: string;
  config: Record<string, unknown>;
  /** Names of the secret fields that hold a value (the values are never returned). */
  secretsSet: string[];
  warnings: string[];
  updatedAt: number;
}

export interface LinkView extends LinkRecord {
  incoming: AuthView[];
  outgoing: AuthView[];
  /** The outgoing type of highest weight, used when a caller does not ask for one. */
  primaryOutgoingType: string | null;
  incomingOnly: boolean;
}

export interface LinkHealth {
  linkId: string;
  healthy: boolean;
  checkedAt: number;
  warnings: string[];
  remote: null | {
    url: string;
    reachable: boolean;
    status: number | null;
    manifest: RemoteManifest | null;
    error: string | null;
  };
}

/** Secrets modules generated for the configurations one write set, by direction and type (`incoming.oauth2.clientSecret`). */
export type IssuedByType = Partial<Record<Direction, Record<string, IssuedSecrets>>>;

/**
 * A link as the write that created or configured it answers it: with the secrets that write
 * generated (a confidential OAuth 2.0 client's secret), which exist nowhere else in plain and are
 * never shown again. Absent when the write generated none.
 */
export interface LinkWritten extends LinkView {
  issuedSecrets?: IssuedByType;
}

export type RemoteManifest = Partial<Manifest> & { id: string; typeId: string };

export const APPLICATION_TYPES = ['generic', 'jira', 'confluence', 'bitbucket', 'stash', 'bamboo', 'crowd', 'fecru', 'refapp', 'applinks'] as const;

/** An incoming configuration found by its lookup key, with the link it belongs to. */
export interface IncomingMatch {
  link: LinkRecord;
  auth: LinkAuthRecord;
}

/**
 * Application links and their typed incoming and outgoing authentication configurations. The
 * registry's schema of each type validates its configuration; secret fields are sealed at rest
 * and never returned. Deleting a link revokes everything issued through it, at once.
 */
/** More writes of a module, done inside the transaction that creates or changes a link. */
export type Within = (repos: Repositories, trx: Executor, linkId: string) => Promise<void>;

export class LinkService {
  private readonly incomingCache: TtlCache<IncomingMatch | null>;
  private readonly linkCache: TtlCache<LinkRecord>;
  /** Sealed values already logged as unreadable, so a list polled every few seconds logs each once. */
  private readonly unreadableReported = new Set<string>();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly registry: AuthTypeRegistry,
    private readonly keyring: Keyring,
    private readonly audit: AuditService,
    private readonly revocations: Revocations,
    private readonly services: () => Services,
    private readonly cacheTtlMs: number,
  ) {
    this.incomingCache = revocations.register(new TtlCache(10_000, () => clock.now()));
    this.linkCache = revocations.register(new TtlCache(10_000, () => clock.now()));
  }

  /** The link record from a short-lived cache, for the request path; undefined once deleted. */
  cached(id: string): Awaitable<LinkRecord | undefined> {
    return this.linkCache.get(id) ?? this.load(id);
  }

  private async load(id: string): Promise<LinkRecord | undefined> {
    const link = await this.store.links.findById(id);
    if (link) this.linkCache.set(id, link, this.cacheTtlMs, [`link:${id}`]);
    return link;
  }

  /** Creates a link; `within` does a module's own writes in the same transaction (all or nothing). */
  async create(input: LinkInput, actor: Actor, within?: Within): Promise<LinkWritten> {
    const url = normaliseUrl(input.url ?? null);
    const applicationType = checkApplicationType(input.applicationType ?? 'generic');
    const now = this.clock.now();
    const link: LinkRecord = { id: randomUUID(), name: checkName(input.name), url, applicationType, remoteApplicationId: null, createdAt: now, updatedAt: now };
    const auths: LinkAuthRecord[] = [];
    for (const direction of ['incoming', 'outgoing'] as const) {
      for (const [type, config] of Object.entries(input[direction] ?? {})) {
        auths.push(await this.prepareAuth(link.id, direction, type, config, undefined, now));
      }
    }
    const issued: IssuedByType = {};
    await this.conflictsAsAppErrors(input.name, () =>
      this.store.transaction(async (repos, trx) => {
        await repos.links.create(link);
        for (const auth of auths) await repos.links.upsertAuth(auth);
        const names: string[] = [];
        for (const auth of auths) {
          names.push(...(await this.issue({ trx, repos, actor, linkId: link.id, direction: auth.direction, type: auth.type, before: undefined, after: auth.config }, issued)));
        }
        await this.audit.record(
          actor,
          { action: 'link.create', target: { type: 'link', id: link.id, name: link.name }, details: { types: auths.map((a) => `${a.direction}:${a.type}`), ...(names.length > 0 ? { issued: names } : {}) } },
          repos,
        );
        await within?.(repos, trx, link.id);
      }),
    );
    for (const auth of auths) this.knownNow(auth);
    return withIssued(await this.get(link.id), issued);
  }

  async get(id: string): Promise<LinkView> {
    const link = await this.store.links.findById(id);
    if (!link) throw new AppError('not_found', { message: 'No such application link.' });
    return this.view(link, await this.store.links.listAuth(id));
  }

  async list(): Promise<LinkView[]> {
    const [links, auths] = await Promise.all([this.store.links.list(), this.store.links.listAllAuth()]);
    return links.map((l) => this.view(l, auths.filter((a) => a.linkId === l.id)));
  }

  async update(id: string, update: LinkUpdate, actor: Actor): Promise<LinkView> {
    const patch: LinkUpdate = {};
    if (update.name !== undefined) patch.name = checkName(update.name);
    if (update.url !== undefined) patch.url = normaliseUrl(update.url);
    if (update.applicationType !== undefined) patch.applicationType = checkApplicationType(update.applicationType);
    await this.conflictsAsAppErrors(update.name ?? '', () =>
      this.store.transaction(async (repos, trx) => {
        const before = await repos.links.findById(id);
        const link = before && (await repos.links.update(id, patch, this.clock.now()));
        if (!link) throw new AppError('not_found', { message: 'No such application link.' });
        // Credentials obtained from the old remote must not follow the link to another one.
        const forgotten = link.url !== before.url ? await this.forget(this.services().runtimes.map((r) => () => r.onLinkMoved?.(trx, id))) : undefined;
        await this.audit.record(actor, { action: 'link.update', target: { type: 'link', id, name: link.name }, details: { fields: Object.keys(patch), ...forgotten } }, repos);
      }),
    );
    this.revocations.link(id);
    return this.get(id);
  }

  /**
   * Sets one type's configuration on one side. Omitted secret fields keep their stored values.
   * Answers the secrets a module generated for it (a client made confidential), this once.
   * The link and the configuration are read before the transaction: a configuration added,
   * changed or removed meanwhile (another request, another instance, a key rotation re-sealing
   * its secrets) is a `conflict`, never silently replaced: what this write keeps and revokes was
   * decided against the configuration it read, and what another write's `within` did (a client
   * secret) would vouch for this one. A link deleted meanwhile is `not_found`. Nothing is written
   * either way.
   */
  async setAuth(id: string, direction: Direction, type: string, config: Record<string, unknown>, actor: Actor, within?: Within): Promise<LinkWritten> {
    const link = await this.store.links.findById(id);
    if (!link) throw new AppError('not_found', { message: 'No such application link.' });
    const existing = await this.store.links.findAuth(id, direction, type);
    const auth = await this.prepareAuth(id, direction, type, config, existing, this.clock.now());
    const issued: IssuedByType = {};
    const write = () =>
      this.store.transaction(async (repos, trx) => {
        if (!existing) await repos.links.insertAuth(auth);
        else if (!(await repos.links.replaceAuth(existing, auth))) throw changedMeanwhile(direction, type);
        // A new lookup key (consumer key, client id) is a different client: what the old one was
        // issued goes. Otherwise each module revokes what the changed configuration no longer vouches for.
        const sameKey = existing !== undefined && existing.lookupKey === auth.lookupKey;
        const forgotten = !existing
          ? undefined
          : !sameKey
            ? await this.authRemoved(trx, id, direction, type)
            : await this.forget(this.services().runtimes.map((r) => () => r.onAuthChanged?.({ trx, repos, actor, linkId: id, direction, type, before: existing.config, after: auth.config })));
        const names = await this.issue({ trx, repos, actor, linkId: id, direction, type, before: sameKey ? existing.config : undefined, after: auth.config }, issued);
        await this.audit.record(actor, { action: `link.${direction}.set`, target: { type: 'link', id, name: link.name }, details: { type, ...forgotten, ...(names.length > 0 ? { issued: names } : {}) } }, repos);
        await within?.(repos, trx, id);
      });
    await this.raceAsAppErrors(id, direction, type, existing, () => this.conflictsAsAppErrors(link.name, write));
    this.revocations.link(id);
    this.knownNow(auth);
    return withIssued(await this.get(id), issued);
  }

  /**
   * What a configuration write refused because of a concurrent change means: the link deleted
   * (a foreign key, or the configuration gone with it) is `not_found`; a configuration of this
   * type that appeared since it was read absent is a `conflict`. Either way nothing was written.
   */
  private async raceAsAppErrors<T>(id: string, direction: Direction, type: string, existing: LinkAuthRecord | undefined, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      const refused = isForeignKeyViolation(error) || (error instanceof AppError && error.code === 'conflict');
      if (refused && !(await this.store.links.findById(id))) {
        this.revocations.link(id);
        throw new AppError('not_found', { message: 'No such application link: it was deleted meanwhile.', cause: error });
      }
      if (error instanceof AppError && error.code === 'conflict' && !existing && (await this.store.links.findAuth(id, direction, type))) {
        throw new AppError('conflict', { message: `The link was given an ${direction} ${type} configuration meanwhile; look at it and try again.`, cause: error });
      }
      throw error;
    }
  }

  /** Removes one type from one side; tokens issued through it stop working at once. */
  async deleteAuth(id: string, direction: Direction, type: string, actor: Actor): Promise<LinkView> {
    await this.store.transaction(async (repos, trx) => {
      const link = await repos.links.findById(id);
      if (!link) throw new AppError('not_found', { message: 'No such application link.' });
      if (!(await repos.links.deleteAuth(id, direction, type))) {
        throw new AppError('not_found', { message: `The link has no ${direction} ${type} configuration.` });
      }
      const forgotten = await this.authRemoved(trx, id, direction, type);
      await this.audit.record(actor, { action: `link.${direction}.delete`, target: { type: 'link', id, name: link.name }, details: { type, ...forgotten } }, repos);
    });
    this.revocations.link(id);
    return this.get(id);
  }

  /** Deletes the link and, by cascade in the same transaction, everything issued through it. */
  async delete(id: string, actor: Actor): Promise<void> {
    await this.store.transaction(async (repos) => {
      const link = await repos.links.findById(id);
      if (!link) throw new AppError('not_found', { message: 'No such application link.' });
      await repos.links.delete(id);
      await this.audit.record(actor, { action: 'link.delete', target: { type: 'link', id, name: link.name } }, repos);
    });
    this.revocations.link(id);
  }

  /**
   * The incoming configuration of `type` whose lookup key is `key` (a consumer key, a client
   * id), cached like credentials (answered synchronously from the cache). Answers undefined when none.
   */
  findIncoming(type: string, key: string): Awaitable<IncomingMatch | undefined> {
    // Keys come from the wire: one no configuration could hold is unknown without asking the store.
    if (!isStorableName(key, 1024)) return undefined;
    const cacheKey = incomingCacheKey(type, key);
    const cached = this.incomingCache.get(cacheKey);
    if (cached !== undefined) return cached ?? undefined;
    return this.loadIncoming(type, key, cacheKey);
  }

  private async loadIncoming(type: string, key: string, cacheKey: string): Promise<IncomingMatch | undefined> {
    const auth = await this.store.links.findAuthByLookupKey('incoming', type, key);
    const link = auth ? await this.store.links.findById(auth.linkId) : undefined;
    const match = auth && link ? { link, auth } : null;
    this.incomingCache.set(cacheKey, match, this.cacheTtlMs, match ? [`link:${match.link.id}`] : []);
    return match ?? undefined;
  }

  /**
   * A key just registered may be cached here as unknown (a client tried it first, or it named the
   * configuration before a change of key and a change back): not after this instance's own write.
   * Its link's tag does not reach that entry, which names no link.
   */
  private knownNow(auth: LinkAuthRecord): void {
    if (auth.direction === 'incoming' && auth.lookupKey !== null) this.incomingCache.delete(incomingCacheKey(auth.type, auth.lookupKey));
  }

  /**
   * Asks the modules for the credentials a configuration just set needs (`onAuthSet`), collects
   * them into `into` and answers their names (`incoming.oauth2.clientSecret`) for the audit entry.
   */
  private async issue(set: AuthSet, into: IssuedByType): Promise<string[]> {
    const names: string[] = [];
    for (const runtime of this.services().runtimes) {
      const issued = await runtime.onAuthSet?.(set);
      if (!issued || Object.keys(issued).length === 0) continue;
      const byType = (into[set.direction] ??= {});
      byType[set.type] = { ...byType[set.type], ...issued };
      names.push(...Object.keys(issued).map((name) => `${set.direction}.${set.type}.${name}`));
    }
    return names;
  }

  private authRemoved(trx: Executor, linkId: string, direction: Direction, type: string): Promise<{ forgotten: Forgotten } | undefined> {
    return this.forget(this.services().runtimes.map((r) => () => r.onAuthRemoved?.(trx, linkId, direction, type)));
  }

  /** Runs modules' hooks one after the other (they share a transaction) and adds up what they deleted, for the audit entry. */
  private async forget(hooks: ReadonlyArray<() => Promise<Forgotten | void> | undefined>): Promise<{ forgotten: Forgotten } | undefined> {
    const forgotten: Record<string, number> = {};
    for (const hook of hooks) Object.assign(forgotten, await hook());
    return Object.keys(forgotten).length > 0 ? { forgotten } : undefined;
  }

  /**
   * The names of the secret fields a configuration holds, for views. Read from the names kept
   * beside the sealed value, so listing links opens no secret; rows older than those names are
   * opened. A value that cannot be opened (sealed under a key this instance does not hold, or
   * damaged) does not fail the view: the entry says so in `warnings`, and the log says it once
   * per value, with where it is but nothing of its content.
   */
  private secretNames(auth: LinkAuthRecord, warnings: string[]): string[] {
    const sealed = auth.secretsSealed!;
    const kid = this.keyring.kidOfSealed(sealed) ?? '';
    let names: readonly string[] | undefined = auth.secretFields ?? undefined;
    let problem: string | undefined;
    if (!this.keyring.has(kid)) {
      problem = `sealed under unknown key id ${kid}`;
    } else if (!names) {
      try {
        names = Object.keys(this.openSecrets(auth));
      } catch (error) {
        if (!(error instanceof SealError)) throw error;
        problem = error.message;
      }
    }
    if (problem !== undefined) {
      warnings.push(
        `The stored secrets of this configuration cannot be opened (${problem}): requests that need them fail until they are set again, or the master key they were sealed under is restored.`,
      );
      if (!this.unreadableReported.has(sealed)) {
        this.unreadableReported.add(sealed);
        this.services().logger.warn({ linkId: auth.linkId, direction: auth.direction, type: auth.type, kid, problem }, 'a link secret cannot be opened');
      }
    }
    return [...(names ?? [])];
  }

  /**
   * The stored secrets a new configuration may keep. Ones that cannot be opened are not kept:
   * setting the configuration again, with its secrets, is how an operator repairs it.
   */
  private previousSecrets(existing: LinkAuthRecord): Record<string, unknown> {
    try {
      return this.openSecrets(existing);
    } catch (error) {
      if (!(error instanceof SealError)) throw error;
      this.services().logger.warn(
        { linkId: existing.linkId, direction: existing.direction, type: existing.type, problem: error.message },
        'replacing link secrets that cannot be opened',
      );
      return {};
    }
  }

  /** The opened secret fields of a configuration. */
  openSecrets(auth: LinkAuthRecord): Record<string, unknown> {
    if (!auth.secretsSealed) return {};
    return JSON.parse(this.keyring.open(auth.secretsSealed, sealContext(auth.linkId, auth.direction, auth.type))) as Record<string, unknown>;
  }

  /** Reachability and manifest of the remote, for links with an outgoing side. */
  async health(id: string): Promise<LinkHealth> {
    const view = await this.get(id);
    const checkedAt = this.clock.now();
    if (view.outgoing.length === 0) return { linkId: id, healthy: true, checkedAt, warnings: [], remote: null };
    if (!view.url) {
      return { linkId: id, healthy: false, checkedAt, warnings: ['The link has outgoing authentication but no URL to reach the remote at.'], remote: null };
    }
    const manifestUrl = `${view.url}/rest/applinks/1.0/manifest`;
    const warnings: string[] = [];
    try {
      const res = await undiciRequest(manifestUrl, {
        method: 'GET',
        headers: { accept: 'application/json, application/xml;q=0.9' },
        headersTimeout: 5000,
        bodyTimeout: 5000,
        maxRedirections: 0,
      } as Parameters<typeof undiciRequest>[1]);
      const body = (await res.body.text()).slice(0, 1_000_000);
      let manifest: RemoteManifest | null = null;
      if (res.statusCode === 200) {
        try {
          manifest = parseManifest(body, String(res.headers['content-type'] ?? ''));
        } catch {
          warnings.push('The remote answered its manifest URL with something that is not a manifest.');
        }
      } else {
        warnings.push(`The remote has no Application Links manifest (HTTP ${res.statusCode}); it is reachable.`);
      }
      if (manifest && view.remoteApplicationId && manifest.id !== view.remoteApplicationId) {
        warnings.push(`The remote now announces application id ${manifest.id}, not ${view.remoteApplicationId}: it may be a different application.`);
      }
      if (manifest && !view.remoteApplicationId) {
        await this.store.links.update(id, { remoteApplicationId: manifest.id }, checkedAt);
      }
      return { linkId: id, healthy: true, checkedAt, warnings, remote: { url: view.url, reachable: true, status: res.statusCode, manifest, error: null } };
    } catch (error) {
      return {
        linkId: id,
        healthy: false,
        checkedAt,
        warnings: ['The remote could not be reached.'],
        remote: { url: view.url, reachable: false, status: null, manifest: null, error: (error as Error).message },
      };
    }
  }

  private view(link: LinkRecord, auths: LinkAuthRecord[]): LinkView {
    const side = (direction: Direction) =>
      auths
        .filter((a) => a.direction === direction)
        .map((a): AuthView => {
          const spec = this.registry.get(a.type)?.[direction];
          const warnings = [...(spec?.warnings?.(a.config) ?? [])];
          const secretsSet = spec?.secretFields?.length && a.secretsSealed ? this.secretNames(a, warnings) : [];
          return { type: a.type, config: a.config, secretsSet, warnings, updatedAt: a.updatedAt };
        });
    const outgoing = side('outgoing');
    return {
      ...link,
      incoming: side('incoming'),
      outgoing,
      primaryOutgoingType: this.registry.primary(outgoing.map((o) => o.type))?.id ?? null,
      incomingOnly: outgoing.length === 0,
    };
  }

  private async prepareAuth(
    linkId: string,
    direction: Direction,
    type: string,
    input: Record<string, unknown>,
    existing: LinkAuthRecord | undefined,
    now: number,
  ): Promise<LinkAuthRecord> {
    const descriptor: AuthTypeDescriptor | undefined = this.registry.get(type);
    const spec: LinkAuthSpec | undefined = descriptor?.[direction];
    const field = `${direction}.${type}`;
    if (!spec) throw new AppError('validation_failed', { field, message: `${field}: ${type} cannot be configured on the ${direction} side of a link.` });
    const secretFields = spec.secretFields ?? [];
    const previous = existing ? this.previousSecrets(existing) : {};
    const merged: Record<string, unknown> = { ...input };
    for (const name of secretFields) {
      if (merged[name] === undefined && previous[name] !== undefined && (spec.keepsSecret?.(name, input) ?? true)) merged[name] = previous[name];
    }
    const firstError = Value.Errors(spec.schema, merged).First();
    if (firstError) {
      const at = firstError.path.replace(/^\//, '').replace(/\//g, '.');
      throw new AppError('validation_failed', { field: at ? `${field}.${at}` : field, message: `${at ? `${field}.${at}` : field}: ${firstError.message}` });
    }
    const config = spec.validate ? await spec.validate(merged, this.services()) : merged;
    const secrets: Record<string, unknown> = {};
    const plain: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(config)) (secretFields.includes(k) ? secrets : plain)[k] = v;
    return {
      linkId,
      direction,
      type,
      config: plain,
      secretsSealed: Object.keys(secrets).length > 0 ? this.keyring.seal(JSON.stringify(secrets), sealContext(linkId, direction, type)) : null,
      secretFields: Object.keys(secrets),
      lookupKey: spec.lookupKey?.(config) ?? null,
      createdAt: existing?.createdAt ?? now,
      updatedAt: now,
    };
  }

  private async conflictsAsAppErrors<T>(name: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (!(error instanceof UniqueViolation)) throw error;
      const cause = String((error.cause as Error | undefined)?.message ?? '');
      if (/lookup|link_auth/.test(cause)) {
        throw new AppError('conflict', { message: 'Another link already uses this key or client id.' });
      }
      throw new AppError('conflict', { message: `A link named "${name}" already exists.`, field: 'name' });
    }
  }
}

/** The incoming-configuration cache's key of a lookup key (consumer key, client id) of a type. */
function incomingCacheKey(type: string, key: string): string {
  return `${type}\u0000${key}`;
}

function withIssued(view: LinkView, issued: IssuedByType): LinkWritten {
  return Object.keys(issued).length > 0 ? { ...view, issuedSecrets: issued } : view;
}

/** The additional authenticated data of a link configuration's sealed secrets. */
export function sealContext(linkId: string, direction: Direction, type: string): string {
  return `link_auth.secrets_sealed:${linkId}/${direction}/${type}`;
}

function checkName(name: string): string {
  const trimmed = name.trim();
  if (!isStorableName(trimmed, 200)) throw new AppError('validation_failed', { field: 'name', message: 'name: 1 to 200 characters, no control characters.' });
  return trimmed;
}

function checkApplicationType(type: string): string {
  if (!(APPLICATION_TYPES as readonly string[]).includes(type)) {
    throw new AppError('validation_failed', { field: 'applicationType', message: `applicationType: one of ${APPLICATION_TYPES.join(', ')}.` });
  }
  return type;
}

function normaliseUrl(url: string | null): string | null {
  if (url === null || url === '') return null;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new AppError('validation_failed', { field: 'url', message: 'url: must be an absolute http(s) URL.' });
  }
  if (!['http:', 'https:'].includes(parsed.protocol) || parsed.username || parsed.password || parsed.search || parsed.hash) {
    throw new AppError('validation_failed', { field: 'url', message: 'url: must be an http(s) URL without credentials, query or fragment.' });
  }
  return parsed.toString().replace(/\/+$/, '');
}

/** A configuration write refused because the configuration it was decided against is no longer there as read. */
function changedMeanwhile(direction: Direction, type: string): AppError {
  return new AppError('conflict', { message: `The link's ${direction} ${type} configuration was changed or removed meanwhile; look at it and try again.` });
}
