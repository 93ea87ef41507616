/**
 * Processes a benchmark run needs: a trivial upstream, the bare-proxy baseline, and an applinks
 * server from dist/, each pinned to a core (BENCHMARKS.md: unpinned runs lose about 25%).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The process under test runs on this core; load generator and upstream on the other. */
export const SERVER_CORE = '0';
export const LOAD_CORE = '1';

export interface Proc {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/** Every process a run started: none outlives the run, however it ends (an upstream left behind would load the next run's core). */
const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
});

/** Spawns `node <args>` pinned to a core and waits for it to print `listening <url>` (or a line matching `ready`). */
export function spawnPinned(core: string, args: string[], env: Record<string, string>, ready: RegExp): Promise<Proc & { child: ChildProcess; output: () => string }> {
  const child = spawn('taskset', ['-c', core, process.execPath, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`process did not start: ${args.join(' ')}\n${out}`)), 30_000);
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const m = ready.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({
          url: m[1] ?? '',
          pid: child.pid!,
          child,
          output: () => out,
          stop: () =>
            new Promise<void>((done) => {
              if (child.exitCode !== null) return done();
              child.once('exit', () => done());
              child.kill('SIGTERM');
              setTimeout(() => child.kill('SIGKILL'), 5000).unref();
            }),
        });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`process exited (${code}) before it was ready: ${args.join(' ')}\n${out}`));
    });
  });
}

/** A hello upstream that echoes the identity header it was given, so each run can be checked. */
export function startUpstream(core = LOAD_CORE): Promise<Proc> {
  return spawnPinned(core, [path.join(ROOT, 'bench/lib/upstream.mjs')], {}, /listening (http:\/\/\S+)/);
}

/**
 * The baseline: a plain node:http server forwarding with an undici Pool, no authentication.
 * With `addHeaders`, it adds those fixed headers to every request it forwards: the gateway
 * contract's identity headers without anything that computes them, to show what sending them
 * costs apart from authenticating.
 */
export function startBareProxy(upstream: string, core = SERVER_CORE, addHeaders?: Record<string, string>): Promise<Proc> {
  return spawnPinned(core, [...serverNodeFlags(), path.join(ROOT, 'bench/lib/bare-proxy.mjs')], { UPSTREAM: upstream, ...(addHeaders ? { ADD_HEADERS: JSON.stringify(addHeaders) } : {}) }, /listening (http:\/\/\S+)/);
}

/**
 * BENCH_SERVER_NODE_FLAGS go to the node of each process under test (applinks and the bare proxy,
 * so both can be profiled alike), e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`.
 */
function serverNodeFlags(): string[] {
  return process.env.BENCH_SERVER_NODE_FLAGS?.split(/\s+/).filter(Boolean) ?? [];
}

export interface ApplinksSetup {
  dataDir: string;
  env: Record<string, string>;
  /**
   * The environment of a server on a private copy of the data directory as it is now: the
   * embedded store serves one process, and a round runs its servers side by side. Copy once
   * what the server needs is prepared and the store closed.
   */
  copy(): Record<string, string>;
  cleanup(): void;
}

/** A fresh data directory and environment for an applinks server (embedded store unless overridden). */
export function applinksEnv(extra: Record<string, string> = {}): ApplinksSetup {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'applinks-bench-'));
  const env = {
    APPLINKS_DATA_DIR: dataDir,
    APPLINKS_HOST: '127.0.0.1',
    APPLINKS_ADMIN_PASSWORD: 'bench-admin-password',
    APPLINKS_LOG_LEVEL: 'warn',
    ...extra,
  };
  const copies: string[] = [];
  return {
    dataDir,
    env,
    copy: () => {
      const copy = mkdtempSync(path.join(tmpdir(), 'applinks-bench-copy-'));
      cpSync(dataDir, copy, { recursive: true });
      copies.push(copy);
      return { ...env, APPLINKS_DATA_DIR: copy };
    },
    cleanup: () => {
      for (const dir of [dataDir, ...copies]) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Starts `applinks serve` from dist/ with the given environment, pinned to the server core. The
 * environment must name a port (use `freePort()`): the base URL, which OAuth signatures cover,
 * is derived from it.
 */
export async function startApplinks(env: Record<string, string>, core = SERVER_CORE): Promise<Proc> {
  return spawnPinned(core, [...serverNodeFlags(), path.join(ROOT, 'dist/cli/main.js'), 'serve'], { ...env, APPLINKS_LOG_LEVEL: 'info' }, /"url":"(http:\/\/[^"]+)"[^\n]*applinks is listening/);
}
