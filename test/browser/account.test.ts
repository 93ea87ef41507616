import type { AddressInfo } from 'node:net';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, createHarness, type Harness } from '../helpers/harness.js';
import { launchChromium } from '../helpers/browser.js';

describe('sign-in and account pages in a real browser', () => {
  let h: Harness;
  let browser: Browser;
  let base: string;

  beforeAll(async () => {
    h = await createHarness('sqlite');
    await h.app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`;
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await h.close();
  });

  it('signs in through the form, creates and revokes a token, and signs out', async () => {
    const page = await browser.newPage();
    await page.goto(`${base}/applinks/account`);
    expect(new URL(page.url()).pathname).toBe('/applinks/login');

    await page.getByLabel('Username').fill('admin');
    await page.getByLabel('Password').fill('not-the-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.getByRole('alert').textContent()).resolves.toContain('The username or password is wrong.');

    await page.getByLabel('Password').fill(ADMIN_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${base}/applinks/account`);
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Your account');
    expect(await page.textContent('body')).toContain('Signed in as Administrator (admin), administrator');

    const cookies = await page.context().cookies();
    const session = cookies.find((c) => c.name === 'applinks_session')!;
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Lax', secure: false });

    await page.getByLabel('Token name').fill('from the browser');
    await page.getByRole('button', { name: 'Create token' }).click();
    const token = (await page.locator('#new-token').textContent())!;
    expect(token).toMatch(/^alpat_/);
    expect((await h.inject({ url: '/x', headers: { authorization: `Bearer ${token}` } })).json()).toMatchObject({ user: { username: 'admin' }, authType: 'api-token' });

    await page.getByRole('button', { name: 'Revoke from the browser' }).click();
    await page.waitForURL(`${base}/applinks/account`);
    expect(await page.textContent('body')).toContain('You have no API tokens.');
    expect((await h.inject({ url: '/x', headers: { authorization: `Bearer ${token}` } })).statusCode).toBe(401);

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(/\/applinks\/login$/);
    await page.goto(`${base}/applinks/account`);
    expect(new URL(page.url()).pathname).toBe('/applinks/login');
    await page.close();
  });
});
