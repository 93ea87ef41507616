import { Argument, type Command } from 'commander';
import { AppError } from '../errors/index.js';
import type { Services } from '../services/index.js';
import type { LinkWritten } from '../services/links.js';
import { linkJson } from '../server/routes/admin-api.js';
import { cliActor } from './actor.js';
import { argBytes, jsonArg, output, quoted, UsageError, withServices } from './common.js';

/** A link by id or (case-insensitive) name. */
export async function linkByRef(s: Services, ref: string) {
  const link = (await s.store.links.findById(ref)) ?? (await s.store.links.findByName(ref));
  if (!link) throw new AppError('not_found', { message: `No application link ${quoted(ref)}.` });
  return link;
}

/**
 * Prints a link a command created or configured, then each secret the write generated (a
 * confidential OAuth 2.0 client's) as the client commands print one: what it is on standard error,
 * the value alone on its own line of standard output, this once.
 */
export function outputWritten(written: LinkWritten): void {
  const { issuedSecrets, ...link } = written;
  output(linkJson(link), true);
  for (const [direction, types] of Object.entries(issuedSecrets ?? {})) {
    for (const [type, fields] of Object.entries(types ?? {})) {
      for (const [field, value] of Object.entries(fields)) {
        process.stderr.write(`${direction}.${type}.${field} of link ${quoted(link.name)}; shown once:\n`);
        process.stdout.write(`${value}\n`);
      }
    }
  }
}

const directionArg = () => new Argument('<direction>', 'incoming or outgoing').choices(['incoming', 'outgoing'] as const);

// RFC 9110 §5.6.2: a method and a field name are tokens; a field value has no CR, LF or NUL.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** -H "Name: value" options as headers; a malformed one is a usage error, not silently dropped. */
function headersOf(values: string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const h of values) {
    const i = h.indexOf(':');
    const name = h.slice(0, i).trim();
    // Quotes nothing of a malformed one: "Authorization Bearer …" without its colon is a credential.
    if (i <= 0 || !TOKEN.test(name)) throw new UsageError('--header: expected "Name: value" with a name of letters, digits and !#$%&\'*+-.^_`|~');
    const value = h.slice(i + 1).trim();
    if (/[\u0000-\u0008\u000a-\u001f\u007f]/.test(value)) throw new UsageError(`--header: the value of ${quoted(name)} has control characters`);
    headers[name.toLowerCase()] = value;
  }
  return headers;
}

/** `applinks links ...` */
export function registerLinks(program: Command): void {
  const links = program.command('links').description('manage application links');

  links
    .command('list')
    .description('list application links')
    .option('--json', 'print JSON')
    .action((o: { json?: boolean }) =>
      withServices(async (s) => {
        const all = (await s.links.list()).map(linkJson);
        output(
          o.json ? all : all.map((l) => ({ ...l, incoming: l.incoming.map((a) => a.type), outgoing: l.outgoing.map((a) => a.type) })),
          o.json ?? false,
          ['name', 'applicationType', 'url', 'incoming', 'outgoing', 'primaryOutgoingType', 'id'],
        );
      }),
    );

  links
    .command('create')
    .description('create an application link')
    .requiredOption('--name <name>', 'the link name (unique, case-insensitive)')
    .option('--url <url>', 'the remote application (leave out for an incoming-only link)')
    .option('--type <applicationType>', 'generic, jira, confluence, bitbucket, bamboo, crowd, fecru...', 'generic')
    .option('--incoming <json>', 'incoming configurations by type, e.g. {"oauth1": {...}} (or @file, or @- for standard input)')
    .option('--outgoing <json>', 'outgoing configurations by type; @file or @- keeps secrets off the command line')
    .action((o: { name: string; url?: string; type: string; incoming?: string; outgoing?: string }) =>
      withServices(async (s) => {
        const link = await s.links.create(
          {
            name: o.name,
            url: o.url ?? null,
            applicationType: o.type,
            ...(o.incoming !== undefined ? { incoming: jsonArg(o.incoming, '--incoming') as Record<string, Record<string, unknown>> } : {}),
            ...(o.outgoing !== undefined ? { outgoing: jsonArg(o.outgoing, '--outgoing') as Record<string, Record<string, unknown>> } : {}),
          },
          cliActor(),
        );
        outputWritten(link);
      }),
    );

  links
    .command('show <link>')
    .description('show a link and its configurations (secrets are never shown)')
    .action((ref: string) =>
    withServices(async (s) => {
      output(linkJson(await s.links.get((await linkByRef(s, ref)).id)), true);
    }),
  );

  links
    .command('update <link>')
    .description("change a link's name, URL or application type")
    .option('--name <name>', 'new name')
    .option('--url <url>', 'empty to make the link incoming-only')
    .option('--type <applicationType>', 'generic, jira, confluence, bitbucket, bamboo, crowd, fecru...')
    .action((ref: string, o: { name?: string; url?: string; type?: string }) =>
      withServices(async (s) => {
        const link = await linkByRef(s, ref);
        output(
          linkJson(
            await s.links.update(
              link.id,
              { ...(o.name !== undefined ? { name: o.name } : {}), ...(o.url !== undefined ? { url: o.url || null } : {}), ...(o.type !== undefined ? { applicationType: o.type } : {}) },
              cliActor(),
            ),
          ),
          true,
        );
      }),
    );

  links
    .command('set-auth')
    .description('set one type on one side, e.g. set-auth jira outgoing basic @- <<< \'{"username":"u","password":"p"}\'')
    .argument('<link>', 'link id or name')
    .addArgument(directionArg())
    .argument('<type>', 'the authentication type, e.g. basic, oauth1, oauth2, api-token')
    .argument('<json>', 'its configuration as a JSON object; @file, or @- for standard input, keeps secrets off the command line')
    .action((ref: string, dir: 'incoming' | 'outgoing', type: string, json: string) =>
      withServices(async (s) => {
        const config = jsonArg(json, '<json>');
        const link = await linkByRef(s, ref);
        outputWritten(await s.links.setAuth(link.id, dir, type, config, cliActor()));
      }),
    );

  links
    .command('remove-auth')
    .description('remove one type from one side; what it issued is revoked')
    .argument('<link>', 'link id or name')
    .addArgument(directionArg())
    .argument('<type>', 'the authentication type')
    .action((ref: string, dir: 'incoming' | 'outgoing', type: string) =>
    withServices(async (s) => {
      const link = await linkByRef(s, ref);
      output(linkJson(await s.links.deleteAuth(link.id, dir, type, cliActor())), true);
    }),
  );

  links.command('delete <link>').description('delete the link and revoke everything issued through it').action((ref: string) =>
    withServices(async (s) => {
      const link = await linkByRef(s, ref);
      await s.links.delete(link.id, cliActor());
      process.stdout.write(`link ${link.name} deleted; everything issued through it is revoked\n`);
    }),
  );

  links
    .command('request <link> <path>')
    .description("call the linked application with the link's outgoing authentication, e.g. request jira /rest/api/2/myself --as alice")
    .option('-X, --method <method>', 'HTTP method', 'GET')
    .option('--as <username>', 'act for this user (types that act per user need one)')
    .option('--type <type>', "an outgoing type instead of the link's primary one")
    .option('-d, --data <body>', 'request body (@file or @- for standard input)')
    .option('-H, --header <header...>', 'extra headers, "Name: value"')
    .action((ref: string, target: string, o: { method: string; as?: string; type?: string; data?: string; header?: string[] }) =>
      withServices(async (s) => {
        if (!TOKEN.test(o.method)) throw new UsageError(`--method: ${quoted(o.method)} is not an HTTP method`);
        const headers = headersOf(o.header ?? []);
        const body = o.data === undefined ? undefined : argBytes(o.data, '--data');
        const result = await s.outgoing.request(ref, { method: o.method, url: target, headers, ...(body !== undefined ? { body } : {}), asUser: o.as ?? null, ...(o.type ? { type: o.type } : {}) });
        if (result.kind === 'authorization-required') {
          process.stderr.write(`${result.message}\nAuthorize at: ${result.authorizationUrl}\n`);
          process.exitCode = 3;
          return;
        }
        process.stderr.write(`HTTP ${result.status} (signed with ${result.authType})\n`);
        process.stdout.write(result.body);
        if (result.status >= 400) process.exitCode = 1;
      }),
    );

  links
    .command('health <link>')
    .description("check the remote's reachability and manifest (exit 1 when unhealthy)")
    .action((ref: string) =>
    withServices(async (s) => {
      const link = await linkByRef(s, ref);
      const health = await s.links.health(link.id);
      output({ ...health, checkedAt: new Date(health.checkedAt).toISOString() }, true);
      if (!health.healthy) process.exitCode = 1;
    }),
  );
}
