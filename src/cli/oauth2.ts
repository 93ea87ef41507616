import { InvalidArgumentError, type Command } from 'commander';
import { isScope, type Scope } from '../protocols/oauth2/scopes.js';
import { clientJson } from '../modules/oauth2/api.js';
import { oauth2Of } from '../modules/oauth2/index.js';
import { ClientManager, type ClientPatch } from '../modules/oauth2/management.js';
import { MAX_SECRET_GRACE_SECONDS } from '../modules/oauth2/service.js';
import type { Services } from '../services/index.js';
import { cliActor } from './actor.js';
import { output, parseBool, parseInteger, withServices } from './common.js';
import { linkByRef } from './links.js';

function scopesOf(value: string): Scope[] {
  const scopes = value.split(/[ ,]+/).filter(Boolean).map((v) => v.toUpperCase());
  const bad = scopes.find((v) => !isScope(v));
  if (bad !== undefined || scopes.length === 0) throw new InvalidArgumentError('expected a list of READ, WRITE, ADMIN, SYSTEM_ADMIN.');
  return scopes as Scope[];
}

const manager = (s: Services) => new ClientManager(s, oauth2Of(s));

/** `applinks oauth2 ...`: OAuth 2.0 clients (the admin API's /api/v1/oauth2/clients from the command line). */
export function registerOAuth2(program: Command): void {
  const oauth2 = program.command('oauth2').description('OAuth 2.0 authorization server: clients and housekeeping');
  const clients = oauth2.command('clients').description('OAuth 2.0 clients registered on application links');

  clients
    .command('list')
    .description('list OAuth 2.0 clients')
    .option('--json', 'print JSON')
    .action((o: { json?: boolean }) =>
      withServices(async (s) => {
        const all = (await manager(s).list()).map(clientJson);
        output(
          o.json ? all : all.map((c) => ({ ...c, type: c.confidential ? 'confidential' : 'public', serviceAccount: c.serviceAccount?.username ?? null, owner: c.owner?.username ?? null })),
          o.json ?? false,
          ['clientId', 'name', 'type', 'scopes', 'linkName', 'serviceAccount', 'owner'],
        );
      }),
    );

  clients
    .command('create')
    .description('register a client (on a new link, or on --link); prints the secret once')
    .requiredOption('--name <name>', 'application name (and name of the new link)')
    .option('--redirect-uri <uri...>', 'exact redirect URIs (https, or http://127.0.0.1 with any port)', [])
    .option('--scopes <list>', 'READ, WRITE, ADMIN, SYSTEM_ADMIN (comma or space separated)', scopesOf, ['READ', 'WRITE'] as Scope[])
    .option('--public', 'a public client (no secret; PKCE required)')
    .option('--require-pkce', 'require PKCE from this confidential client too')
    .option('--service-account <username>', 'allow client_credentials, acting as this user')
    .option('--link <link>', 'add the client to this existing link (id or name)')
    .option('--url <url>', 'URL of the remote application, for a new link')
    .option('--client-id <id>', 'use this client id instead of a generated one')
    .action(
      (o: { name: string; redirectUri: string[]; scopes: Scope[]; public?: boolean; requirePkce?: boolean; serviceAccount?: string; link?: string; url?: string; clientId?: string }) =>
        withServices(async (s) => {
          const linkId = o.link ? (await linkByRef(s, o.link)).id : undefined;
          const { client, clientSecret } = await manager(s).create(
            {
              name: o.name,
              redirectUris: o.redirectUri,
              scopes: o.scopes,
              confidential: !o.public,
              ...(o.requirePkce ? { requirePkce: true } : {}),
              ...(o.serviceAccount ? { serviceAccount: o.serviceAccount } : {}),
              ...(linkId ? { linkId } : {}),
              ...(o.url ? { url: o.url } : {}),
              ...(o.clientId ? { clientId: o.clientId } : {}),
            },
            cliActor(),
          );
          output(clientJson(client), true);
          if (clientSecret) {
            process.stderr.write(`client secret of ${client.clientId}; shown once:\n`);
            process.stdout.write(`${clientSecret}\n`);
          }
        }),
    );

  clients.command('show <clientId>').description('show a client (never its secret)').action((clientId: string) =>
    withServices(async (s) => {
      const m = manager(s);
      output(clientJson(await m.view(await m.byClientId(clientId))), true);
    }),
  );

  clients
    .command('update <clientId>')
    .description("change a client's name, type, redirect URIs, scopes, PKCE or service account; made confidential, it prints its new secret once")
    .option('--name <name>', 'application name')
    .option('--confidential <true|false>', 'change the client type: revokes everything it holds; made confidential, it gets a new secret', parseBool)
    .option('--redirect-uri <uri...>', 'replace the redirect URIs')
    .option('--scopes <list>', 'replace the scopes: READ, WRITE, ADMIN, SYSTEM_ADMIN', scopesOf)
    .option('--require-pkce <true|false>', 'require PKCE from this confidential client', parseBool)
    .option('--service-account <username>', 'allow client_credentials as this user')
    .option('--no-service-account', 'stop client_credentials')
    .action((clientId: string, o: { name?: string; confidential?: boolean; redirectUri?: string[]; scopes?: Scope[]; requirePkce?: boolean; serviceAccount?: string | false }) =>
      withServices(async (s) => {
        const m = manager(s);
        const patch: ClientPatch = {};
        if (o.name !== undefined) patch.name = o.name;
        if (o.confidential !== undefined) patch.confidential = o.confidential;
        if (o.redirectUri !== undefined) patch.redirectUris = o.redirectUri;
        if (o.scopes !== undefined) patch.scopes = o.scopes;
        if (o.requirePkce !== undefined) patch.requirePkce = o.requirePkce;
        if (o.serviceAccount === false) patch.serviceAccount = null;
        else if (typeof o.serviceAccount === 'string') patch.serviceAccount = o.serviceAccount;
        const { client, clientSecret } = await m.update(await m.byClientId(clientId), patch, cliActor());
        output(clientJson(client), true);
        if (clientSecret) {
          process.stderr.write(`client secret of ${client.clientId}, now confidential; shown once:\n`);
          process.stdout.write(`${clientSecret}\n`);
        }
      }),
    );

  clients
    .command('rotate-secret <clientId>')
    .description('generate a new secret; the previous one keeps working for --grace seconds')
    .option('--grace <seconds>', `grace period of the previous secret, 0 to ${MAX_SECRET_GRACE_SECONDS} (default APPLINKS_OAUTH2_SECRET_GRACE_SECONDS)`, parseInteger(0, MAX_SECRET_GRACE_SECONDS))
    .action((clientId: string, o: { grace?: number }) =>
      withServices(async (s) => {
        const client = await manager(s).byClientId(clientId);
        const grace = o.grace ?? s.config.oauth2SecretGraceSeconds;
        const secret = await oauth2Of(s).rotateSecret(client, grace, cliActor());
        process.stderr.write(`new client secret of ${client.clientId} (the previous one works for ${grace} s); shown once:\n`);
        process.stdout.write(`${secret}\n`);
      }),
    );

  clients
    .command('delete <clientId>')
    .description('remove the client and revoke everything issued to it')
    .option('--delete-link', 'delete the whole link, not only its OAuth 2.0 client')
    .action((clientId: string, o: { deleteLink?: boolean }) =>
      withServices(async (s) => {
        const m = manager(s);
        const client = await m.byClientId(clientId);
        await m.delete(client, cliActor(), o.deleteLink ?? false);
        process.stdout.write(`client ${client.clientId} removed; everything issued to it is revoked\n`);
      }),
    );

  oauth2
    .command('prune')
    .description('delete expired codes, tokens and grants now (the server does this every minute)')
    .action(() =>
      withServices(async (s) => {
        process.stdout.write(`${await oauth2Of(s).prune()} rows deleted\n`);
      }),
    );
}
