#!/usr/bin/env node
import { Command } from 'commander';
import { APPLINKS_VERSION } from '../services/identity.js';
import { registerAudit } from './audit.js';
import { configureUsageErrors, fail } from './common.js';
import { registerKeys } from './keys.js';
import { registerLinks } from './links.js';
import { registerOAuth1 } from './oauth1.js';
import { registerOAuth2 } from './oauth2.js';
import { registerServe } from './serve.js';
import { registerTokens } from './tokens.js';
import { registerUsers } from './users.js';

const program = new Command('applinks')
  .version(APPLINKS_VERSION)
  .description('applinks: application links, OAuth and API tokens in front of your application');

registerServe(program);
registerUsers(program);
registerTokens(program);
registerLinks(program);
registerOAuth1(program);
registerOAuth2(program);
registerKeys(program);
registerAudit(program);

configureUsageErrors(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  // Actions report their own errors; this is the net under anything else (never a stack trace).
  fail(error);
}
