/**
 * Measured runs and the interleaved rounds around them (method in ../shared/BENCHMARKS.md):
 * autocannon with 50 connections, a discarded warm-up, CPU microseconds per request of the
 * process under test from /proc, the first and last response checked, medians of five rounds
 * with min–max, every figure a ratio to a baseline measured in the same run. Within a round
 * the configurations alternate in short slices (see `interleave`), so they see the same machine.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import autocannon from 'autocannon';
import { request } from 'undici';

export interface LoadSpec {
  /** Absolute URL of the request (path and query included). */
  url: string;
  method?: 'GET' | 'POST' | 'PUT' | 'DELETE';
  headers?: Record<string, string>;
  body?: string;
  /**
   * Per-request headers for protocols that need a fresh value each time (OAuth 1.0a nonces):
   * called for every request the load generator sends.
   */
  dynamicHeaders?: () => Record<string, string>;
  /**
   * A fresh body for every request, for single-use credentials (OAuth 2.0 codes and refresh
   * tokens, each redeemable once): called for every request, including the two checks.
   */
  dynamicBody?: () => string;
  /** Throws when a response is not what this configuration must answer. */
  check?: (res: { status: number; headers: Record<string, unknown>; body: string }) => void;
}

export interface RunResult {
  rps: number;
  p99: number;
  cpuUsPerRequest: number;
  requests: number;
  non2xx: number;
  errors: number;
  rssMb: number;
}

/**
 * Rounds and seconds of load per configuration and round. Five rounds of 6 s rather than three
 * of 10 s: on these machines one process runs up to a tenth faster or slower than its twin for
 * its whole life (two identical servers in one round differed by 10% in every round), so a
 * median over more processes says more than longer runs of fewer.
 */
export const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
export const SECONDS = Number(process.env.BENCH_SECONDS ?? 6);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const TICK_US = 1_000_000 / 100; // getconf CLK_TCK is 100 on Linux

function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime + stime (fields 14 and 15)
}

export function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** A port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

async function checkOnce(spec: LoadSpec): Promise<void> {
  const res = await request(spec.url, { method: spec.method ?? 'GET', headers: { ...spec.headers, ...spec.dynamicHeaders?.() }, body: spec.dynamicBody?.() ?? spec.body ?? null });
  const body = await res.body.text();
  if (res.statusCode >= 300) throw new Error(`check: HTTP ${res.statusCode} from ${spec.url}: ${body.slice(0, 300)}`);
  spec.check?.({ status: res.statusCode, headers: res.headers, body });
}

function cannon(spec: LoadSpec, seconds: number, connections: number): Promise<autocannon.Result> {
  const url = new URL(spec.url);
  const options: autocannon.Options = {
    url: url.origin,
    connections,
    duration: seconds,
    pipelining: 1,
    requests: [
      {
        method: spec.method ?? 'GET',
        path: url.pathname + url.search,
        headers: spec.headers ?? {},
        ...(spec.body !== undefined ? { body: spec.body } : {}),
        ...(spec.dynamicHeaders || spec.dynamicBody
          ? {
              setupRequest: (req: autocannon.Request) => ({
                ...req,
                headers: { ...(req.headers ?? {}), ...spec.dynamicHeaders?.() },
                ...(spec.dynamicBody ? { body: spec.dynamicBody() } : {}),
              }),
            }
          : {}),
      },
    ],
  };
  return new Promise((resolve, reject) => {
    autocannon(options, (error, result) => (error ? reject(error) : resolve(result)));
  });
}

/** One stretch of load on a warm process: what it served, in how long, for how much CPU. */
interface Slice {
  requests: number;
  seconds: number;
  ticks: number;
  p99: number;
  non2xx: number;
  errors: number;
}

async function measureSlice(pid: number, spec: LoadSpec, seconds: number, connections: number): Promise<Slice> {
  const before = cpuTicks(pid);
  const started = performance.now();
  const result = await cannon(spec, seconds, connections);
  const elapsed = (performance.now() - started) / 1000;
  const after = cpuTicks(pid);
  return { requests: result.requests.total, seconds: elapsed, ticks: after - before, p99: result.latency.p99, non2xx: result.non2xx, errors: result.errors + result.timeouts };
}

/** The slices of one process in one round, summed: requests over the wall time they took, CPU over the requests. */
function resultOf(slices: Slice[], pid: number): RunResult {
  const sum = (f: (s: Slice) => number) => slices.reduce((total, s) => total + f(s), 0);
  const requests = sum((s) => s.requests);
  return {
    rps: requests / sum((s) => s.seconds),
    p99: median(slices.map((s) => s.p99)),
    cpuUsPerRequest: (sum((s) => s.ticks) * TICK_US) / Math.max(1, requests),
    requests,
    non2xx: sum((s) => s.non2xx),
    errors: sum((s) => s.errors),
    rssMb: rssMb(pid),
  };
}

export interface Configuration {
  name: string;
  /** Starts a fresh process under test and answers what to load it with. */
  start(): Promise<{ pid: number; spec: LoadSpec; stop(): Promise<void> }>;
}

const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

/**
 * Runs every configuration `rounds` times, a fresh process each round, and prints medians with
 * min–max and ratios to `baseline` (by req/s and by CPU per request).
 *
 * Within a round the configurations are measured side by side, not one after another: every
 * process of the round is started and warmed, then loaded in turn for short slices
 * (BENCH_SLICE_SECONDS, 2 s), the order rotating each pass, until each has had its `seconds`
 * of load. On these shared machines the speed of a core drifts by ±25% over tens of seconds;
 * slices seconds apart see the same machine, so the drift cancels out of the ratios instead of
 * deciding them. Every process but the one under load is stopped meanwhile: left idle on the
 * same core, nine processes' timers and collectors cost the loaded one up to a fifth.
 */
export async function interleave(configs: Configuration[], baseline: string, options: { rounds?: number; seconds?: number; warmupSeconds?: number; sliceSeconds?: number } = {}): Promise<Map<string, RunResult[]>> {
  const rounds = options.rounds ?? ROUNDS;
  const seconds = options.seconds ?? SECONDS;
  const sliceSeconds = Math.min(seconds, options.sliceSeconds ?? Number(process.env.BENCH_SLICE_SECONDS ?? 2));
  const passes = Math.max(1, Math.round(seconds / sliceSeconds));
  const connections = 50;
  const results = new Map<string, RunResult[]>(configs.map((c) => [c.name, []]));
  for (let round = 1; round <= rounds; round++) {
    const runs: Array<{ config: Configuration; pid: number; spec: LoadSpec; stop(): Promise<void>; slices: Slice[] }> = [];
    // Only the process under load runs; the others are stopped (SIGSTOP), so their timers, GC
    // and background threads take nothing from it.
    const resume = (run: { pid: number }) => process.kill(run.pid, 'SIGCONT');
    const pause = (run: { pid: number }) => process.kill(run.pid, 'SIGSTOP');
    try {
      for (const config of configs) {
        const run = { config, ...(await config.start()), slices: [] };
        runs.push(run);
        await checkOnce(run.spec);
        await cannon(run.spec, options.warmupSeconds ?? 3, connections);
        pause(run);
      }
      for (let pass = 0; pass < passes; pass++) {
        for (let i = 0; i < runs.length; i++) {
          const run = runs[(i + pass) % runs.length]!;
          resume(run);
          // What it deferred while stopped (the last slice's connections closing) is done first.
          await new Promise((r) => setTimeout(r, 100));
          run.slices.push(await measureSlice(run.pid, run.spec, sliceSeconds, connections));
          pause(run);
        }
      }
      for (const run of runs) {
        resume(run);
        await checkOnce(run.spec);
        const r = resultOf(run.slices, run.pid);
        results.get(run.config.name)!.push(r);
        process.stderr.write(
          `round ${round} ${run.config.name.padEnd(28)} ${fmt(r.rps).padStart(7)} req/s  p99 ${fmt(r.p99, 1).padStart(5)} ms  ${fmt(r.cpuUsPerRequest, 1).padStart(6)} µs/req  non2xx ${r.non2xx} errors ${r.errors}\n`,
        );
        if (r.non2xx > 0 || r.errors > 0) process.stderr.write(`  ! ${run.config.name}: ${r.non2xx} non-2xx, ${r.errors} errors\n`);
      }
    } finally {
      for (const run of runs) resume(run);
      await Promise.all(runs.map((run) => run.stop()));
    }
  }
  printTable(results, baseline);
  return results;
}

export function printTable(results: Map<string, RunResult[]>, baseline: string): void {
  const base = results.get(baseline)!;
  const baseRps = median(base.map((r) => r.rps));
  const baseCpu = median(base.map((r) => r.cpuUsPerRequest));
  const baseP99 = median(base.map((r) => r.p99));
  const rows = [...results].map(([name, runs]) => {
    const rps = runs.map((r) => r.rps);
    const cpu = runs.map((r) => r.cpuUsPerRequest);
    return [
      name,
      `${fmt(median(rps))} (${fmt(Math.min(...rps))}–${fmt(Math.max(...rps))})`,
      fmt(median(runs.map((r) => r.p99)), 1),
      `${fmt(median(cpu), 1)} (${fmt(Math.min(...cpu), 1)}–${fmt(Math.max(...cpu), 1)})`,
      `${fmt((median(rps) / baseRps) * 100)}%`,
      `${fmt(median(runs.map((r, i) => r.rps / base[i]!.rps)) * 100)}%`,
      `${fmt(median(cpu) / baseCpu, 2)}×`,
      `${fmt(median(runs.map((r) => r.p99)) / baseP99, 2)}×`,
    ];
  });
  // Beside the ratio of medians, the median of each round's ratio: a round's runs are minutes
  // apart, not tens of minutes, so it pairs figures the machine's drift has touched alike.
  const head = ['configuration', 'req/s median (min–max)', 'p99 ms', 'CPU µs/req (min–max)', `req/s vs ${baseline}`, 'same, per round', 'CPU vs baseline', 'p99 vs baseline'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  console.log(line(head));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of rows) console.log(line(r));
}

/** One target of an issue: `name`'s requests/s over `versus`'s, at least `target` (a fraction shown as %, or a factor shown as ×). */
export interface Target {
  label: string;
  name: string;
  versus: string;
  target: number;
  unit: '%' | '×';
}

/** Prints each target with the medians' ratio by req/s and by CPU per request, and whether it is met; answers whether all are. */
export function printTargets(results: Map<string, RunResult[]>, targets: readonly Target[]): boolean {
  const rps = (name: string) => median(results.get(name)!.map((r) => r.rps));
  const cpu = (name: string) => median(results.get(name)!.map((r) => r.cpuUsPerRequest));
  const width = Math.max(...targets.map((t) => t.label.length));
  let all = true;
  console.log('');
  for (const t of targets) {
    const ratio = rps(t.name) / rps(t.versus);
    const shown = (x: number) => (t.unit === '%' ? `${(x * 100).toFixed(1)}%` : `${x.toFixed(2)}×`);
    all &&= ratio >= t.target;
    console.log(`${t.label.padEnd(width)}  ${shown(ratio).padStart(6)} by req/s, ${(cpu(t.versus) / cpu(t.name)).toFixed(2)}× by CPU/req; target ${shown(t.target)} ${ratio >= t.target ? 'met' : 'NOT met'}`);
  }
  return all;
}

export { median };
