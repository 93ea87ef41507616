import type { Command } from 'commander';
import { buildApp } from '../server/app.js';
import { createServices } from '../services/index.js';
import { fail, loadConfigOrExit } from './common.js';

/** `applinks serve`: starts the server and drains in-flight requests on SIGTERM/SIGINT. */
export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('start the server (configuration from APPLINKS_* variables and APPLINKS_CONFIG_FILE)')
    .action(async () => {
      const config = loadConfigOrExit();
      let services;
      try {
        services = await createServices(config, { background: true, bootstrapAdmin: true });
      } catch (error) {
        fail(error);
      }
      if (services.generatedAdminPassword) {
        // Printed once, on the console only: it is never logged or stored in clear. Printed before
        // listening, as the user exists now even if the port turns out to be taken.
        process.stdout.write(
          `\n  Created the administrator "admin" with password:\n\n      ${services.generatedAdminPassword}\n\n  Sign in at ${config.baseUrl}/applinks/login and change it (or set APPLINKS_ADMIN_PASSWORD before the first start).\n\n`,
        );
      }
      const app = await buildApp(services);
      try {
        await app.listen({ port: config.port, host: config.host });
      } catch (error) {
        await services.close();
        fail(error);
      }
      services.logger.info({ url: config.baseUrl, upstream: config.upstreamUrl ?? null, store: config.databaseUrl.split(':')[0] }, 'applinks is listening');

      let stopping = false;
      const stop = async (signal: string) => {
        if (stopping) return;
        stopping = true;
        services.logger.info({ signal }, 'draining in-flight requests');
        const timer = setTimeout(() => {
          services.logger.warn('in-flight requests did not finish in time; closing anyway');
          // Still write what is batched (last-use times) and close the store, within a bound.
          setTimeout(() => process.exit(1), 2000).unref();
          void services
            .close()
            .catch(() => undefined)
            .finally(() => process.exit(1));
        }, config.shutdownTimeoutMs);
        timer.unref();
        // Keep-alive connections become idle as their last response ends: close them then, or
        // server.close() would wait for the clients' keep-alive timeout.
        const idle = setInterval(() => app.server.closeIdleConnections(), 100);
        idle.unref();
        try {
          await app.close();
          clearInterval(idle);
          await services.close();
          services.logger.info('stopped');
          process.exit(0);
        } catch (error) {
          services.logger.error({ err: error }, 'error while stopping');
          process.exit(1);
        }
      };
      process.on('SIGTERM', () => void stop('SIGTERM'));
      process.on('SIGINT', () => void stop('SIGINT'));
    });
}
