import { Type } from '@sinclair/typebox';
import type { ProtocolModule } from '../../auth/registry.js';
import type { OutgoingSigner } from '../../outgoing/types.js';
import { apiTokenAuthenticator, basicAuthenticator, sessionAuthenticator } from './authenticators.js';

const basicSigner: OutgoingSigner = {
  async sign(request, { config, secrets }) {
    const credential = Buffer.from(`${String(config.username)}:${String(secrets.password)}`, 'utf8').toString('base64');
    return { kind: 'signed', request: { ...request, headers: { ...request.headers, authorization: `Basic ${credential}` } } };
  },
};

const bearerSigner: OutgoingSigner = {
  async sign(request, { secrets }) {
    return { kind: 'signed', request: { ...request, headers: { ...request.headers, authorization: `Bearer ${String(secrets.token)}` } } };
  },
};

/**
 * The core authentication types: anonymous, sign-in sessions, Basic and personal API tokens.
 * Weights (ours; Atlassian's are not published): impersonating and per-user protocols rank above
 * a shared token, which ranks above a password.
 */
export const coreModule: ProtocolModule = {
  id: 'core',
  authTypes: [
    { id: 'anonymous', title: 'Anonymous', weight: 0, impersonating: false },
    { id: 'session', title: 'Sign-in session', weight: 0, impersonating: false },
    {
      id: 'basic',
      title: 'Basic (username and password)',
      atlassianType: 'com.atlassian.applinks.api.auth.types.BasicAuthenticationProvider',
      weight: 10,
      impersonating: false,
      userCredential: true,
      outgoing: {
        schema: Type.Object(
          { username: Type.String({ minLength: 1, maxLength: 255 }), password: Type.String({ minLength: 1, maxLength: 1024 }) },
          { additionalProperties: false },
        ),
        secretFields: ['password'],
        signer: basicSigner,
        warnings: () => ['Basic sends a password with every request; prefer an API token or OAuth where the remote offers one.'],
      },
    },
    {
      id: 'api-token',
      title: 'Personal API token (Bearer)',
      weight: 20,
      impersonating: false,
      userCredential: true,
      outgoing: {
        schema: Type.Object({ token: Type.String({ minLength: 1, maxLength: 4096 }) }, { additionalProperties: false }),
        secretFields: ['token'],
        signer: bearerSigner,
      },
    },
  ],
  setup: (s) => ({
    authenticators: [
      { order: 50, authenticator: apiTokenAuthenticator(s) },
      { order: 90, authenticator: basicAuthenticator(s) },
      // Last: an explicit credential in the request wins over the browser's ambient cookie.
      { order: 95, authenticator: sessionAuthenticator(s) },
    ],
  }),
};
