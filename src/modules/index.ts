import type { ProtocolModule } from '../auth/registry.js';
import { coreModule } from './core/index.js';
import { oauth1Module } from './oauth1/index.js';
import { oauth2Module } from './oauth2/index.js';

/**
 * Every protocol module, in one list. A module brings its authentication types, its
 * authenticators (placed in the pipeline by `order`) and its endpoints; adding a protocol is a
 * folder under src/modules and one line here.
 */
export const modules: readonly ProtocolModule[] = [coreModule, oauth1Module, oauth2Module];
