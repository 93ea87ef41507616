import type { Command } from 'commander';
import { oauth1Of } from '../modules/oauth1/index.js';
import { registerFromConsumerInfo, type ConsumerSwitches } from '../modules/oauth1/registration.js';
import { CONSUMER_INFO_PATH } from '../modules/oauth1/routes.js';
import { linkJson } from '../server/routes/admin-api.js';
import { cliActor } from './actor.js';
import { output, withServices } from './common.js';
import { linkByRef } from './links.js';

/** `applinks oauth1 ...`: our consumer identity, registering a remote's consumer, housekeeping. */
export function registerOAuth1(program: Command): void {
  const oauth1 = program.command('oauth1').description('OAuth 1.0a: our consumer identity, remote consumers, housekeeping');

  oauth1
    .command('consumer')
    .description('print the consumer key and public key to register applinks under at a remote (also at /plugins/servlet/oauth/consumer-info)')
    .option('--json', 'print JSON')
    .action((o: { json?: boolean }) =>
      withServices(async (s) => {
        const id = await oauth1Of(s).consumer.identity();
        if (o.json) {
          output({ consumerKey: id.key, name: id.name, description: id.description, publicKey: id.publicKeyPem, consumerInfoUrl: s.edge.url(CONSUMER_INFO_PATH), callbackUrl: id.callbackUrl }, true);
          return;
        }
        process.stdout.write(`Consumer key:  ${id.key}\nConsumer name: ${id.name}\nConsumer info: ${s.edge.url(CONSUMER_INFO_PATH)}\nCallback:      ${id.callbackUrl}\nPublic key:\n${id.publicKeyPem}`);
      }),
    );

  oauth1
    .command('auto-configure <link>')
    .description("register the link's remote as an incoming OAuth 1.0a consumer from its consumer-info document")
    .option('--no-three-legged', 'do not let users authorize it (3-legged OAuth)')
    .option('--allow-2lo', 'allow 2-legged OAuth')
    .option('--execute-as <username>', '2-legged requests act as this user (anonymous when left out)')
    .option('--allow-impersonation', 'allow 2-legged OAuth with impersonation: only for a shared user base')
    .action((ref: string, o: { threeLegged: boolean; allow2lo?: boolean; executeAs?: string; allowImpersonation?: boolean }) =>
      withServices(async (s) => {
        const link = await linkByRef(s, ref);
        const switches: ConsumerSwitches = { allow3LO: o.threeLegged };
        if (o.allow2lo !== undefined) switches.allow2LO = o.allow2lo;
        if (o.executeAs !== undefined) switches.executeAs = o.executeAs;
        if (o.allowImpersonation !== undefined) switches.allow2LOImpersonation = o.allowImpersonation;
        const view = linkJson(await registerFromConsumerInfo(s, link.id, switches, cliActor()));
        for (const warning of view.incoming.flatMap((a) => a.warnings)) process.stderr.write(`warning: ${warning}\n`);
        output(view, true);
      }),
    );

  oauth1
    .command('prune')
    .description('delete expired request tokens, nonces and tokens now (the server also does it every minute)')
    .action(() =>
      withServices(async (s) => {
        process.stdout.write(`pruned ${await oauth1Of(s).provider.prune()} row(s)\n`);
      }),
    );
}
