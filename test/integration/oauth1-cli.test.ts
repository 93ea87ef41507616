import { createPublicKey } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { registerLinks } from '../../src/cli/links.js';
import { registerOAuth1 } from '../../src/cli/oauth1.js';
import { registerUsers } from '../../src/cli/users.js';
import { createHarness, json, type Harness } from '../helpers/harness.js';
import { xmlAsPythonReadsIt } from '../helpers/oauth1.js';
import { listeningHarness } from '../helpers/oauth2.js';

/** `applinks oauth1 ...` and the OAuth 1.0a side of `applinks links request`, in process, on an embedded store of their own. */
describe('applinks oauth1 CLI', () => {
  let dir: string;
  let remote: Harness;
  let remoteBase: string;
  const saved = { ...process.env };
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'applinks-cli-'));
    process.env.APPLINKS_DATA_DIR = dir;
    process.env.APPLINKS_LOG_LEVEL = 'silent';
    process.env.APPLINKS_BASE_URL = 'https://applinks.example';
    ({ h: remote, base: remoteBase } = await listeningHarness('sqlite'));
  });
  afterAll(async () => {
    process.env = saved;
    await remote.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function cli(...args: string[]): Promise<{ out: string; err: string; code: number | undefined }> {
    const out: string[] = [];
    const err: string[] = [];
    const o = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => (out.push(String(chunk)), true));
    const e = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => (err.push(String(chunk)), true));
    const before = process.exitCode;
    try {
      const program = new Command('applinks').exitOverride();
      registerUsers(program);
      registerLinks(program);
      registerOAuth1(program);
      await program.parseAsync(['node', 'applinks', ...args]);
    } finally {
      o.mockRestore();
      e.mockRestore();
    }
    const code = process.exitCode as number | undefined;
    process.exitCode = before;
    return { out: out.join(''), err: err.join(''), code };
  }

  it('prints our consumer identity, the same as consumer-info serves', async () => {
    const printed = JSON.parse((await cli('oauth1', 'consumer', '--json')).out) as { consumerKey: string; name: string; description: string; publicKey: string; consumerInfoUrl: string; callbackUrl: string };
    expect(printed.consumerKey).toMatch(/^applinks:\d{7}$/);
    expect(printed.publicKey).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    expect(printed.consumerInfoUrl).toBe('https://applinks.example/plugins/servlet/oauth/consumer-info');
    expect(printed.callbackUrl).toBe('https://applinks.example/plugins/servlet/applinks/oauth/login-dance/access');
    // Stable across runs (the key pair and the consumer key live in the store).
    expect(JSON.parse((await cli('oauth1', 'consumer', '--json')).out)).toEqual(printed);
    expect((await cli('oauth1', 'consumer')).out).toContain(`Consumer key:  ${printed.consumerKey}`);

    // A server on the CLI's store serves the same identity at the URL printed.
    const server = await createHarness('sqlite', {
      store: { databaseUrl: `sqlite:${path.join(dir, 'applinks.db')}`, schema: undefined, dataDir: dir, drop: async () => undefined },
      config: { baseUrl: 'https://applinks.example' },
    });
    try {
      const res = await server.inject({ url: new URL(printed.consumerInfoUrl).pathname });
      expect(res.statusCode, res.body).toBe(200);
      const served = Object.fromEntries(xmlAsPythonReadsIt(res.rawPayload).children);
      expect(served).toEqual({ key: printed.consumerKey, name: printed.name, publicKey: expect.any(String), description: printed.description, callback: printed.callbackUrl });
      // The document holds the bare base64 of the key the CLI prints as PEM.
      expect(createPublicKey({ key: Buffer.from(served.publicKey!, 'base64'), format: 'der', type: 'spki' }).export({ format: 'pem', type: 'spki' }).toString()).toBe(printed.publicKey);
    } finally {
      await server.close();
    }
  });

  it("registers a remote's consumer from its consumer-info, and asks for the dance before a 3-legged call", async () => {
    await cli('links', 'create', '--name', 'Remote', '--url', remoteBase, '--outgoing', '{"oauth1": {}}');
    const configured = await cli('oauth1', 'auto-configure', 'Remote', '--allow-2lo', '--allow-impersonation');
    const link = JSON.parse(configured.out) as { incoming: Array<{ config: Record<string, unknown> }> };
    const remoteIdentity = json<{ consumerKey: string }>(await remote.inject({ url: '/api/v1/oauth1/consumer', headers: { authorization: remote.adminBasic } }));
    expect(link.incoming[0]!.config).toMatchObject({ consumerKey: remoteIdentity.consumerKey, allow3LO: true, allow2LO: true, allow2LOImpersonation: true });
    expect(configured.err).toMatch(/warning: 2-legged OAuth with impersonation/);

    await cli('users', 'create', 'alice', '--password', 'alice-password');
    const call = await cli('links', 'request', 'Remote', '/rest/api/2/myself', '--as', 'alice');
    expect(call.code).toBe(3);
    expect(call.err).toContain('Authorize at: https://applinks.example/plugins/servlet/applinks/oauth/login-dance/authorize?applicationLinkID=');
  });
});
