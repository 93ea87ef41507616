/**
 * applinks as a library. `createApplinks()` authenticates requests inside a Node host (Fastify
 * plugin, Express/Connect middleware) and calls linked applications; `buildApp` and
 * `createServices` embed the whole server.
 */
export { createApplinks, assertionVerifier, type Applinks, type GuardOptions, type AssertionClaims } from './lib/index.js';
export type { Principal, PrincipalUser, Connection, Warning, WarningCode } from './auth/principal.js';
export type { AuthTypeDescriptor, Authenticator, ProtocolModule, ModuleRuntime } from './auth/registry.js';
export type { OutgoingCall, OutgoingResult } from './outgoing/client.js';
export { loadConfig, ConfigError } from './config/loader.js';
export type { Config } from './config/schema.js';
export { createServices, type Services } from './services/index.js';
export { buildApp } from './server/app.js';
export { AppError } from './errors/index.js';
