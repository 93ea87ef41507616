import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { FingerprintWindow } from '../../src/modules/oauth1/nonces.js';

describe('the in-memory nonce window of the embedded store', () => {
  const fp = () => {
    const b = randomBytes(8);
    return [b.readUInt32BE(0), b.readUInt32BE(4)] as const;
  };

  it('remembers every fingerprint it accepted, through growth, and refuses each again', () => {
    const w = new FingerprintWindow();
    const now = Date.UTC(2026, 11, 1);
    const seen = Array.from({ length: 50_000 }, fp);
    for (const [hi, lo] of seen) expect(w.add(hi, lo, now + 300_000, now)).toBe(true);
    expect(w.size).toBe(50_000);
    let refused = 0;
    for (const [hi, lo] of seen) if (!w.add(hi, lo, now + 300_000, now)) refused++;
    expect(refused).toBe(50_000);
    // A fingerprint is refused whatever expiry the replay claims (another timestamp).
    expect(w.add(seen[0]![0], seen[0]![1], now + 600_000, now)).toBe(false);
    // Fresh ones still pass, including zeros (the empty-slot marker is never a stored value).
    expect(w.add(0, 0, now + 300_000, now)).toBe(true);
    expect(w.add(0, 0, now + 300_000, now)).toBe(false);
  });

  it('forgets a minute of expiries once it has passed, and never stores what is already expired', () => {
    const w = new FingerprintWindow();
    const now = Date.UTC(2026, 11, 1, 12, 0, 0);
    const [hi, lo] = fp();
    expect(w.add(hi, lo, now + 30_000, now)).toBe(true);
    expect(w.add(hi, lo, now + 30_000, now + 20_000)).toBe(false);
    // Two minutes on, the bucket of that expiry is dropped: the timestamp check refuses such a request anyway.
    const [h2, l2] = fp();
    expect(w.add(h2, l2, now + 400_000, now + 120_000)).toBe(true);
    expect(w.size).toBe(1);
    expect(w.add(hi, lo, now + 300_000, now + 120_000)).toBe(true);
    const [h3, l3] = fp();
    expect(w.add(h3, l3, now - 1, now)).toBe(true);
    expect(w.add(h3, l3, now + 300_000, now)).toBe(true);
  });
});
