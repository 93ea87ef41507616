import { describe, expect, it } from 'vitest';
import { toAppError } from '../../src/server/errors.js';

describe('toAppError', () => {
  it('answers a write the store gave up on because of other writes 503 store_busy with Retry-After, not a 500', () => {
    for (const code of ['40P01', '40001', '55P03', 'SQLITE_BUSY', 'SQLITE_BUSY_SNAPSHOT', 'SQLITE_LOCKED']) {
      const e = toAppError(Object.assign(new Error('deadlock detected'), { code }));
      expect(e.code, code).toBe('store_busy');
      expect(e.status).toBe(503);
      expect(e.headers['retry-after']).toBe('1');
      // The driver's words stay in the private detail.
      expect(e.message).not.toContain('deadlock detected');
    }
  });

  it('keeps an unknown fault internal', () => {
    expect(toAppError(Object.assign(new Error('boom'), { code: '23505' })).code).toBe('internal');
    expect(toAppError(new Error('boom')).status).toBe(500);
  });
});
