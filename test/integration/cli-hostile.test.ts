import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/loader.js';
import { oauth2Of } from '../../src/modules/oauth2/index.js';
import { ClientManager } from '../../src/modules/oauth2/management.js';
import { createServices, type Services } from '../../src/services/index.js';

const CLI = path.resolve('dist/cli/main.js');
const PASSWORD = 'hunter2-sekrit';
const LINK_SECRET = 'link-sekrit-value';
const actor = { id: null, name: 'test', address: null };

/**
 * Bad invocations of every command group: each must exit non-zero (2 for a malformed command
 * line, 1 for a refusal), say what is wrong in one line naming the argument or option, print no
 * stack trace and no secret, and change nothing.
 */
const CASES: Array<{ args: string[]; stdin?: string; env?: Record<string, string>; code: 1 | 2; says: RegExp }> = [
  // Malformed command lines: commander's and our own checks.
  { args: ['bogus'], code: 2, says: /unknown command 'bogus'/ },
  { args: ['users', 'create', 'x', `--bogus=${PASSWORD}`], code: 2, says: /unknown option '--bogus=…'/ },
  { args: ['users', 'update', 'alice', '--admin', 'maybe'], code: 2, says: /--admin .*expected true or false/ },
  { args: ['users', 'create', 'x', '--password-stdin'], stdin: '', code: 2, says: /--password-stdin: standard input held no password/ },
  { args: ['users', 'create', 'x', '--password', PASSWORD, '--password-stdin'], stdin: `${PASSWORD}\n`, code: 2, says: /--password <password>' cannot be used with option '--password-stdin'/ },
  { args: ['tokens', 'create', 'alice', '--name', 'ci', '--expires', 'tomorrow'], code: 2, says: /--expires .*RFC 3339/ },
  { args: ['links', 'set-auth', 'Jira', 'outgoing', 'basic', '@-'], stdin: `{"password": "${LINK_SECRET}",}`, code: 2, says: /<json>: not valid JSON/ },
  { args: ['links', 'set-auth', 'Jira', 'sideways', 'basic', '{}'], code: 2, says: /argument 'direction'.*incoming, outgoing/ },
  { args: ['links', 'request', 'Jira', '/', '-H', `Authorization ${LINK_SECRET}`], code: 2, says: /--header: expected "Name: value"/ },
  { args: ['links', 'request', 'Jira', '/', '-H', `X-Token: ${LINK_SECRET}\r\nHost: evil`], code: 2, says: /--header: the value of "X-Token" has control characters/ },
  { args: ['oauth2', 'clients', 'create', '--name', 'X', '--scopes', 'EVERYTHING'], code: 2, says: /--scopes .*READ, WRITE/ },
  { args: ['oauth2', 'clients', 'rotate-secret', 'myclient01', '--grace', '-1'], code: 2, says: /--grace .*0 to 2592000/ },
  { args: ['audit', '--limit', 'abc'], code: 2, says: /--limit .*whole number/ },
  // Well-formed, refused by the services' validation.
  { args: ['users', 'create', 'bob', '--password-stdin'], stdin: 'short\n', code: 1, says: /^error: password: 8 to 1024/ },
  { args: ['users', 'update', 'no\u001b[2Jbody', '--email', 'a@b.example'], code: 1, says: /No user named "no\\u001b\[2Jbody"/ },
  { args: ['users', 'update', 'a'.repeat(10_000), '--email', 'a@b.example'], code: 1, says: /No user named "a{80}…"/ },
  { args: ['tokens', 'create', 'alice', '--name', 'x'.repeat(10_000)], code: 1, says: /^error: name: 1 to 200 characters/ },
  { args: ['links', 'create', '--name', 'a\u0007b'], code: 1, says: /^error: name: .*no control characters/ },
  { args: ['links', 'create', '--name', 'jira', '--outgoing', `{"basic":{"username":"u","password":"${LINK_SECRET}"}}`], code: 1, says: /already exists.*\(name\)/ },
  { args: ['links', 'update', 'Confluence', '--name', 'JIRA', '--url', 'https://moved.example'], code: 1, says: /^error: A link named "JIRA" already exists\. \(name\)$/ },
  { args: ['links', 'set-auth', 'Jira', 'outgoing', 'basic', `{"username":"u","password":"${LINK_SECRET}","extra":1}`], code: 1, says: /outgoing\.basic\.extra/ },
];

function cli(env: Record<string, string>, args: string[], stdin = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH!, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdin.end(stdin);
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

async function pool<T, R>(items: T[], width: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await work(items[i]!);
      }
    }),
  );
  return results;
}

describe('the applinks command, given bad input', () => {
  let dataDir: string;
  let env: Record<string, string>;
  const open = () => createServices(loadConfig({ env }));
  const census = async (s: Services) => ({
    users: (await s.users.list({ limit: 100, offset: 0 })).users.length,
    links: (await s.links.list()).map((l) => `${l.name} ${l.url}`).sort(),
    audit: (await s.audit.list({ limit: 500 })).length,
  });
  let before: Awaited<ReturnType<typeof census>>;

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), 'applinks-cli-hostile-'));
    env = { APPLINKS_DATA_DIR: dataDir, APPLINKS_LOG_LEVEL: 'warn' };
    const s = await open();
    try {
      await s.users.create({ username: 'alice', password: PASSWORD, isAdmin: false }, actor);
      await s.links.create({ name: 'Jira', url: 'http://127.0.0.1:9', applicationType: 'jira', outgoing: { basic: { username: 'svc', password: LINK_SECRET } } }, actor);
      await s.links.create({ name: 'Confluence', applicationType: 'confluence' }, actor);
      await new ClientManager(s, oauth2Of(s)).create({ name: 'Reports', redirectUris: ['https://reports.example/cb'], scopes: ['READ'], confidential: true, clientId: 'myclient01' }, actor);
      before = await census(s);
    } finally {
      await s.close();
    }
  });
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('refuses each in one line naming what is wrong, without a stack trace or a secret, and changes nothing', async () => {
    const results = await pool(CASES, 4, (c) => cli({ ...env, ...c.env }, c.args, c.stdin));
    const problems: string[] = [];
    CASES.forEach((c, i) => {
      const r = results[i]!;
      const shown = `${c.args.join(' ').slice(0, 80)} → [${r.code}] ${r.stderr.slice(0, 400)}`;
      const lines = r.stderr.trimEnd().split('\n');
      if (r.code !== c.code) problems.push(`exit ${r.code}, expected ${c.code}: ${shown}`);
      if (!c.says.test(lines[0]!)) problems.push(`message does not match ${c.says}: ${shown}`);
      // One line, plus commander's hint at --help.
      if (lines.length > 2 || (lines.length === 2 && !/^\(run "applinks .*--help" for usage\)$/.test(lines[1]!))) problems.push(`more than one line: ${shown}`);
      if (/^\s+at /m.test(r.stderr)) problems.push(`stack trace: ${shown}`);
      if (r.stdout !== '') problems.push(`printed to stdout: ${shown}`);
      if (/[\u0000-\u0008\u000b-\u001f\u007f]/.test(r.stderr)) problems.push(`control characters in the message: ${shown}`);
      if (r.stderr.length > 600) problems.push(`message of ${r.stderr.length} characters: ${c.args.join(' ').slice(0, 80)}`);
      for (const secret of [PASSWORD, LINK_SECRET]) if ((r.stdout + r.stderr).includes(secret)) problems.push(`secret in output: ${shown}`);
    });
    expect(problems).toEqual([]);

    const s = await open();
    try {
      // No user, link or audit entry was made by a refused command.
      expect(await census(s)).toEqual(before);
      const audit = JSON.stringify(await s.audit.list({ limit: 500 }));
      expect(audit).not.toContain(PASSWORD);
      expect(audit).not.toContain(LINK_SECRET);
    } finally {
      await s.close();
    }
  }, 60_000);

  it('--help exits 0 and describes the command', async () => {
    const commands = ['users set-password', 'links set-auth', 'oauth2 clients update'];
    const results = await pool(commands, 4, (c) => cli(env, [...c.split(' '), '--help']));
    results.forEach((r, i) => {
      expect(r.code, commands[i]).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^Usage: applinks ${commands[i]} `));
      expect(r.stdout.split('\n')[2]!.length, `${commands[i]} has a description`).toBeGreaterThan(0);
    });
  });
});
