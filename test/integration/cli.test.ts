import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../bench/lib/measure.js';

const CLI = path.resolve('dist/cli/main.js');

function cli(env: Record<string, string>, args: string[], input?: string) {
  const r = spawnSync(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH!, ...env }, encoding: 'utf8', input, timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** `cli` without blocking this process, for commands that call a server running in it. */
function cliAsync(env: Record<string, string>, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH!, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

function serve(env: Record<string, string>): Promise<{ child: ChildProcess; output: () => string }> {
  const child = spawn(process.execPath, [CLI, 'serve'], { env: { PATH: process.env.PATH!, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  return new Promise((resolve, reject) => {
    const timer = setInterval(() => {
      if (out.includes('applinks is listening')) {
        clearInterval(timer);
        resolve({ child, output: () => out });
      }
    }, 50);
    child.once('exit', (code) => {
      clearInterval(timer);
      reject(new Error(`serve exited ${code}: ${out}`));
    });
  });
}

const exited = (child: ChildProcess) => new Promise<number | null>((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', (code) => resolve(code))));

describe('the applinks command', () => {
  let dataDir: string;
  let env: Record<string, string>;
  beforeAll(() => {
    dataDir = mkdtempSync(path.join(tmpdir(), 'applinks-cli-'));
    env = { APPLINKS_DATA_DIR: dataDir, APPLINKS_LOG_LEVEL: 'info' };
  });
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('stops a start with a bad value and names it', () => {
    const r = cli({ ...env, APPLINKS_PORT: 'eighty' }, ['serve']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/APPLINKS_PORT: must be an integer from 0 to 65535 \(got "eighty"\)/);
    const secret = cli({ ...env, APPLINKS_MASTER_KEY: 'c2hvcnQ=' }, ['serve']);
    expect(secret.code).toBe(2);
    expect(secret.stderr).toMatch(/APPLINKS_MASTER_KEY: each key must be 32 bytes/);
    expect(secret.stderr).not.toContain('c2hvcnQ=');
  });

  it('on first start creates the master key (0600) and prints a generated admin password once; SIGTERM drains in-flight requests', async () => {
    // A slow host, so a request is in flight when SIGTERM arrives.
    const slow = http.createServer((_req, res) => setTimeout(() => res.end('slow answer'), 1500));
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
    const port = await freePort();
    const runEnv = { ...env, APPLINKS_PORT: String(port), APPLINKS_UPSTREAM_URL: `http://127.0.0.1:${(slow.address() as AddressInfo).port}` };
    const first = await serve(runEnv);
    const printed = /with password:\s+(\S+)/.exec(first.output())?.[1];
    expect(printed).toMatch(/^[A-Za-z0-9_-]{20,}$/);
    expect(statSync(path.join(dataDir, 'master.key')).mode & 0o777).toBe(0o600);
    // The password was printed to the console, never logged.
    const logLines = first.output().split('\n').filter((l) => l.startsWith('{'));
    expect(logLines.join('\n')).not.toContain(printed!);

    const inFlight = request(`http://127.0.0.1:${port}/slow`, { headers: { authorization: `Basic ${Buffer.from(`admin:${printed}`).toString('base64')}` } });
    await new Promise((r) => setTimeout(r, 300));
    first.child.kill('SIGTERM');
    const res = await inFlight;
    expect(res.statusCode).toBe(200);
    expect(await res.body.text()).toBe('slow answer');
    expect(await exited(first.child)).toBe(0);
    expect(first.output()).toMatch(/"msg":"stopped"/);

    const second = await serve(runEnv);
    expect(second.output()).not.toMatch(/with password/);
    second.child.kill('SIGTERM');
    expect(await exited(second.child)).toBe(0);
    slow.close();
  }, 60_000);

  it('on a first start after users were made from the command line, with the master key given, still creates the administrator and prints its password, even when the port is taken', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'applinks-cli-first-'));
    try {
      const fresh = { APPLINKS_DATA_DIR: path.join(root, 'not', 'yet'), APPLINKS_MASTER_KEY: randomBytes(32).toString('base64'), APPLINKS_LOG_LEVEL: 'info' };
      expect(cli(fresh, ['users', 'create', 'bob', '--password-stdin'], 'bob-password-1\n').code).toBe(0);
      const busy = http.createServer();
      await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
      try {
        const taken = cli({ ...fresh, APPLINKS_PORT: String((busy.address() as AddressInfo).port) }, ['serve']);
        expect(taken.code).toBe(1);
        expect(taken.stderr).toMatch(/EADDRINUSE/);
        expect(taken.stdout).toMatch(/with password:\s+\S{20,}/);
      } finally {
        busy.close();
      }
      const users = JSON.parse(cli(fresh, ['users', 'list', '--json']).stdout) as Array<{ username: string; admin: boolean }>;
      expect(users.map((u) => [u.username, u.admin]).sort()).toEqual([['admin', true], ['bob', false]]);
      const started = await serve({ ...fresh, APPLINKS_PORT: String(await freePort()) });
      expect(started.output()).not.toMatch(/with password/);
      started.child.kill('SIGTERM');
      expect(await exited(started.child)).toBe(0);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }, 60_000);

  it('manages users, tokens and links, and refuses bad input with a message', () => {
    expect(cli(env, ['users', 'create', 'alice', '--password-stdin', '--email', 'alice@example.com'], 'alice-password\n').code).toBe(0);
    const badEmail = cli(env, ['users', 'create', 'carol', '--email', 'not-an-email']);
    expect([badEmail.code, badEmail.stderr]).toEqual([1, expect.stringMatching(/email: "not-an-email" is not an email address/)]);
    const dup = cli(env, ['users', 'create', 'ALICE']);
    expect(dup.code).toBe(1);
    expect(dup.stderr).toMatch(/already exists/);
    const list = JSON.parse(cli(env, ['users', 'list', '--json']).stdout) as Array<{ username: string }>;
    expect(list.map((u) => u.username).sort()).toEqual(['admin', 'alice']);
    const token = cli(env, ['tokens', 'create', 'alice', '--name', 'ci']);
    expect(token.code).toBe(0);
    expect(token.stdout.trim()).toMatch(/^alpat_/);
    expect(cli(env, ['users', 'disable', 'alice']).stdout).toMatch(/disabled/);

    const created = cli(env, ['links', 'create', '--name', 'Jira', '--url', 'https://jira.example.com/', '--type', 'jira', '--outgoing', '{"basic":{"username":"svc","password":"cli-secret"}}']);
    expect(created.code).toBe(0);
    const link = JSON.parse(created.stdout) as { id: string; url: string; primaryOutgoingType: string; outgoing: Array<{ secretsSet: string[] }> };
    expect(link).toMatchObject({ url: 'https://jira.example.com', primaryOutgoingType: 'basic' });
    expect(created.stdout).not.toContain('cli-secret');
    const badType = cli(env, ['links', 'create', '--name', 'X', '--type', 'nonsense']);
    expect(badType.code).toBe(1);
    expect(badType.stderr).toMatch(/applicationType/);
    const badAuth = cli(env, ['links', 'set-auth', 'Jira', 'outgoing', 'basic', '{"username":"svc","extra":1}']);
    expect(badAuth.code).toBe(1);
    expect(badAuth.stderr).toMatch(/outgoing\.basic\.extra|must NOT have additional properties/);
    expect(cli(env, ['links', 'list']).stdout).toMatch(/Jira\s+jira\s+https:\/\/jira\.example\.com/);
    expect(cli(env, ['links', 'delete', 'jira']).code).toBe(0);
    const audit = cli(env, ['audit', '--json']);
    const actions = (JSON.parse(audit.stdout) as Array<{ action: string; actor: string }>).map((e) => e.action);
    expect(actions).toEqual(expect.arrayContaining(['user.create', 'token.create', 'user.disable', 'link.create', 'link.delete']));
    expect(audit.stdout).not.toContain('cli-secret');
  });

  it('revokes a token and audits it as the operating-system user, naming the token and never its secret', () => {
    expect(cli(env, ['users', 'create', 'ivy', '--password-stdin'], 'ivy-password-1\n').code).toBe(0);
    const token = cli(env, ['tokens', 'create', 'ivy', '--name', 'deploy']).stdout.trim();
    expect(token).toMatch(/^alpat_/);
    const [listed] = JSON.parse(cli(env, ['tokens', 'list', 'ivy', '--json']).stdout) as Array<{ id: string; name: string }>;
    expect(listed).toMatchObject({ name: 'deploy' });
    const revoked = cli(env, ['tokens', 'revoke', listed!.id]);
    expect([revoked.code, revoked.stdout]).toEqual([0, `token ${listed!.id} revoked\n`]);
    expect(JSON.parse(cli(env, ['tokens', 'list', 'ivy', '--json']).stdout)).toEqual([]);

    const printed = cli(env, ['audit', '--json', '--action', 'token.revoke']);
    const entries = JSON.parse(printed.stdout) as Array<{ actor: string; action: string; target: string }>;
    expect(entries).toEqual([expect.objectContaining({ actor: `cli:${userInfo().username}`, action: 'token.revoke', target: 'deploy' })]);
    const db = new Database(path.join(dataDir, 'applinks.db'), { readonly: true });
    try {
      const rows = db.prepare("select * from audit_log where action = 'token.revoke'").all() as Array<Record<string, unknown>>;
      expect(rows).toEqual([expect.objectContaining({ actor_id: null, actor_name: `cli:${userInfo().username}`, target_type: 'api-token', target_id: listed!.id, target_name: 'deploy', address: null })]);
      const stored = JSON.stringify(rows) + printed.stdout;
      expect(stored).not.toContain(token.slice('alpat_'.length, 20));
      expect(stored).not.toContain(createHash('sha256').update(token).digest('base64url'));
    } finally {
      db.close();
    }
    // The same id again: one line, exit 1, and no second entry.
    const again = cli(env, ['tokens', 'revoke', listed!.id]);
    expect([again.code, again.stderr]).toEqual([1, 'error: No such token.\n']);
    expect(JSON.parse(cli(env, ['audit', '--json', '--action', 'token.revoke']).stdout)).toHaveLength(1);
  });

  it('rotates the master key and prunes the old one, keeping every secret readable', () => {
    expect(cli(env, ['links', 'create', '--name', 'R', '--url', 'https://r.example', '--outgoing', '{"api-token":{"token":"rotate-me"}}']).code).toBe(0);
    const before = readFileSync(path.join(dataDir, 'master.key'), 'utf8').trim().split('\n');
    const rotated = cli(env, ['keys', 'rotate']);
    expect(rotated.code).toBe(0);
    expect(rotated.stdout).toMatch(/re-sealed \d+ secret/);
    const during = readFileSync(path.join(dataDir, 'master.key'), 'utf8').trim().split('\n');
    expect(during).toHaveLength(before.length + 1);
    expect(during.slice(1)).toEqual(before);
    const pruned = cli(env, ['keys', 'prune']);
    expect(pruned.stdout).toMatch(/re-sealed 0 straggler\(s\); 1 old key\(s\) removed/);
    const after = readFileSync(path.join(dataDir, 'master.key'), 'utf8').trim().split('\n');
    expect(after).toEqual([during[0]]);
    expect(statSync(path.join(dataDir, 'master.key')).mode & 0o777).toBe(0o600);
    const show = cli(env, ['links', 'show', 'R']);
    expect(show.code).toBe(0);
    expect(JSON.parse(show.stdout).outgoing[0].secretsSet).toEqual(['token']);
    // Nothing left to prune.
    expect(cli(env, ['keys', 'prune']).stdout).toMatch(/0 old key\(s\) removed/);
  });

  it('a running server adopts a rotated key: after prune what it seals still opens, and the link list still answers', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'applinks-cli-keys-'));
    // The remote: answers whether the request came with the link's password.
    const remote = http.createServer((req, res) => res.end(req.headers.authorization === `Basic ${Buffer.from('svc:rotated-secret').toString('base64')}` ? 'authorized' : 'anonymous'));
    await new Promise<void>((r) => remote.listen(0, '127.0.0.1', r));
    const port = await freePort();
    const runEnv = { APPLINKS_DATA_DIR: dir, APPLINKS_LOG_LEVEL: 'info', APPLINKS_PORT: String(port), APPLINKS_ADMIN_PASSWORD: 'admin-password-1' };
    const admin = `Basic ${Buffer.from('admin:admin-password-1').toString('base64')}`;
    const server = await serve(runEnv);
    try {
      const rotated = cli(runEnv, ['keys', 'rotate']);
      expect(rotated.code).toBe(0);
      expect(rotated.stdout).toMatch(/running instances \(1\) seal with/);
      const newKey = readFileSync(path.join(dir, 'master.key'), 'utf8').trim().split('\n')[0];
      const status = cli(runEnv, ['keys', 'status', '--json']);
      const st = JSON.parse(status.stdout) as { kids: string[]; instances: Array<{ sealingKid: string; live: boolean }> };
      expect(st.instances.filter((i) => i.live).map((i) => i.sealingKid)).toEqual([st.kids[0]]);
      const pruned = cli(runEnv, ['keys', 'prune']);
      expect(pruned.code).toBe(0);
      expect(pruned.stdout).toMatch(/1 old key\(s\) removed/);
      expect(readFileSync(path.join(dir, 'master.key'), 'utf8').trim()).toBe(newKey);

      const created = await request(`http://127.0.0.1:${port}/api/v1/links`, {
        method: 'POST',
        headers: { authorization: admin, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'After', url: `http://127.0.0.1:${(remote.address() as AddressInfo).port}`, outgoing: { basic: { username: 'svc', password: 'rotated-secret' } } }),
      });
      expect(created.statusCode).toBe(201);
      await created.body.text();
      const called = await cliAsync(runEnv, ['links', 'request', 'After', '/']);
      expect(called.stderr).not.toMatch(/unknown key id/);
      expect(called.stdout).toBe('authorized');
    } finally {
      server.child.kill('SIGTERM');
      await exited(server.child);
    }
    const again = await serve(runEnv);
    try {
      const list = await request(`http://127.0.0.1:${port}/api/v1/links`, { headers: { authorization: admin } });
      expect(list.statusCode).toBe(200);
      const body = await list.body.text();
      expect(body).not.toContain('rotated-secret');
      expect((JSON.parse(body) as { links: Array<{ outgoing: Array<{ secretsSet: string[] }> }> }).links[0]!.outgoing[0]!.secretsSet).toEqual(['password']);
    } finally {
      again.child.kill('SIGTERM');
      await exited(again.child);
      remote.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('a rotate while another holds the key lease exits 1 naming it; --wait-for-lease waits until it lapses', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'applinks-cli-lease-'));
    try {
      const runEnv = { APPLINKS_DATA_DIR: dir };
      expect(cli(runEnv, ['keys', 'status']).code).toBe(0); // makes and migrates the store
      const db = new Database(path.join(dir, 'applinks.db'));
      const since = Date.now() - 5000;
      // Left by a rotate on another machine that crashed.
      db.prepare('insert into leases (name, holder, owner, host, pid, scope, acquired_at, expires_at) values (?, ?, ?, ?, ?, ?, ?, ?)').run(
        'master-keys', 'h1', 'keys rotate by alice', 'host-a', 4242, 'another-machine', since, Date.now() + 600_000,
      );
      const before = readFileSync(path.join(dir, 'master.key'), 'utf8');
      const refused = cli(runEnv, ['keys', 'rotate']);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(`error: nothing changed: keys rotate by alice on host-a (pid 4242) holds the store's master-keys lease, since ${new Date(since).toISOString()}.`);
      expect(cli(runEnv, ['keys', 'prune']).code).toBe(1);
      expect(readFileSync(path.join(dir, 'master.key'), 'utf8')).toBe(before);
      // It lapses in 2 s.
      db.prepare('update leases set expires_at = ?').run(Date.now() + 2000);
      db.close();
      const waited = cli(runEnv, ['keys', 'rotate', '--wait-for-lease', '20']);
      expect(waited.stderr).toMatch(/waiting up to 20 s for keys rotate by alice on host-a \(pid 4242\)/);
      expect(waited.code).toBe(0);
      expect(waited.stdout).toMatch(/re-sealed \d+ secret/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a server killed without a clean shutdown does not hold up a rotation', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'applinks-cli-killed-'));
    const runEnv = { APPLINKS_DATA_DIR: dir, APPLINKS_PORT: String(await freePort()) };
    try {
      const server = await serve(runEnv);
      server.child.kill('SIGKILL');
      await exited(server.child);
      const started = Date.now();
      const rotated = cli(runEnv, ['keys', 'rotate']);
      expect(rotated.code).toBe(0);
      // Its process is seen gone from this machine: not waited for (it would be for up to 10 s from another).
      expect(Date.now() - started).toBeLessThan(8000);
      expect(rotated.stdout).toMatch(/running instances \(0\) seal with/);
      expect(rotated.stderr).not.toMatch(/waiting for/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);

  it('with APPLINKS_MASTER_KEY, rotate explains how instead of pretending, and generate makes a key', () => {
    const key = cli(env, ['keys', 'generate']).stdout.trim();
    expect(Buffer.from(key, 'base64')).toHaveLength(32);
    const dir = mkdtempSync(path.join(tmpdir(), 'applinks-cli-env-'));
    try {
      const one = cli({ APPLINKS_DATA_DIR: dir, APPLINKS_MASTER_KEY: key }, ['keys', 'rotate']);
      expect(one.code).toBe(1);
      expect(one.stderr).toMatch(/holds one key .*applinks keys generate/);
      expect(one.stderr).not.toContain(key);
      const other = cli(env, ['keys', 'generate']).stdout.trim();
      const two = cli({ APPLINKS_DATA_DIR: dir, APPLINKS_MASTER_KEY: `${other},${key}` }, ['keys', 'rotate']);
      expect(two.code).toBe(0);
      expect(two.stdout).toMatch(/re-sealed \d+ secret\(s\) under key/);
      const pruned = cli({ APPLINKS_DATA_DIR: dir, APPLINKS_MASTER_KEY: `${other},${key}` }, ['keys', 'prune']);
      expect(pruned.code).toBe(0);
      expect(pruned.stdout).toMatch(/remove it from APPLINKS_MASTER_KEY/);
      expect(pruned.stdout + pruned.stderr).not.toContain(key);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
