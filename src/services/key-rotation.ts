import { setTimeout as sleep } from 'node:timers/promises';
import { Keyring } from '../crypto/keyring.js';
import type { Executor } from '../storage/repositories/common.js';
import type { InstanceRecord } from '../storage/repositories/instances.js';
import { KyselyLeaseRepository } from '../storage/repositories/leases.js';
import { processGone } from '../util/process-scope.js';
import type { Services } from './index.js';
import { INSTANCE_TIMING } from './instances.js';
import type { ResealReport, SealedCount } from './keys.js';
import { withLease, type HeldLease, type LeaseTiming } from './leases.js';
import { readKeyFile, writeKeyFile, type KeySourceKind } from './master-key.js';

/** A rotation step that would lose or strand secrets, refused with what stands in the way (nothing was changed). */
export class KeyRotationRefused extends Error {
  override name = 'KeyRotationRefused';
}

export interface RotationOptions {
  /** How long to wait for running instances to load or adopt a key. */
  waitMs?: number;
  /** How often to read the instances' reports while waiting. */
  pollMs?: number;
  /** An instance not heard from for this long is taken to have stopped. */
  liveMs?: number;
  /** Progress for people (the CLI prints it on stderr). */
  progress?: (line: string) => void;
  /** How long to wait while another rotate or prune holds the store's key lease; 0 (the default) refuses at once. */
  leaseWaitMs?: number;
  /** The lease's timing (tests shorten it). */
  lease?: Partial<LeaseTiming>;
}

/**
 * The store's lease that `rotate` and `prune` hold while they run, so that two of them (two
 * admins, a retried script, on one machine or several sharing PostgreSQL) never interleave:
 * one rewriting the key file or re-sealing while the other does would strand secrets.
 */
export const KEY_LEASE = 'master-keys';

type Timing = { waitMs: number; pollMs: number; liveMs: number; progress?: ((line: string) => void) | undefined };

export interface RotateResult {
  source: KeySourceKind;
  /** The key that seals from now on. */
  kid: string;
  /** The keys kept to open older values until `prune`. */
  oldKids: string[];
  /** Running instances that took part. */
  instances: number;
  report: ResealReport;
  notes: string[];
}

export interface PruneResult {
  source: KeySourceKind;
  kid: string;
  /** Keys removed from the key file; with APPLINKS_MASTER_KEY, the keys the operator may now remove. */
  removable: string[];
  removed: boolean;
  report: ResealReport;
  /** Values under key ids no key here opens: already lost, reported so that someone restores the key. */
  orphans: SealedCount[];
}

export interface KeyStatus {
  source: KeySourceKind;
  file: string | undefined;
  kids: string[];
  instances: Array<InstanceRecord & { live: boolean }>;
  census: SealedCount[];
}

const DEFAULTS = { waitMs: 30_000, pollMs: 250, liveMs: INSTANCE_TIMING.liveMs };

/**
 * `applinks keys rotate`. With the key file: a new key is added to the file (not sealing yet),
 * and once every running instance reports holding it, it is put first, so no instance ever meets
 * a value it cannot open; everything is then re-sealed under it. Old keys stay until `prune`.
 * With APPLINKS_MASTER_KEY (which a running process cannot see change): the operator has set
 * `new,old` and restarted the instances; this checks that every running instance holds `new`,
 * then re-seals everything under it.
 */
export async function rotateMasterKey(s: Services, options: RotationOptions = {}): Promise<RotateResult> {
  return withLease(s.store, KEY_LEASE, 'keys rotate', (lease) => rotate(s, { ...DEFAULTS, ...options }, lease), leaseOptions(options));
}

async function rotate(s: Services, o: Timing, lease: HeldLease): Promise<RotateResult> {
  s.keyring.refresh();
  const others = await liveInstances(s, o.liveMs);
  const notes: string[] = [];
  if (s.keySource === 'env') {
    const kid = s.keyring.currentKid;
    const missing = others.filter((i) => !i.kids.includes(kid));
    if (missing.length > 0) {
      throw new KeyRotationRefused(
        `nothing re-sealed: ${missing.length} running instance(s) do not hold key ${kid}, the first in APPLINKS_MASTER_KEY here, and could not open what is re-sealed under it:\n${list(missing)}\nSet APPLINKS_MASTER_KEY=<new>,<old> on every instance and restart them first.`,
      );
    }
    const before = await s.keys.countSealed();
    if (s.keyring.kids.length === 1 && before.every((c) => c.kid === kid)) {
      throw new KeyRotationRefused(
        `APPLINKS_MASTER_KEY holds one key (${kid}) and every secret is sealed under it: there is no new key to rotate to. ` +
          'Make one with `applinks keys generate`, set APPLINKS_MASTER_KEY=<new>,<current> on every instance and restart them, then run `applinks keys rotate` with that value.',
      );
    }
    const sealingOld = others.filter((i) => i.sealingKid !== kid);
    if (sealingOld.length > 0) notes.push(`${sealingOld.length} running instance(s) hold key ${kid} but seal with another; \`applinks keys prune\` refuses until they are restarted with ${kid} first:\n${list(sealingOld)}`);
    return { source: 'env', kid, oldKids: s.keyring.kids.slice(1), instances: others.length, report: await s.keys.reseal(undefined, fenced(lease)), notes };
  }

  const file = s.keyFile!;
  const keys = readKeyFile(file);
  const key = Keyring.generateKey();
  const kid = Keyring.kidOf(key);
  if (others.length > 0) {
    lease.check();
    writeKeyFile(file, [...keys, key]);
    o.progress?.(`added key ${kid} to ${file} (not sealing yet); waiting for ${others.length} running instance(s) to load it`);
    const laggards = await waitFor(s, o, lease, `load key ${kid}`, (i) => i.kids.includes(kid));
    if (laggards.length > 0) {
      // Nothing was sealed under the key: withdrawing it loses nothing.
      writeKeyFile(file, keys);
      throw new KeyRotationRefused(
        `not rotated: ${laggards.length} running instance(s) did not load key ${kid} from ${file} within ${o.waitMs / 1000} s:\n${list(laggards)}\n` +
          'Every instance must read the same key file (one data directory) or take its keys from APPLINKS_MASTER_KEY. ' +
          `An instance that stopped without deregistering counts as stopped ${o.liveMs / 1000} s after it was last heard from (at once, seen from its own machine). The key file is as it was.`,
      );
    }
  }
  lease.check();
  writeKeyFile(file, [key, ...keys]);
  s.keyring.refresh();
  if (s.keyring.currentKid !== kid) throw new Error(`${file} changed while rotating; look at it and rotate again`);
  if (others.length > 0) {
    o.progress?.(`key ${kid} seals from now on; waiting for the running instances to adopt it`);
    const slow = await waitFor(s, o, lease, `seal with key ${kid}`, (i) => i.sealingKid === kid);
    if (slow.length > 0) notes.push(`${slow.length} running instance(s) have not reported sealing with ${kid} yet; \`applinks keys prune\` waits for them:\n${list(slow)}`);
  }
  return { source: 'file', kid, oldKids: keys.map((k) => Keyring.kidOf(k)), instances: others.length, report: await s.keys.reseal(undefined, fenced(lease)), notes };
}

/**
 * `applinks keys prune`: drops the keys after the first from the key file, only when nothing
 * needs them any more. Refused while a running instance does not seal with the first key
 * (waiting for instances that follow the key file to adopt it), and while a stored value is
 * still sealed under a key to be removed once the stragglers (values sealed under an old key
 * since the rotation) are re-sealed. With APPLINKS_MASTER_KEY nothing is written: the same
 * checks say whether the old keys may be taken out of the variable.
 */
export async function pruneMasterKeys(s: Services, options: RotationOptions = {}): Promise<PruneResult> {
  return withLease(s.store, KEY_LEASE, 'keys prune', (lease) => prune(s, { ...DEFAULTS, ...options }, lease), leaseOptions(options));
}

async function prune(s: Services, o: Timing, lease: HeldLease): Promise<PruneResult> {
  s.keyring.refresh();
  const kids = s.keyring.kids;
  const kid = kids[0]!;
  const old = kids.slice(1);
  const adopted = (i: InstanceRecord) => i.sealingKid === kid && i.kids.includes(kid);
  let laggards = (await liveInstances(s, o.liveMs)).filter((i) => !adopted(i));
  if (laggards.length > 0 && s.keySource === 'file') {
    o.progress?.(`waiting for ${laggards.length} running instance(s) to seal with key ${kid}`);
    laggards = await waitFor(s, o, lease, `seal with key ${kid}`, adopted);
  }
  if (laggards.length > 0) {
    throw new KeyRotationRefused(
      `nothing removed: ${laggards.length} running instance(s) do not seal with key ${kid} yet, and what they seal would be lost with the old key:\n${list(laggards)}\n` +
        (s.keySource === 'file'
          ? 'Instances that read this key file adopt a new key within seconds; one that does not reads another file or APPLINKS_MASTER_KEY.'
          : `Restart them with ${kid} first in APPLINKS_MASTER_KEY.`),
    );
  }
  const report = await s.keys.reseal(undefined, fenced(lease));
  const blocking = report.census.filter((c) => old.includes(c.kid));
  if (blocking.length > 0) {
    const why = (c: SealedCount) =>
      report.unreadable
        .filter((u) => u.where === c.where && u.kid === c.kid)
        .map((u) => u.problem)
        .join('; ') || 'written while pruning';
    throw new KeyRotationRefused(
      `not removed: stored values are still sealed under ${blocking.length === 1 ? 'an old key' : 'old keys'} and could not be re-sealed under ${kid}:\n` +
        blocking.map((c) => `  ${c.where}: ${c.count} value(s) under key ${c.kid} (${why(c)})`).join('\n') +
        '\nRemoving the key would lose them for good. Set those secrets again (or delete what holds them), then prune again.',
    );
  }
  const orphans = report.census.filter((c) => !kids.includes(c.kid));
  if (s.keySource === 'env') return { source: 'env', kid, removable: old, removed: false, report, orphans };
  const file = s.keyFile!;
  const current = readKeyFile(file);
  if (Keyring.kidOf(current[0]!) !== kid) throw new Error(`${file} changed while pruning; look at it and prune again`);
  lease.check();
  if (current.length > 1) writeKeyFile(file, current.slice(0, 1));
  s.keyring.refresh();
  return { source: 'file', kid, removable: current.slice(1).map((k) => Keyring.kidOf(k)), removed: current.length > 1, report, orphans };
}

/** The keys, the instances on the store (live or not), and how many stored values each key id seals. */
export async function keyStatus(s: Services, options: Pick<RotationOptions, 'liveMs'> = {}): Promise<KeyStatus> {
  s.keyring.refresh();
  const since = Date.now() - (options.liveMs ?? DEFAULTS.liveMs);
  const instances = (await s.store.instances.list()).map((i) => ({ ...i, live: i.seenAt >= since && !processGone(i.scope, i.pid) }));
  return { source: s.keySource, file: s.keyFile, kids: s.keyring.kids, instances, census: await s.keys.countSealed() };
}

/**
 * Instances heard from within `liveMs`, other than this process. An instance that ran on this
 * machine (same boot and pid namespace) and whose process has exited is dead whatever its last
 * report says: its row is deleted (a server killed with SIGKILL does not deregister).
 */
export async function liveInstances(s: Services, liveMs: number = DEFAULTS.liveMs): Promise<InstanceRecord[]> {
  const since = Date.now() - liveMs;
  const live: InstanceRecord[] = [];
  for (const i of await s.store.instances.list()) {
    if (i.id === s.instance?.id || i.seenAt < since) continue;
    if (processGone(i.scope, i.pid)) await s.store.instances.remove(i.id);
    else live.push(i);
  }
  return live;
}

/**
 * Waits until every live instance satisfies `ok` (`what` it is waiting for them to do, for the
 * progress lines, which name the instances waited for whenever they change); answers those that
 * still do not when time is up. Stops with LeaseLost when the lease is lost.
 */
async function waitFor(s: Services, o: Timing, lease: HeldLease, what: string, ok: (i: InstanceRecord) => boolean): Promise<InstanceRecord[]> {
  const deadline = Date.now() + o.waitMs;
  let told = '';
  for (;;) {
    lease.check();
    const laggards = (await liveInstances(s, o.liveMs)).filter((i) => !ok(i));
    if (laggards.length === 0 || Date.now() >= deadline) return laggards;
    const names = laggards.map((i) => `${i.host} pid ${i.pid}`).join(', ');
    if (names !== told) {
      o.progress?.(
        `waiting for ${names} to ${what} (up to ${Math.round(o.waitMs / 1000)} s; an instance not heard from for ${o.liveMs / 1000} s counts as stopped, at once if its process is seen gone from this machine)`,
      );
      told = names;
    }
    await sleep(o.pollMs);
  }
}

function leaseOptions(o: RotationOptions) {
  return { ...o.lease, waitMs: o.leaseWaitMs ?? 0, ...(o.progress ? { progress: o.progress } : {}) };
}

/** Re-sealing commits only while the lease is held (see HeldLease.fence). */
function fenced(lease: HeldLease) {
  return { fence: (trx: Executor) => lease.fence({ leases: new KyselyLeaseRepository(trx) }) };
}

function list(instances: readonly InstanceRecord[]): string {
  const now = Date.now();
  return instances
    .map(
      (i) =>
        `  ${i.host} pid ${i.pid}: keys from ${i.keySource === 'env' ? 'APPLINKS_MASTER_KEY' : 'its key file'}, sealing with ${i.sealingKid}, holding ${i.kids.join(', ')}; last heard ${Math.max(0, Math.round((now - i.seenAt) / 1000))} s ago`,
    )
    .join('\n');
}
