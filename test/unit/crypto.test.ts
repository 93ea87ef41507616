import { describe, expect, it } from 'vitest';
import { Keyring, SealError } from '../../src/crypto/keyring.js';
import { hashPassword, verifyPassword } from '../../src/crypto/password.js';
import { constantTimeEqual, hashToken, randomToken } from '../../src/crypto/tokens.js';
import { uuidv7 } from '../../src/util/ids.js';
import { TtlCache } from '../../src/util/ttl-cache.js';

describe('keyring', () => {
  it('seals with the first key, opens with any, and refuses tampering, the wrong context and unknown keys', () => {
    const k1 = Keyring.generateKey();
    const k2 = Keyring.generateKey();
    const old = new Keyring([k1]);
    const sealed = old.seal('s3cret', 'table.col:1');
    expect(sealed).toMatch(new RegExp(`^v1\\.${old.currentKid}\\.`));
    expect(sealed).not.toContain('s3cret');
    const both = new Keyring([k2, k1]);
    expect(both.open(sealed, 'table.col:1')).toBe('s3cret');
    expect(both.kidOfSealed(both.seal('x', 'c'))).toBe(Keyring.kidOf(k2));
    expect(() => both.open(sealed, 'table.col:2')).toThrow(SealError);
    // One character of the ciphertext changed (chosen by the character replaced, so it always changes).
    const at = sealed.length - 3;
    const flipped = sealed.slice(0, at) + (sealed[at] === 'A' ? 'B' : 'A') + sealed.slice(at + 1);
    expect(flipped).not.toBe(sealed);
    expect(() => both.open(flipped, 'table.col:1')).toThrow(SealError);
    expect(() => new Keyring([k2]).open(sealed, 'table.col:1')).toThrow(/unknown key id/);
  });

  it('reloads its keys when a value sealed under a new key turns up', () => {
    const k1 = Keyring.generateKey();
    const k2 = Keyring.generateKey();
    const newer = new Keyring([k2, k1]).seal('v', 'c');
    const running = new Keyring([k1], { description: 'test', version: () => 'same', read: () => [k2, k1] });
    expect(running.open(newer, 'c')).toBe('v');
    expect(running.currentKid).toBe(Keyring.kidOf(k2));
  });

  it('follows its source: a changed version before a seal means the new first key seals', () => {
    const k1 = Keyring.generateKey();
    const k2 = Keyring.generateKey();
    let file: { version: string; keys: Buffer[] | Error } = { version: '1', keys: [k1] };
    const changes: string[][] = [];
    const failures: string[] = [];
    const keyring = new Keyring([k1], {
      description: 'test',
      version: () => file.version,
      read: () => {
        if (file.keys instanceof Error) throw file.keys;
        return file.keys;
      },
    });
    keyring.listen({ changed: (kids) => changes.push([...kids]), failed: (e) => failures.push(e.message) });
    expect(keyring.kidOfSealed(keyring.seal('a', 'c'))).toBe(Keyring.kidOf(k1));
    // Rotated elsewhere: staged second, then promoted first.
    file = { version: '2', keys: [k1, k2] };
    expect(keyring.kidOfSealed(keyring.seal('a', 'c'))).toBe(Keyring.kidOf(k1));
    file = { version: '3', keys: [k2, k1] };
    expect(keyring.kidOfSealed(keyring.seal('a', 'c'))).toBe(Keyring.kidOf(k2));
    expect(changes).toEqual([[Keyring.kidOf(k1), Keyring.kidOf(k2)], [Keyring.kidOf(k2), Keyring.kidOf(k1)]]);
    // A source that cannot be read keeps the keys in use, and says so once per version.
    file = { version: '4', keys: new Error('bad key file') };
    expect(keyring.kidOfSealed(keyring.seal('a', 'c'))).toBe(Keyring.kidOf(k2));
    keyring.seal('a', 'c');
    expect(failures).toEqual(['bad key file']);
    expect(keyring.refresh()).toBe(false);
  });
});

describe('passwords and tokens', () => {
  it('hashes passwords with scrypt and checks them', async () => {
    const hash = await hashPassword('correct horse');
    expect(hash).toMatch(/^scrypt\$16384\$8\$1\$/);
    expect(await verifyPassword('correct horse', hash)).toBe(true);
    expect(await verifyPassword('wrong horse', hash)).toBe(false);
    expect(await verifyPassword('x', 'md5$abc')).toBe(false);
  });

  it('makes prefixed 256-bit tokens and hashes them', () => {
    const t = randomToken('alpat_');
    expect(t).toMatch(/^alpat_[A-Za-z0-9_-]{43}$/);
    expect(hashToken(t)).toHaveLength(43);
    expect(hashToken(t)).not.toContain(t.slice(6));
    expect(constantTimeEqual('abc', 'abc')).toBe(true);
    expect(constantTimeEqual('abc', 'abd')).toBe(false);
    expect(constantTimeEqual('abc', 'abcd')).toBe(false);
  });

  it('makes time-ordered UUIDv7s', () => {
    const a = uuidv7(1_000_000);
    const b = uuidv7(1_000_001);
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(a < b).toBe(true);
  });
});

describe('TtlCache', () => {
  it('expires entries, evicts the oldest when full, and drops by tag', () => {
    let now = 0;
    const c = new TtlCache<number>(2, () => now);
    c.set('a', 1, 100, ['user:1']);
    c.set('b', 2, 100, ['user:2']);
    c.set('c', 3, 100, ['user:1']);
    expect(c.get('a')).toBeUndefined();
    expect(c.get('b')).toBe(2);
    c.dropTag('user:1');
    expect(c.get('c')).toBeUndefined();
    now = 100;
    expect(c.get('b')).toBeUndefined();
    c.set('d', 4, 0);
    expect(c.get('d')).toBeUndefined();
  });
});
