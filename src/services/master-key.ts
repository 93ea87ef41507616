import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/schema.js';
import { Keyring, type KeySource } from '../crypto/keyring.js';

export const MASTER_KEY_FILE = 'master.key';

export type KeySourceKind = 'env' | 'file';

/**
 * The master keys: from APPLINKS_MASTER_KEY when set, else from `<dataDir>/master.key`, which is
 * created (random 256-bit, mode 0600) on first start. The file holds one base64 key per line,
 * the first one sealing. A keyring from the file follows it (see `keyFileSource`); one from the
 * variable is fixed for the life of the process, since a process cannot see its environment
 * change: rotating means restarting with the new value.
 */
export function loadMasterKeys(config: Pick<Config, 'masterKey' | 'dataDir'>): { keyring: Keyring; source: KeySourceKind; file: string | undefined; created: boolean } {
  if (config.masterKey && config.masterKey.length > 0) {
    return { keyring: new Keyring(config.masterKey.map((k) => Buffer.from(k, 'base64'))), source: 'env', file: undefined, created: false };
  }
  const file = path.join(config.dataDir, MASTER_KEY_FILE);
  if (existsSync(file)) {
    return { keyring: new Keyring(readKeyFile(file), keyFileSource(file)), source: 'file', file, created: false };
  }
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const key = Keyring.generateKey();
  writeKeyFile(file, [key]);
  return { keyring: new Keyring([key], keyFileSource(file)), source: 'file', file, created: true };
}

/**
 * The key file as a keyring source. Its version is the file's inode, size and modification
 * time: `writeKeyFile` replaces the file by rename, so every rewrite gets a new inode, and a
 * version costs one stat, cheap enough to look before every seal.
 */
export function keyFileSource(file: string): KeySource {
  return {
    description: file,
    version() {
      const st = statSync(file, { bigint: true });
      return `${st.ino}:${st.size}:${st.mtimeNs}`;
    },
    read: () => readKeyFile(file),
  };
}

export function readKeyFile(file: string): Buffer[] {
  const keys = readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => Buffer.from(l, 'base64'));
  if (keys.length === 0 || keys.some((k) => k.length !== 32)) throw new Error(`${file}: each line must be a 32-byte base64 key`);
  return keys;
}

/** Writes the key file atomically with mode 0600. */
export function writeKeyFile(file: string, keys: readonly Buffer[]): void {
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, `${keys.map((k) => k.toString('base64')).join('\n')}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}
