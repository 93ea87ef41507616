import { AppError } from '../../errors/index.js';

/**
 * The Data Center `BasicScope` hierarchy (PROTOCOLS.md §5.3): each scope includes the ones
 * before it. Order matters: index = rank.
 */
export const SCOPES = ['READ', 'WRITE', 'ADMIN', 'SYSTEM_ADMIN'] as const;
export type Scope = (typeof SCOPES)[number];

/** Scopes that only an administrator may hold ("never more than the authorizing user may do"). */
const ADMIN_ONLY: ReadonlySet<Scope> = new Set(['ADMIN', 'SYSTEM_ADMIN']);

const rank = (s: Scope) => SCOPES.indexOf(s);

export function isScope(value: string): value is Scope {
  return (SCOPES as readonly string[]).includes(value);
}

/**
 * Parses a `scope` parameter (RFC 6749 §3.3: space-delimited, order-free). Values are matched
 * case-insensitively (our choice: Data Center documents them in upper case, some clients send
 * lower case) and answered upper case, deduplicated, in hierarchy order. An unknown value is
 * `invalid_scope`. Undefined for an absent or empty parameter.
 */
export function parseScope(value: string | undefined): Scope[] | undefined {
  if (value === undefined) return undefined;
  // RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ), separated by single spaces;
  // we tolerate runs of spaces, which clients produce when joining empty lists.
  const tokens = value.split(' ').filter((t) => t.length > 0);
  if (tokens.length === 0) return undefined;
  const out = new Set<Scope>();
  for (const token of tokens) {
    const upper = token.toUpperCase();
    if (!isScope(upper)) {
      throw new AppError('oauth2_invalid_scope', { message: `Unknown scope "${printable(token).slice(0, 40)}". Known scopes: ${SCOPES.join(' ')}.` });
    }
    out.add(upper);
  }
  return normalize([...out]);
}

/** Deduplicated, in hierarchy order. */
export function normalize(scopes: readonly Scope[]): Scope[] {
  return [...new Set(scopes)].sort((a, b) => rank(a) - rank(b));
}

/** Every scope the given ones include (WRITE → READ WRITE). */
export function closure(scopes: readonly Scope[]): Scope[] {
  const top = Math.max(-1, ...scopes.map(rank));
  return SCOPES.slice(0, top + 1);
}

/** True when `granted` (with what it includes) covers every scope of `requested`. */
export function covers(granted: readonly Scope[], requested: readonly Scope[]): boolean {
  const top = Math.max(-1, ...granted.map(rank));
  return requested.every((s) => rank(s) <= top);
}

/**
 * Caps requested scopes at what the user may do: a user who is not an administrator gets WRITE
 * where ADMIN or SYSTEM_ADMIN was asked (the part of them they hold). RFC 6749 §3.3 lets the
 * server grant less than asked, telling the client in the token response's `scope`.
 */
export function capForUser(scopes: readonly Scope[], isAdmin: boolean): Scope[] {
  if (isAdmin) return normalize(scopes);
  return normalize(scopes.map((s) => (ADMIN_ONLY.has(s) ? 'WRITE' : s)));
}

/**
 * Caps scopes at the highest of `allowed` (a client whose allowed scopes an administrator narrowed
 * after the user consented): ADMIN under a WRITE-only client becomes WRITE.
 */
export function capAt(scopes: readonly Scope[], allowed: readonly Scope[]): Scope[] {
  const top = Math.max(-1, ...allowed.map(rank));
  return normalize(scopes.flatMap((s) => (rank(s) <= top ? [s] : top >= 0 ? [SCOPES[top]!] : [])));
}

/** The `scope` string of a response: space-separated, in hierarchy order. */
export function formatScope(scopes: readonly Scope[]): string {
  return normalize(scopes).join(' ');
}

/** Parses a stored scope string (written by formatScope). */
export function storedScopes(value: string): Scope[] {
  return value.split(' ').filter(isScope);
}

/** True when the scopes allow changing requests (WRITE or above). */
export function allowsWrite(scopes: readonly Scope[]): boolean {
  return covers(scopes, ['WRITE']);
}

/** What each scope lets an application do, in words for the consent page. */
export const SCOPE_WORDS: Record<Scope, string> = {
  READ: 'See everything you can see: read your data and the data you have access to.',
  WRITE: 'Create, change and delete what you can change, as you.',
  ADMIN: 'Perform the administration you are allowed to do (projects, spaces, settings you administer), but never set passwords, create API tokens or grant administrator rights.',
  SYSTEM_ADMIN: 'Administer the whole system, as a system administrator, but never set passwords, create API tokens or grant administrator rights.',
};

/** Keeps only printable ASCII, for echoing client input in messages. */
function printable(value: string): string {
  return value.replace(/[^\x20-\x7e]/g, '?');
}
