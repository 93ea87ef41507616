import type { Command } from 'commander';
import { AppError } from '../errors/index.js';
import { tokenJson } from '../server/routes/admin-api.js';
import { cliActor } from './actor.js';
import { output, withServices } from './common.js';
import { userByName } from './users.js';

/** `applinks tokens ...`: personal API tokens. */
export function registerTokens(program: Command): void {
  const tokens = program.command('tokens').description("manage users' personal API tokens");

  tokens
    .command('create <username>')
    .description('create an API token for a user; prints it once')
    .requiredOption('--name <name>', 'what the token is for')
    .option('--expires <date>', 'expiry (RFC 3339 date or date-time)')
    .action((username: string, o: { name: string; expires?: string }) =>
      withServices(async (s) => {
        const user = await userByName(s, username);
        const expiresAt = o.expires ? Date.parse(o.expires) : null;
        if (expiresAt !== null && Number.isNaN(expiresAt)) throw new AppError('validation_failed', { field: 'expires', message: '--expires is not a date' });
        const { token, record } = await s.apiTokens.create(user.id, { name: o.name, expiresAt }, cliActor());
        process.stderr.write(`token "${record.name}" (${record.id}) for ${user.username}; shown once:\n`);
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
    .description('revoke an API token')
    .action((id: string) =>
    withServices(async (s) => {
      await s.apiTokens.revoke(id, cliActor());
      process.stdout.write(`token ${id} revoked\n`);
    }),
  );
}
