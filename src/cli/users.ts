import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { AppError } from '../errors/index.js';
import type { Services } from '../services/index.js';
import type { UserUpdate } from '../services/users.js';
import { userJson } from '../server/routes/admin-api.js';
import { cliActor } from './actor.js';
import { output, parseBool, quoted, UsageError, withServices } from './common.js';

export async function userByName(s: Services, username: string) {
  const user = await s.users.findByUsername(username);
  if (!user) throw new AppError('not_found', { message: `No user named ${quoted(username)}.` });
  return user;
}

/**
 * A password from --password, or from standard input with --password-stdin (keeps it out of
 * shell history and of `ps`). An empty standard input is an error, not "no password".
 */
function passwordOf(options: { password?: string; passwordStdin?: boolean }): string | undefined {
  if (!options.passwordStdin) return options.password;
  let text: string;
  try {
    text = readFileSync(0, 'utf8');
  } catch (error) {
    throw new UsageError(`--password-stdin: cannot read standard input (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const password = text.replace(/\r?\n$/, '');
  if (password === '') throw new UsageError('--password-stdin: standard input held no password');
  return password;
}

/** --password and --password-stdin, one or the other. */
function passwordOptions(cmd: Command, description: string): Command {
  return cmd
    .addOption(new Option('--password <password>', `${description} (visible to other local users in \`ps\`: prefer --password-stdin)`).conflicts('passwordStdin'))
    .addOption(new Option('--password-stdin', 'read the password from standard input (one line)'));
}

const list = (v: string) => v.split(',').map((x) => x.trim()).filter(Boolean);

/** `applinks users ...` */
export function registerUsers(program: Command): void {
  const users = program.command('users').description('manage the built-in user directory');

  users
    .command('list')
    .description('list users')
    .option('--search <text>', 'only users whose name or email contains this')
    .option('--json', 'print JSON')
    .action((o: { search?: string; json?: boolean }) =>
      withServices(async (s) => {
        const { users } = await s.users.list({ limit: 10_000, offset: 0, ...(o.search ? { search: o.search } : {}) });
        output(users.map(userJson), o.json ?? false, ['username', 'displayName', 'email', 'admin', 'disabled', 'groups', 'id']);
      }),
    );

  passwordOptions(
    users
      .command('create <username>')
      .description('create a user (without a password, they cannot sign in until one is set)')
      .option('--display-name <name>', 'the name shown (default: the username)')
      .option('--email <email>', 'email address'),
    'initial password',
  )
    .option('--admin', 'make the user an administrator')
    .option('--groups <a,b>', 'comma-separated groups', list)
    .option('--json', 'print JSON')
    .action((username: string, o: { displayName?: string; email?: string; password?: string; passwordStdin?: boolean; admin?: boolean; groups?: string[]; json?: boolean }) =>
      withServices(async (s) => {
        const password = passwordOf(o);
        const user = await s.users.create(
          {
            username,
            ...(o.displayName !== undefined ? { displayName: o.displayName } : {}),
            ...(o.email !== undefined ? { email: o.email } : {}),
            ...(password !== undefined ? { password } : {}),
            isAdmin: o.admin ?? false,
            ...(o.groups ? { groups: o.groups } : {}),
          },
          cliActor(),
        );
        output(userJson(user), true);
      }),
    );

  users
    .command('update <username>')
    .description("change a user's name, email, admin flag or groups")
    .option('--username <new>', 'rename')
    .option('--display-name <name>', 'the name shown')
    .option('--email <email>', 'email address; empty to remove it')
    .option('--admin <true|false>', 'administrator', parseBool)
    .option('--groups <a,b>', 'replace the groups', list)
    .action((username: string, o: { username?: string; displayName?: string; email?: string; admin?: boolean; groups?: string[] }) =>
      withServices(async (s) => {
        const user = await userByName(s, username);
        const update: UserUpdate = {};
        if (o.username !== undefined) update.username = o.username;
        if (o.displayName !== undefined) update.displayName = o.displayName;
        if (o.email !== undefined) update.email = o.email || null;
        if (o.admin !== undefined) update.isAdmin = o.admin;
        if (o.groups !== undefined) update.groups = o.groups;
        output(userJson(await s.users.update(user.id, update, cliActor())), true);
      }),
    );

  passwordOptions(users.command('set-password <username>').description("set a user's password (ends their sessions)"), 'the new password')
    .action((username: string, o: { password?: string; passwordStdin?: boolean }) =>
      withServices(async (s) => {
        const password = passwordOf(o);
        if (password === undefined) throw new UsageError('give --password-stdin (or --password)');
        const user = await userByName(s, username);
        await s.users.update(user.id, { password }, cliActor());
        process.stdout.write(`password of ${user.username} changed; their sessions were ended\n`);
      }),
    );

  for (const [name, disabled] of [
    ['disable', true],
    ['enable', false],
  ] as const) {
    users
      .command(`${name} <username>`)
      .description(disabled ? 'disable a user: sessions end, tokens are refused' : 'enable a disabled user')
      .action((username: string) =>
      withServices(async (s) => {
        const user = await userByName(s, username);
        await s.users.update(user.id, { disabled }, cliActor());
        process.stdout.write(`${user.username} ${disabled ? 'disabled: sessions ended, tokens refused' : 'enabled'}\n`);
      }),
    );
  }

  users
    .command('delete <username>')
    .description('delete a user with their tokens and sessions')
    .action((username: string) =>
    withServices(async (s) => {
      const user = await userByName(s, username);
      await s.users.delete(user.id, cliActor());
      process.stdout.write(`${user.username} deleted\n`);
    }),
  );
}
