/**
 * A bounded map whose entries expire. Insertion order doubles as eviction order: when full, the
 * oldest entry goes. Entries can carry tags (user id, link id) so a revocation drops every entry
 * that depends on what was revoked.
 */
export class TtlCache<V> {
  private readonly entries = new Map<string, { value: V; expires: number; tags: readonly string[] }>();

  constructor(
    private readonly maxEntries: number,
    private readonly now: () => number,
  ) {}

  get(key: string): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expires <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  set(key: string, value: V, ttlMs: number, tags: readonly string[] = []): void {
    if (ttlMs <= 0) return;
    this.entries.delete(key);
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(key, { value, expires: this.now() + ttlMs, tags });
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  /** Drops every entry carrying the tag. */
  dropTag(tag: string): void {
    for (const [key, entry] of this.entries) if (entry.tags.includes(tag)) this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}
