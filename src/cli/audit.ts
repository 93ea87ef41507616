import type { Command } from 'commander';
import { output, parseInteger, withServices } from './common.js';

/** `applinks audit`: the newest audit entries. */
export function registerAudit(program: Command): void {
  program
    .command('audit')
    .description('print the audit log, newest first')
    .option('--limit <n>', 'how many entries, 1 to 10000', parseInteger(1, 10_000), 50)
    .option('--action <action>', 'only this action, e.g. link.delete')
    .option('--json', 'print JSON')
    .action((o: { limit: number; action?: string; json?: boolean }) =>
      withServices(async (s) => {
        const entries = await s.audit.list({ limit: o.limit, ...(o.action !== undefined ? { action: o.action } : {}) });
        output(
          entries.map((e) => ({ at: new Date(e.at).toISOString(), actor: e.actorName, action: e.action, target: e.targetName ?? e.targetId, address: e.address, details: JSON.stringify(e.details) })),
          o.json ?? false,
          ['at', 'actor', 'action', 'target', 'address', 'details'],
        );
      }),
    );
}
