import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';

/** Thrown when a sealed value cannot be opened: unknown key id, tampering, or the wrong context. */
export class SealError extends Error {
  override name = 'SealError';
}

const VERSION = 'v1';

/**
 * The master keys that seal every secret at rest with AES-256-GCM. A sealed value is
 * `v1.<kid>.<iv>.<ciphertext+tag>` (base64url), so keys can rotate: the first key seals, every
 * key opens. The additional authenticated data binds a value to where it is stored
 * (`table.column:id`), so a ciphertext copied into another row does not open.
 */
export class Keyring {
  private keys = new Map<string, Buffer>();
  private current = '';

  /**
   * @param reload where the keys come from again (the key file) when a value sealed under an
   * unknown key id turns up, i.e. after `applinks keys rotate` ran in another process.
   */
  constructor(
    keys: readonly Buffer[],
    private readonly reload?: () => Buffer[],
  ) {
    this.replaceKeys(keys);
  }

  /** Installs a new key list; the first key seals from now on. */
  replaceKeys(keys: readonly Buffer[]): void {
    if (keys.length === 0) throw new Error('keyring needs at least one key');
    const map = new Map<string, Buffer>();
    for (const key of keys) {
      if (key.length !== 32) throw new Error('master keys are 32 bytes');
      map.set(Keyring.kidOf(key), key);
    }
    this.keys = map;
    this.current = Keyring.kidOf(keys[0]!);
  }

  get currentKid(): string {
    return this.current;
  }

  /** A key's id: the first 8 bytes of its SHA-256, so the same key always has the same id. */
  static kidOf(key: Buffer): string {
    return createHash('sha256').update(key).digest('base64url').slice(0, 11);
  }

  static generateKey(): Buffer {
    return randomBytes(32);
  }

  get kids(): string[] {
    return [...this.keys.keys()];
  }

  seal(plaintext: string, context: string): string {
    const key = this.keys.get(this.current)!;
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return `${VERSION}.${this.current}.${iv.toString('base64url')}.${body.toString('base64url')}`;
  }

  open(sealed: string, context: string): string {
    const parts = sealed.split('.');
    if (parts.length !== 4 || parts[0] !== VERSION) throw new SealError('not a sealed value');
    let key = this.keys.get(parts[1]!);
    if (!key && this.reload) {
      this.replaceKeys(this.reload());
      key = this.keys.get(parts[1]!);
    }
    if (!key) throw new SealError(`sealed under unknown key id ${parts[1]}`);
    const iv = Buffer.from(parts[2]!, 'base64url');
    const body = Buffer.from(parts[3]!, 'base64url');
    if (iv.length !== 12 || body.length < 16) throw new SealError('sealed value is truncated');
    const decipher = createDecipheriv('aes-256-gcm', key, iv);
    decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(body.subarray(body.length - 16));
    try {
      return Buffer.concat([decipher.update(body.subarray(0, body.length - 16)), decipher.final()]).toString('utf8');
    } catch {
      throw new SealError('sealed value failed authentication');
    }
  }

  kidOfSealed(sealed: string): string | undefined {
    return sealed.split('.')[1];
  }

  /**
   * A purpose-specific key derived from the current master key (HKDF-SHA256), e.g. for CSRF
   * tokens or the password-check cache. Changes when the master key rotates, which only
   * invalidates short-lived values.
   */
  deriveKey(purpose: string): Buffer {
    const key = this.keys.get(this.current)!;
    return Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), `applinks ${purpose}`, 32));
  }
}
