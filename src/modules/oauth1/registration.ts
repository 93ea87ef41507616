import { XMLParser } from 'fast-xml-parser';
import { request as undiciRequest } from 'undici';
import { AppError } from '../../errors/index.js';
import type { Actor } from '../../services/audit.js';
import type { Services } from '../../services/index.js';
import type { LinkView } from '../../services/links.js';
import { OAUTH1_TYPE } from './consumers.js';
import { CONSUMER_INFO_PATH } from './routes.js';

/** The switches an administrator sets when registering a remote's consumer from its consumer-info. */
export interface ConsumerSwitches {
  allow3LO?: boolean;
  allow2LO?: boolean;
  executeAs?: string | null;
  allow2LOImpersonation?: boolean;
}

/**
 * Registers the remote of a link as an OAuth 1.0a consumer from its consumer-info document (its
 * key, name and public key), as Atlassian's `autoConfigure` does: the link's incoming `oauth1`
 * configuration, with the switches given (or those already set).
 */
export async function registerFromConsumerInfo(s: Services, linkId: string, switches: ConsumerSwitches, actor: Actor): Promise<LinkView> {
  const link = await s.links.get(linkId);
  if (!link.url) throw new AppError('validation_failed', { field: 'url', message: 'The link has no URL to fetch the consumer-info document from.' });
  const info = await fetchConsumerInfo(`${link.url}${CONSUMER_INFO_PATH}`);
  const existing = link.incoming.find((a) => a.type === OAUTH1_TYPE)?.config ?? {};
  const config: Record<string, unknown> = {
    consumerKey: info.key,
    name: info.name,
    publicKey: info.publicKey,
    ...(info.description ? { description: info.description.slice(0, 1000) } : {}),
    ...(info.callback ? { callback: info.callback } : {}),
  };
  for (const name of ['allow3LO', 'allow2LO', 'executeAs', 'allow2LOImpersonation'] as const) {
    const value = name in switches ? switches[name] : existing[name];
    if (value !== undefined) config[name] = value;
  }
  return s.links.setAuth(link.id, 'incoming', OAUTH1_TYPE, config, actor);
}

/** Reads a remote's consumer-info document (PROTOCOLS.md §1.7): elements looked up by name, any root. */
export async function fetchConsumerInfo(url: string): Promise<{ key: string; name: string; publicKey: string; description?: string; callback?: string }> {
  let body: string;
  try {
    const res = await undiciRequest(url, { method: 'GET', headers: { accept: 'application/xml' }, headersTimeout: 10_000, bodyTimeout: 10_000 });
    body = (await res.body.text()).slice(0, 200_000);
    if (res.statusCode !== 200) throw new AppError('upstream_unavailable', { message: `The remote answered its consumer-info URL with HTTP ${res.statusCode}.` });
  } catch (error) {
    if (error instanceof AppError) throw error;
    throw new AppError('upstream_unavailable', { message: 'The remote could not be reached for its consumer-info document.', detail: (error as Error).message });
  }
  let doc: Record<string, unknown>;
  try {
    const parsed = new XMLParser({ ignoreAttributes: true, parseTagValue: false }).parse(body) as Record<string, unknown>;
    doc = (Object.entries(parsed).find(([k]) => !k.startsWith('?'))?.[1] ?? {}) as Record<string, unknown>;
  } catch {
    throw new AppError('upstream_unavailable', { message: 'The consumer-info document is not XML.' });
  }
  const text = (v: unknown) => (typeof v === 'string' && v.trim() ? v.trim() : undefined);
  const key = text(doc.key);
  const name = text(doc.name);
  const publicKey = text(doc.publicKey);
  if (!key || !name || !publicKey) throw new AppError('upstream_unavailable', { message: 'The consumer-info document has no key, name or publicKey.' });
  const description = text(doc.description);
  const callback = text(doc.callback);
  return { key, name, publicKey, ...(description ? { description } : {}), ...(callback ? { callback } : {}) };
}
