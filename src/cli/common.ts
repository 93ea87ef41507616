import { readFileSync } from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import { loadConfig, ConfigError } from '../config/loader.js';
import type { Config } from '../config/schema.js';
import { AppError } from '../errors/index.js';
import { createLogger } from '../server/logger.js';
import { createServices, type Services } from '../services/index.js';

/**
 * Exit codes: 0 done; 1 refused or failed (a service said no, the remote did not answer);
 * 2 the command line or the configuration is malformed, so nothing was attempted.
 * (`links request` adds 3: the user must authorize first.)
 */
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/**
 * A malformed command line found inside an action (JSON that does not parse, an empty standard
 * input): exits EXIT_USAGE like commander's own usage errors. Its message names the argument or
 * option and never quotes the value, which may be a secret.
 */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Runs a CLI action with services opened and closed around it; errors become a message and exit code. */
export async function withServices<T>(action: (s: Services) => Promise<T>): Promise<void> {
  let services: Services | undefined;
  try {
    const config = loadConfig();
    // The CLI logs only warnings, to stderr, so its stdout stays clean for scripts.
    services = await createServices(config, { logger: createLogger({ logLevel: 'warn' }, process.stderr as never) });
    await action(services);
  } catch (error) {
    await services?.close().catch(() => undefined);
    fail(error);
  }
  try {
    await services?.close();
  } catch (error) {
    fail(error);
  }
}

/** Prints one line for the error, never a stack, and exits with its code. */
export function fail(error: unknown): never {
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.problems.length === 1 ? `invalid configuration: ${printable(error.problems[0]!)}` : error.message}\n`);
    process.exit(EXIT_USAGE);
  }
  if (error instanceof UsageError) {
    process.stderr.write(`error: ${printable(error.message)}\n`);
    process.exit(EXIT_USAGE);
  }
  if (error instanceof AppError) {
    // "email: … (email)" says the field twice.
    const field = error.field && !error.message.includes(`${error.field}:`) ? ` (${error.field})` : '';
    process.stderr.write(`error: ${printable(error.message)}${printable(field)}\n`);
    process.exit(EXIT_FAILED);
  }
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`error: ${printable(message || String(error))}\n`);
  process.exit(EXIT_FAILED);
}

// C0 and C1 controls, and the Unicode line separators and bidirectional overrides that reorder
// what a terminal shows.
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * `text` as one line a terminal shows as is: control characters escaped (`\n`, `\u001b`), cut
 * at `max` characters. For messages that quote what the user typed (a name of 10,000 characters,
 * a newline in a username).
 */
export function printable(text: string, max = 300): string {
  const escaped = text.replace(UNPRINTABLE, (c) => {
    const json = JSON.stringify(c).slice(1, -1);
    return json.length > 1 ? json : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
  });
  return escaped.length > max ? `${escaped.slice(0, max)}…` : escaped;
}

/** A value the user typed, quoted for a message: `"bob"`, escaped and shortened. */
export function quoted(value: string): string {
  return `"${printable(value, 80)}"`;
}

/**
 * Makes commander's usage errors (unknown option or command, missing argument, invalid value)
 * one line plus a hint naming the command's --help, exiting EXIT_USAGE. Call once every command
 * is registered: the hint is set on each command.
 */
export function configureUsageErrors(program: Command): void {
  const visit = (cmd: Command, path: string) => {
    cmd.exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE));
    cmd.configureOutput({
      // An unknown `--password=…` would be quoted whole; long or control-character values are
      // shortened and escaped.
      outputError: (str, write) => write(`${printable(str.trimEnd().replace(/(unknown option '--?[^=']+)=[^']*'/, "$1=…'"))}\n`),
    });
    cmd.showHelpAfterError(`(run "${path} --help" for usage)`);
    for (const sub of cmd.commands) visit(sub, `${path} ${sub.name()}`);
  };
  visit(program, program.name());
}

/** Prints JSON for scripts, or aligned columns for people. */
export function output(rows: Record<string, unknown>[] | Record<string, unknown>, json: boolean, columns?: string[]): void {
  if (json || !Array.isArray(rows)) {
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    return;
  }
  const cols = columns ?? Object.keys(rows[0] ?? {});
  // A newline in a name would break the row; an escape sequence would reach the terminal.
  const cell = (v: unknown) => printable(v === null || v === undefined ? '-' : Array.isArray(v) ? v.join(',') : String(v), 10_000);
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
  throw new InvalidArgumentError('expected true or false.');
}

/** An option parser for a whole number from `min` to `max`. */
export function parseInteger(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}.`);
    return n;
  };
}

/** An option parser for a number of seconds from 0 to `max`, fractions allowed. */
export function parseSeconds(max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+(\.\d+)?$/.test(value) || !(n <= max)) throw new InvalidArgumentError(`expected a number of seconds from 0 to ${max}.`);
    return n;
  };
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2}))?$/;

/**
 * An RFC 3339 date (midnight UTC) or date-time with its offset, as epoch milliseconds. Date.parse
 * alone takes "tomorrow"-like strings, bare numbers ("99999" is a year) and 2024-02-31.
 */
export function parseDate(value: string): number {
  const m = RFC3339.exec(value);
  const [, y, mo, d, h = '0', mi = '0', s = '0'] = m ?? [];
  const ms = Date.parse(m && m[4] === undefined ? `${value}T00:00:00Z` : value);
  const day = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d)));
  if (!m || Number.isNaN(ms) || day.getUTCDate() !== Number(d) || day.getUTCMonth() !== Number(mo) - 1 || Number(h) > 23 || Number(mi) > 59 || Number(s) > 59) {
    throw new InvalidArgumentError('expected an RFC 3339 date (2030-01-31) or date-time with offset (2030-01-31T12:00:00Z).');
  }
  return ms;
}

/**
 * An argument that may come from a file (`@path`) or standard input (`@-`), so a secret need not
 * be on the command line, where `ps` shows it: the file's bytes, or the argument itself. `what`
 * names the argument in the message.
 */
export function argBytes(value: string, what: string): Buffer | string {
  if (!value.startsWith('@')) return value;
  const file = value.slice(1);
  try {
    return readFileSync(file === '-' ? 0 : file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageError(`${what}: cannot read ${file === '-' ? 'standard input' : quoted(file)}${code ? ` (${code})` : ''}`);
  }
}

/** {@link argBytes} as text. */
export function textArg(value: string, what: string): string {
  const v = argBytes(value, what);
  return typeof v === 'string' ? v : v.toString('utf8');
}

/** A JSON object from an argument, @file or @- (standard input). The message never quotes the text: it may hold secrets. */
export function jsonArg(value: string, what: string): Record<string, unknown> {
  const text = textArg(value, what);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    // JSON.parse's message quotes the text around the fault; say only where it is.
    const at = /position (\d+)/.exec((error as Error).message)?.[1];
    throw new UsageError(`${what}: not valid JSON${at !== undefined ? ` (at character ${at})` : text.trim() === '' ? ' (empty)' : ''}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new UsageError(`${what}: must be a JSON object`);
  return parsed as Record<string, unknown>;
}
