import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { Keyring } from '../crypto/keyring.js';
import { MASTER_KEY_FILE, readKeyFile, writeKeyFile } from '../services/master-key.js';
import { withServices } from './common.js';

/**
 * `applinks keys rotate|prune`. With the key file: `rotate` puts a new key first (old ones stay
 * to open values a running instance sealed meanwhile) and re-seals everything under it;
 * `prune`, once every instance has picked up the new key, re-seals stragglers and drops the
 * old keys. With APPLINKS_MASTER_KEY=new,old: `rotate` re-seals under the first key.
 */
export function registerKeys(program: Command): void {
  const keys = program.command('keys').description('rotate the master key that seals stored secrets');

  keys
    .command('rotate')
    .description('make a new master key and re-seal every secret under it')
    .action(() =>
    withServices(async (s) => {
      const file = path.join(s.config.dataDir, MASTER_KEY_FILE);
      let keyring: Keyring;
      if (s.config.masterKey?.length) {
        keyring = new Keyring(s.config.masterKey.map((k) => Buffer.from(k, 'base64')));
      } else {
        if (!existsSync(file)) throw new Error(`no master key file at ${file}`);
        const next = [Keyring.generateKey(), ...readKeyFile(file)];
        writeKeyFile(file, next);
        keyring = new Keyring(next);
      }
      const count = await s.keys.reseal(keyring);
      process.stdout.write(`re-sealed ${count} secret(s) under key ${keyring.currentKid}\n`);
      process.stdout.write(
        s.config.masterKey?.length
          ? 'Once every instance runs with the new key first, remove the old key from APPLINKS_MASTER_KEY.\n'
          : `Old keys stay in ${file} until \`applinks keys prune\`, once every instance has used the new key (they pick it up by themselves).\n`,
      );
    }),
  );

  keys
    .command('prune')
    .description('drop old master keys once every instance uses the new one')
    .action(() =>
    withServices(async (s) => {
      if (s.config.masterKey?.length) throw new Error('with APPLINKS_MASTER_KEY, remove old keys from the variable instead');
      const file = path.join(s.config.dataDir, MASTER_KEY_FILE);
      const all = readKeyFile(file);
      const count = await s.keys.reseal(new Keyring(all));
      writeKeyFile(file, all.slice(0, 1));
      process.stdout.write(`re-sealed ${count} straggler(s); ${all.length - 1} old key(s) removed from ${file}\n`);
    }),
  );
}
