import type { Command } from 'commander';
import { tokenJson } from '../server/routes/admin-api.js';
import { cliActor } from './actor.js';
import { output, parseDate, printable, withServices } from './common.js';
import { userByName } from './users.js';

/** `applinks tokens ...`: personal API tokens. */
export function registerTokens(program: Command): void {
  const tokens = program.command('tokens').description("manage users' personal API tokens");

  tokens
    .command('create <username>')
    .description('create an API token for a user; prints it once')
    .requiredOption('--name <name>', 'what the token is for')
    .option('--expires <date>', 'expiry: an RFC 3339 date (2030-01-31, midnight UTC) or date-time (2030-01-31T12:00:00Z); never when left out', parseDate)
    .action((username: string, o: { name: string; expires?: number }) =>
      withServices(async (s) => {
        const user = await userByName(s, username);
        const { token, record } = await s.apiTokens.create(user.id, { name: o.name, expiresAt: o.expires ?? null }, cliActor());
        process.stderr.write(`token "${printable(record.name)}" (${record.id}) for ${user.username}; shown once:\n`);
        process.stdout.write(`${token}\n`);
      }),
    );

  tokens
    .command('list <username>')
    .description("list a user's API tokens")
    .option('--json', 'print JSON')
    .action((username: string, o: { json?: boolean }) =>
      withServices(async (s) => {
        const user = await userByName(s, username);
        output((await s.apiTokens.list(user.id)).map(tokenJson), o.json ?? false, ['id', 'name', 'createdAt', 'lastUsedAt', 'expiresAt']);
      }),
    );

  tokens
    .command('revoke <id>')
    .description('revoke an API token (its id, from tokens list)')
    .action((id: string) =>
    withServices(async (s) => {
      await s.apiTokens.revoke(id, cliActor());
      process.stdout.write(`token ${id} revoked\n`);
    }),
  );
}
