import type { Migration } from 'kysely';
import * as m0001 from './0001-core.js';
import * as m0003 from './0003-oauth2.js';
import * as m0004 from './0004-oauth1.js';
import * as m0005 from './0005-link-secret-fields.js';
import * as m0006 from './0006-instances.js';
import * as m0007 from './0007-leases.js';

/**
 * The one migration set, applied in order at start for both dialects. Add a file and one line;
 * never edit or reorder a migration that has landed.
 */
export const migrations: Record<string, Migration> = {
  '0001-core': m0001,
  '0003-oauth2': m0003,
  '0004-oauth1': m0004,
  '0005-link-secret-fields': m0005,
  '0006-instances': m0006,
  '0007-leases': m0007,
};
