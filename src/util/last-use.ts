/**
 * Last-use times noted on the request path and written in batches (by a background job), so a
 * request never waits for a write. A time noted since the last flush is newer than the stored one.
 */
export class LastUse {
  private pending = new Map<string, number>();

  note(id: string, at: number): void {
    this.pending.set(id, at);
  }

  /** The time noted since the last flush, if any. */
  get(id: string): number | undefined {
    return this.pending.get(id);
  }

  /** Hands what was noted to `write` and starts a new batch. */
  async flush(write: (batch: ReadonlyMap<string, number>) => Promise<void>): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    await write(batch);
  }
}
