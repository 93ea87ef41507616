import type { TtlCache } from '../util/ttl-cache.js';

/**
 * Where revocations meet the caches of this instance. Every cache of credentials or records
 * registers here and tags its entries `user:<id>`, `link:<id>` or `cred:<id>`; a service that
 * revokes something calls one method and the next request sees it. Other instances see it when
 * their entries expire (APPLINKS_AUTH_CACHE_TTL_MS).
 */
export class Revocations {
  private readonly caches = new Set<TtlCache<unknown>>();

  register<V>(cache: TtlCache<V>): TtlCache<V> {
    this.caches.add(cache as TtlCache<unknown>);
    return cache;
  }

  user(id: string): void {
    this.drop(`user:${id}`);
  }

  link(id: string): void {
    this.drop(`link:${id}`);
  }

  credential(id: string): void {
    this.drop(`cred:${id}`);
  }

  all(): void {
    for (const cache of this.caches) cache.clear();
  }

  private drop(tag: string): void {
    for (const cache of this.caches) cache.dropTag(tag);
  }
}
