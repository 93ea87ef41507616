import { randomBytes, randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import type { AuthTypeRegistry } from '../auth/registry.js';
import type { Config } from '../config/schema.js';
import type { Keyring } from '../crypto/keyring.js';
import { buildNumberOf, type Manifest } from '../protocols/applinks/manifest.js';
import type { Store } from '../storage/store.js';

const pkg = createRequire(import.meta.url)('../../package.json') as { version: string };

export const APPLINKS_VERSION: string = pkg.version;
/** The applinks protocol level we announce; Atlassian peers read features from it. */
export const APPLINKS_PROTOCOL_VERSION = '5.0.0';

/**
 * Who this installation is: its stable application id (made at first start, shared by every
 * instance through the store), its manifest, and an installation secret for keyed hashes that
 * must agree across instances (CSRF tokens, the password-check cache).
 */
export class InstallationIdentity {
  private constructor(
    readonly applicationId: string,
    readonly hmacSecret: Buffer,
    private readonly config: Config,
    private readonly registry: AuthTypeRegistry,
  ) {}

  static async load(store: Store, keyring: Keyring, config: Config, registry: AuthTypeRegistry): Promise<InstallationIdentity> {
    const applicationId = await store.meta.getOrCreate('application-id', randomUUID());
    const context = 'meta.value:sealed:hmac-secret';
    const sealed = await store.meta.getOrCreate('sealed:hmac-secret', keyring.seal(randomBytes(32).toString('base64'), context));
    return new InstallationIdentity(applicationId, Buffer.from(keyring.open(sealed, context), 'base64'), config, registry);
  }

  manifest(): Manifest {
    const names = (direction: 'incoming' | 'outgoing') =>
      this.registry
        .all()
        .filter((t) => t.atlassianType && (direction === 'incoming' ? t.incoming !== undefined || t.userCredential === true || t.incomingVia !== undefined : t.outgoing !== undefined))
        .map((t) => t.atlassianType!);
    return {
      id: this.applicationId,
      name: this.config.appName,
      typeId: this.config.applicationType,
      version: APPLINKS_VERSION,
      buildNumber: buildNumberOf(APPLINKS_VERSION),
      applinksVersion: APPLINKS_PROTOCOL_VERSION,
      inboundAuthenticationTypes: [...new Set(names('incoming'))],
      outboundAuthenticationTypes: [...new Set(names('outgoing'))],
      publicSignup: false,
      url: this.config.baseUrl,
    };
  }
}
