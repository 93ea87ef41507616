import { createHash } from 'node:crypto';
import { XMLParser } from 'fast-xml-parser';

/** The Application Links manifest (PROTOCOLS.md §3.1, ManifestEntity). */
export interface Manifest {
  id: string;
  name: string;
  typeId: string;
  version: string;
  buildNumber: number;
  applinksVersion: string;
  inboundAuthenticationTypes: string[];
  outboundAuthenticationTypes: string[];
  publicSignup: boolean;
  url: string;
  iconUrl?: string;
  iconUri?: string;
  /** Extension fields of modules (e.g. oauthConsumerKey), after the standard ones. */
  extensions?: Record<string, string>;
}

/** XML text and attribute escaping for the documents applinks serves (manifest, consumer-info). */
export const escapeXml = (s: string) =>
  s.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!);

/** The XML form, root element `manifest` as JAXB writes it. */
export function manifestXml(m: Manifest): string {
  const el = (name: string, value: string | number | boolean) => `<${name}>${escapeXml(String(value))}</${name}>`;
  const parts = [
    el('id', m.id),
    el('name', m.name),
    el('typeId', m.typeId),
    el('version', m.version),
    el('buildNumber', m.buildNumber),
    el('applinksVersion', m.applinksVersion),
    ...m.inboundAuthenticationTypes.map((t) => el('inboundAuthenticationTypes', t)),
    ...m.outboundAuthenticationTypes.map((t) => el('outboundAuthenticationTypes', t)),
    el('publicSignup', m.publicSignup),
    el('url', m.url),
    ...(m.iconUrl ? [el('iconUrl', m.iconUrl)] : []),
    ...(m.iconUri ? [el('iconUri', m.iconUri)] : []),
    ...Object.entries(m.extensions ?? {}).map(([k, v]) => el(k, v)),
  ];
  return `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><manifest>${parts.join('')}</manifest>`;
}

/**
 * Reads a remote manifest in either form. Tolerates unknown elements and class names, a single
 * auth type given as a string rather than an array, and any root element name. Throws when the
 * document has no `id` or `typeId`.
 */
export function parseManifest(body: string, contentType: string | undefined): Partial<Manifest> & { id: string; typeId: string } {
  let raw: Record<string, unknown>;
  if (/json/i.test(contentType ?? '') || body.trimStart().startsWith('{')) {
    raw = JSON.parse(body) as Record<string, unknown>;
  } else {
    const doc = new XMLParser({ ignoreAttributes: true, parseTagValue: false, processEntities: true }).parse(body) as Record<string, unknown>;
    const root = Object.entries(doc).find(([k]) => !k.startsWith('?'));
    raw = (root?.[1] ?? {}) as Record<string, unknown>;
  }
  const str = (v: unknown) => (typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : undefined);
  const list = (v: unknown) => (Array.isArray(v) ? v.map(str).filter((x): x is string => !!x) : str(v) ? [str(v)!] : []);
  const id = str(raw.id);
  const typeId = str(raw.typeId);
  if (!id || !typeId) throw new Error('manifest has no id or typeId');
  const out: Partial<Manifest> & { id: string; typeId: string } = {
    id,
    typeId,
    inboundAuthenticationTypes: list(raw.inboundAuthenticationTypes),
    outboundAuthenticationTypes: list(raw.outboundAuthenticationTypes),
  };
  const name = str(raw.name);
  const version = str(raw.version);
  const url = str(raw.url);
  const applinksVersion = str(raw.applinksVersion);
  if (name !== undefined) out.name = name;
  if (version !== undefined) out.version = version;
  if (url !== undefined) out.url = url;
  if (applinksVersion !== undefined) out.applinksVersion = applinksVersion;
  const build = Number(str(raw.buildNumber));
  if (Number.isFinite(build)) out.buildNumber = build;
  return out;
}

/**
 * Java's `UUID.nameUUIDFromBytes`: a version-3 UUID over the raw MD5 of the bytes, no namespace.
 * Applinks derives the id of a remote without a manifest from its normalised base URL this way
 * (PROTOCOLS.md §3.2, ApplicationIdUtil.generate).
 */
export function nameUuidFromBytes(bytes: Buffer): string {
  const b = createHash('md5').update(bytes).digest();
  b[6] = (b[6]! & 0x0f) | 0x30;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The application id applinks gives a remote that has no manifest. */
export function applicationIdFromUrl(baseUrl: string): string {
  return nameUuidFromBytes(Buffer.from(baseUrl.replace(/\/+$/, ''), 'utf8'));
}

/** Jira's scheme (PROTOCOLS.md §3: `10.3.15` → 10030015); non-numeric versions give 0 as applinks does. */
export function buildNumberOf(version: string): number {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(version);
  return m ? Number(m[1]) * 1_000_000 + Number(m[2]) * 10_000 + Number(m[3]) : 0;
}

/**
 * Whether an `Accept` header asks for the JSON manifest rather than the XML default (RFC 9110
 * §12.5.1): JSON must be named (`application/json`) with a quality above 0 and at least the
 * quality XML gets (`application/xml`, `text/xml`, or a matching wildcard). XML wins when
 * nothing is said, for `*\/*`, and for `application/json;q=0`.
 */
export function prefersJsonManifest(accept: string | undefined): boolean {
  if (!accept) return false;
  let json: number | undefined;
  let xml: number | undefined;
  let wildcard: number | undefined;
  for (const range of accept.split(',')) {
    const [type = '', ...params] = range.split(';');
    let q = 1;
    for (const param of params) {
      const m = /^\s*q\s*=\s*([0-9.]{1,5})\s*$/i.exec(param);
      if (m) q = Math.min(1, Number(m[1]) || 0);
    }
    const media = type.trim().toLowerCase();
    if (media === 'application/json') json = Math.max(json ?? 0, q);
    else if (media === 'application/xml' || media === 'text/xml') xml = Math.max(xml ?? 0, q);
    else if (media === '*/*' || media === 'application/*') wildcard = Math.max(wildcard ?? 0, q);
  }
  if (json === undefined || json <= 0) return false;
  return json >= (xml ?? wildcard ?? 0);
}
