import { loadConfig, ConfigError } from '../config/loader.js';
import type { Config } from '../config/schema.js';
import { AppError } from '../errors/index.js';
import { createLogger } from '../server/logger.js';
import { createServices, type Services } from '../services/index.js';

/** Runs a CLI action with services opened and closed around it; errors become a message and exit code. */
export async function withServices<T>(action: (s: Services) => Promise<T>): Promise<void> {
  let services: Services | undefined;
  try {
    const config = loadConfig();
    // The CLI logs only warnings, to stderr, so its stdout stays clean for scripts.
    services = await createServices(config, { logger: createLogger({ logLevel: 'warn' }, process.stderr as never) });
    await action(services);
  } catch (error) {
    fail(error);
  } finally {
    await services?.close();
  }
}

export function fail(error: unknown): never {
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`);
    process.exit(2);
  }
  if (error instanceof AppError) {
    process.stderr.write(`error: ${error.message}${error.field ? ` (${error.field})` : ''}\n`);
    process.exit(1);
  }
  process.stderr.write(`error: ${(error as Error).message ?? String(error)}\n`);
  process.exit(1);
}

/** Prints JSON for scripts, or aligned columns for people. */
export function output(rows: Record<string, unknown>[] | Record<string, unknown>, json: boolean, columns?: string[]): void {
  if (json || !Array.isArray(rows)) {
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    return;
  }
  const cols = columns ?? Object.keys(rows[0] ?? {});
  const cell = (v: unknown) => (v === null || v === undefined ? '-' : Array.isArray(v) ? v.join(',') : String(v));
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (values: string[]) => values.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  process.stdout.write(`${line(cols)}\n${rows.map((r) => line(cols.map((c) => cell(r[c])))).join('\n')}${rows.length ? '\n' : ''}`);
}

export function loadConfigOrExit(): Config {
  try {
    return loadConfig();
  } catch (error) {
    fail(error);
  }
}

/** `true`/`false`, for boolean options given as words. */
export function parseBool(value: string): boolean {
  if (/^(true|yes|1|on)$/i.test(value)) return true;
  if (/^(false|no|0|off)$/i.test(value)) return false;
  throw new Error(`expected true or false, got "${value}"`);
}
