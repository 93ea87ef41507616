import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';

/** Thrown when a sealed value cannot be opened: unknown key id, tampering, or the wrong context. */
export class SealError extends Error {
  override name = 'SealError';
}

const VERSION = 'v1';
const KID_LENGTH = 11;
/** The length of `Keyring.sealedPrefix(kid)`. */
export const SEALED_PREFIX_LENGTH = VERSION.length + 1 + KID_LENGTH + 1;

/**
 * Where a keyring's keys come from when they can change under a running process (the key file
 * that `applinks keys rotate` rewrites from another process).
 */
export interface KeySource {
  /** A cheap signal that changes whenever the keys may have (a file's inode, size and mtime). */
  version(): string;
  /** The keys, the sealing one first. */
  read(): Buffer[];
  /** Where the keys are, for messages (a path; never key material). */
  readonly description: string;
}

/** Told when a keyring adopts new keys, or when re-reading its source failed (it keeps the keys it has). */
export interface KeyringListener {
  changed?(kids: readonly string[]): void;
  failed?(error: Error): void;
}

/**
 * The master keys that seal every secret at rest with AES-256-GCM. A sealed value is
 * `v1.<kid>.<iv>.<ciphertext+tag>` (base64url), so keys can rotate: the first key seals, every
 * key opens. The additional authenticated data binds a value to where it is stored
 * (`table.column:id`), so a ciphertext copied into another row does not open.
 *
 * With a source (the key file), the keyring follows it: before each seal it checks the source's
 * version (one stat) and adopts the new keys when it changed, so a process never seals under a
 * key that `applinks keys rotate` demoted; a value sealed under an unknown key id makes it read
 * the source again regardless.
 */
export class Keyring {
  private keys = new Map<string, Buffer>();
  private current = '';
  private version: string | undefined;
  private readonly listeners: KeyringListener[] = [];

  constructor(
    keys: readonly Buffer[],
    private readonly source?: KeySource,
  ) {
    this.replaceKeys(keys);
    if (source) {
      try {
        this.version = source.version();
      } catch {
        this.version = undefined;
      }
    }
  }

  /** Installs a new key list; the first key seals from now on. */
  replaceKeys(keys: readonly Buffer[]): void {
    if (keys.length === 0) throw new Error('keyring needs at least one key');
    const map = new Map<string, Buffer>();
    for (const key of keys) {
      if (key.length !== 32) throw new Error('master keys are 32 bytes');
      map.set(Keyring.kidOf(key), key);
    }
    const before = [...this.keys.keys()].join(',');
    this.keys = map;
    this.current = Keyring.kidOf(keys[0]!);
    if (before && before !== [...map.keys()].join(',')) for (const l of this.listeners) l.changed?.(this.kids);
  }

  /** Registers a listener for key changes and failed re-reads. */
  listen(listener: KeyringListener): void {
    this.listeners.push(listener);
  }

  /**
   * Adopts the source's keys if its version changed since the last look (or always, with
   * `force`). Answers whether the keys changed. A source that cannot be read (a half-edited file)
   * leaves the keys as they are and tells the listeners once per version.
   */
  refresh(force = false): boolean {
    if (!this.source) return false;
    let version: string;
    try {
      version = this.source.version();
    } catch (error) {
      if (this.version !== 'unreadable') for (const l of this.listeners) l.failed?.(error as Error);
      this.version = 'unreadable';
      return false;
    }
    if (!force && version === this.version) return false;
    // The version is taken before the read: a change in between is seen again at the next look.
    this.version = version;
    const before = this.kids.join(',');
    try {
      this.replaceKeys(this.source.read());
    } catch (error) {
      for (const l of this.listeners) l.failed?.(error as Error);
      return false;
    }
    return before !== this.kids.join(',');
  }

  get currentKid(): string {
    return this.current;
  }

  /** A key's id: the first 8 bytes of its SHA-256, so the same key always has the same id. */
  static kidOf(key: Buffer): string {
    return createHash('sha256').update(key).digest('base64url').slice(0, KID_LENGTH);
  }

  static generateKey(): Buffer {
    return randomBytes(32);
  }

  /** The ids of every key, the sealing one first. */
  get kids(): string[] {
    return [...this.keys.keys()];
  }

  /** Whether a key of this id is held (after a look at the source). */
  has(kid: string): boolean {
    if (!this.keys.has(kid)) this.refresh();
    return this.keys.has(kid);
  }

  seal(plaintext: string, context: string): string {
    this.refresh();
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
    if (!key && this.source) {
      this.refresh(true);
      key = this.keys.get(parts[1]!);
    }
    if (!key) throw new SealError(`sealed under unknown key id ${parts[1]}${this.source ? ` (not in ${this.source.description})` : ''}`);
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

  /**
   * How every value sealed under `kid` begins, so a store can count or pick them without opening
   * any: `v1.<kid>.`, always SEALED_PREFIX_LENGTH characters (key ids are 11).
   */
  static sealedPrefix(kid: string): string {
    return `${VERSION}.${kid}.`;
  }

  /** The key id a sealed value names, without opening it. */
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
