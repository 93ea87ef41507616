import type { Command } from 'commander';
import { Keyring } from '../crypto/keyring.js';
import { keyStatus, pruneMasterKeys, rotateMasterKey, type RotationOptions } from '../services/key-rotation.js';
import type { ResealReport } from '../services/keys.js';
import { output, parseSeconds, withServices } from './common.js';

interface Options {
  wait: number;
  waitForLease: number;
}

/**
 * `applinks keys generate|rotate|prune|status`. With the key file, `rotate` makes a new key,
 * waits until every running instance holds it, puts it first and re-seals everything under it;
 * `prune` re-seals stragglers and drops the old keys once no running instance seals with them and
 * no stored value needs them. With APPLINKS_MASTER_KEY=new,old (set on every instance, which were
 * restarted), `rotate` re-seals under `new` and `prune` says whether `old` may be removed.
 * One rotate or prune runs at a time on a store (a lease in the store); another one is refused,
 * naming the holder, or waits with `--wait-for-lease`.
 */
export function registerKeys(program: Command): void {
  const keys = program.command('keys').description('rotate the master key that seals stored secrets');
  const wait = (cmd: Command) =>
    cmd
      .option('--wait <seconds>', 'how long to wait for running instances to load or adopt a key', parseSeconds(86_400), 30)
      .option('--wait-for-lease <seconds>', 'when another rotate or prune is running on this store, wait this long for it to finish instead of refusing at once', parseSeconds(86_400), 0);
  const options = (opts: Options): RotationOptions => ({ waitMs: opts.wait * 1000, leaseWaitMs: opts.waitForLease * 1000, progress: (line) => process.stderr.write(`${line}\n`) });

  keys
    .command('generate')
    .description('print a new random master key (base64), for APPLINKS_MASTER_KEY')
    .action(() => {
      process.stdout.write(`${Keyring.generateKey().toString('base64')}\n`);
    });

  wait(keys.command('rotate').description('make a new master key (key file) or use the first of APPLINKS_MASTER_KEY, and re-seal every secret under it')).action(
    (opts: Options) =>
      withServices(async (s) => {
        const r = await rotateMasterKey(s, options(opts));
        process.stdout.write(`re-sealed ${r.report.resealed} secret(s) under key ${r.kid}${perColumn(r.report)}\n`);
        warnUnreadable(r.report);
        for (const note of r.notes) process.stderr.write(`note: ${note}\n`);
        const old = r.oldKids.join(', ');
        process.stdout.write(
          r.source === 'env'
            ? `Every running instance (${r.instances}) holds key ${r.kid}. Run \`applinks keys prune\` with this APPLINKS_MASTER_KEY to check that nothing needs ${old || 'the old keys'} any more, then remove ${old ? 'them' : 'old keys'} from the variable and restart the instances.\n`
            : `Old key(s) ${old} stay in ${s.keyFile} to open anything sealed under them meanwhile; running instances (${r.instances}) seal with ${r.kid}. Run \`applinks keys prune\` to re-seal stragglers and remove the old key(s).\n`,
        );
      }),
  );

  wait(keys.command('prune').description('drop old master keys once no running instance seals with them and no stored secret needs them')).action(
    (opts: Options) =>
      withServices(async (s) => {
        const r = await pruneMasterKeys(s, options(opts));
        warnUnreadable(r.report);
        for (const c of r.orphans) {
          process.stderr.write(`warning: ${c.where}: ${c.count} value(s) sealed under key ${c.kid}, which no key here holds: they cannot be opened until that key is restored\n`);
        }
        if (r.source === 'env') {
          process.stdout.write(
            `re-sealed ${r.report.resealed} straggler(s) under key ${r.kid}; ` +
              (r.removable.length > 0
                ? `nothing is sealed under ${r.removable.join(', ')} any more and every running instance seals with ${r.kid}: remove ${r.removable.length === 1 ? 'it' : 'them'} from APPLINKS_MASTER_KEY and restart the instances.\n`
                : `APPLINKS_MASTER_KEY holds only key ${r.kid}: nothing to remove.\n`),
          );
          return;
        }
        process.stdout.write(`re-sealed ${r.report.resealed} straggler(s); ${r.removable.length} old key(s) removed from ${s.keyFile}\n`);
      }),
  );

  keys
    .command('status')
    .description('the master keys, the running instances and the keys they seal with, and how many stored secrets each key seals')
    .option('--json', 'JSON output')
    .action((opts: { json?: boolean }) =>
      withServices(async (s) => {
        const st = await keyStatus(s);
        if (opts.json) return output(st as unknown as Record<string, unknown>, true);
        process.stdout.write(`keys from ${st.source === 'env' ? 'APPLINKS_MASTER_KEY' : st.file}: ${st.kids.map((k, i) => (i === 0 ? `${k} (seals)` : k)).join(', ')}\n\ninstances:\n`);
        const now = Date.now();
        output(
          st.instances.map((i) => ({ host: i.host, pid: i.pid, keys: i.keySource, seals: i.sealingKid, holds: i.kids, heard: `${Math.round((now - i.seenAt) / 1000)} s ago`, live: i.live })),
          false,
          ['host', 'pid', 'keys', 'seals', 'holds', 'heard', 'live'],
        );
        process.stdout.write('\nstored secrets:\n');
        output(st.census as unknown as Record<string, unknown>[], false, ['where', 'kid', 'count']);
      }),
    );
}

function perColumn(report: ResealReport): string {
  return report.perColumn.length > 0 ? ` (${report.perColumn.map((c) => `${c.where} ${c.count}`).join(', ')})` : '';
}

function warnUnreadable(report: ResealReport): void {
  for (const u of report.unreadable) {
    process.stderr.write(`warning: ${u.where}: ${u.count} value(s) under key ${u.kid} could not be opened (${u.problem}) and stay as they are\n`);
  }
}
