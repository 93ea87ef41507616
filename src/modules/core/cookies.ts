/** Reads one cookie from a Cookie header without parsing the rest. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) {
      const value = part.slice(eq + 1).trim();
      try {
        return decodeURIComponent(value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value);
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

/** The Cookie header without one cookie (so the host never sees applinks' session). */
export function withoutCookie(header: string, name: string): string | undefined {
  const kept = header
    .split(';')
    .map((p) => p.trim())
    .filter((p) => p && p.slice(0, p.indexOf('=') < 0 ? p.length : p.indexOf('=')).trim() !== name);
  return kept.length > 0 ? kept.join('; ') : undefined;
}
