import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { registerOAuth2 } from '../../src/cli/oauth2.js';
import { registerUsers } from '../../src/cli/users.js';

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
});
