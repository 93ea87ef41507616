import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { registerLinks } from '../../src/cli/links.js';
import { registerOAuth2 } from '../../src/cli/oauth2.js';
import { registerUsers } from '../../src/cli/users.js';
import { loadConfig } from '../../src/config/loader.js';
import { oauth2Of } from '../../src/modules/oauth2/index.js';
import { createServices } from '../../src/services/index.js';

/** `applinks oauth2 clients ...` in process, on an embedded store of its own. */
describe('applinks oauth2 CLI', () => {
  let dir: string;
  const saved = { ...process.env };
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'applinks-cli-'));
    process.env.APPLINKS_DATA_DIR = dir;
    process.env.APPLINKS_LOG_LEVEL = 'silent';
  });
  afterAll(() => {
    process.env = saved;
    rmSync(dir, { recursive: true, force: true });
  });

  async function cli(...args: string[]): Promise<{ out: string; err: string }> {
    const out: string[] = [];
    const err: string[] = [];
    const o = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => (out.push(String(chunk)), true));
    const e = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => (err.push(String(chunk)), true));
    try {
      const program = new Command('applinks').exitOverride();
      registerUsers(program);
      registerOAuth2(program);
      registerLinks(program);
      await program.parseAsync(['node', 'applinks', ...args]);
    } finally {
      o.mockRestore();
      e.mockRestore();
    }
    return { out: out.join(''), err: err.join('') };
  }

  it('registers, lists, rotates and removes clients', async () => {
    await cli('users', 'create', 'robot', '--password', 'robot-password-1');
    const created = await cli('oauth2', 'clients', 'create', '--name', 'Build Bot', '--redirect-uri', 'https://bot.example/cb', '--scopes', 'read', '--service-account', 'robot');
    const [json, secret] = [created.out.slice(0, created.out.lastIndexOf('}') + 1), created.out.slice(created.out.lastIndexOf('}') + 1).trim()];
    const client = JSON.parse(json) as { clientId: string; scopes: string[]; serviceAccount: { username: string } };
    expect(client).toMatchObject({ scopes: ['READ'], serviceAccount: { username: 'robot' } });
    expect(secret).toMatch(/^alcs_/);
    expect(created.err).toContain('shown once');
    const listed = await cli('oauth2', 'clients', 'list', '--json');
    expect(listed.out).toContain(client.clientId);
    expect(listed.out).not.toContain(secret);
    const rotated = await cli('oauth2', 'clients', 'rotate-secret', client.clientId, '--grace', '5');
    expect(rotated.out.trim()).toMatch(/^alcs_/);
    const shown = JSON.parse((await cli('oauth2', 'clients', 'show', client.clientId)).out) as { secrets: unknown[] };
    expect(shown.secrets).toHaveLength(2);
    const updated = JSON.parse((await cli('oauth2', 'clients', 'update', client.clientId, '--no-service-account', '--scopes', 'READ,WRITE')).out) as { serviceAccount: unknown; scopes: string[] };
    expect(updated).toMatchObject({ serviceAccount: null, scopes: ['READ', 'WRITE'] });
    expect((await cli('oauth2', 'clients', 'delete', client.clientId, '--delete-link')).out).toContain('revoked');
    expect(JSON.parse((await cli('oauth2', 'clients', 'list', '--json')).out)).toEqual([]);
  });

  it('prints the new secret once when a change makes a client confidential, through either command, and drops it when it becomes public', async () => {
    /** Whether the client authenticates with this secret (client_secret_basic), as the token endpoint asks. */
    const works = async (clientId: string, clientSecret: string) => {
      const s = await createServices(loadConfig({ env: process.env }));
      try {
        await oauth2Of(s).authenticateClient({ method: 'client_secret_basic', clientId, clientSecret });
        return true;
      } catch {
        return false;
      } finally {
        await s.close();
      }
    };
    const split = (out: string) => [out.slice(0, out.lastIndexOf('}') + 1), out.slice(out.lastIndexOf('}') + 1).trim()] as const;
    const created = await cli('oauth2', 'clients', 'create', '--name', 'Desktop', '--public', '--redirect-uri', 'http://127.0.0.1/cb');
    const { clientId, linkId } = JSON.parse(created.out) as { clientId: string; linkId: string };

    const updated = await cli('oauth2', 'clients', 'update', clientId, '--confidential', 'true');
    const [json, secret] = split(updated.out);
    expect(JSON.parse(json)).toMatchObject({ clientId, confidential: true });
    expect(secret).toMatch(/^alcs_/);
    expect(updated.err).toContain('shown once');
    expect(await works(clientId, secret)).toBe(true);
    expect((await cli('oauth2', 'clients', 'show', clientId)).out).not.toContain(secret);

    // Public again through the generic command: no secret printed, the stored one is dropped.
    const config = { clientId, confidential: false, redirectUris: ['http://127.0.0.1/cb'], scopes: ['READ', 'WRITE'] };
    const toPublic = await cli('links', 'set-auth', linkId, 'incoming', 'oauth2', JSON.stringify(config));
    expect(JSON.parse(toPublic.out)).not.toHaveProperty('issuedSecrets');
    expect(toPublic.err).toBe('');
    expect(await works(clientId, secret)).toBe(false);
    expect(JSON.parse((await cli('oauth2', 'clients', 'show', clientId)).out)).toMatchObject({ confidential: false, secrets: [] });

    // Confidential again through the generic command: a new secret, printed once, that works.
    const toConfidential = await cli('links', 'set-auth', linkId, 'incoming', 'oauth2', JSON.stringify({ ...config, confidential: true }));
    const [linkJson, again] = split(toConfidential.out);
    expect(JSON.parse(linkJson)).not.toHaveProperty('issuedSecrets');
    expect(again).toMatch(/^alcs_/);
    expect(again).not.toBe(secret);
    expect(toConfidential.err).toMatch(/incoming\.oauth2\.clientSecret .*shown once/);
    expect(await works(clientId, again)).toBe(true);
    expect(await works(clientId, secret)).toBe(false);
    expect((await cli('links', 'show', linkId)).out).not.toContain(again);
  });
});
