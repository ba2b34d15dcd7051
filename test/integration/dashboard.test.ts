import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Browser, type BrowserContext, chromium, type Locator, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';
import { type RunningProcess, startPortico } from '../helpers/process.js';

const CHROMIUM = '/usr/bin/chromium';
const KEY = 'pk_dashboard_test_0123456789abcdef0123456789';
const APPS_DOMAIN = 'apps.portico.test';
const DOMAIN = 'shop.dashboard.test';
const SCREENSHOT = path.resolve(import.meta.dirname, '../../test-output/dashboard.png');

/**
 * The dashboard as a person uses it: `portico serve` as a real process (API, worker and edge, the
 * local CA issuing certificates), the loopback DNS server standing in for the customer's DNS, and
 * Debian's Chromium clicking through the page. Every wait is for something on the page.
 */
describe('the dashboard in a real browser', () => {
  let dns: TestDnsServer;
  let portico: RunningProcess;
  let browser: Browser;
  let context: BrowserContext;
  let apiUrl: string;
  const dataDir = mkdtempSync(path.join(tmpdir(), 'portico-dashboard-'));
  /** Script errors and console errors other than failed requests (the API's 4xx answers log those). */
  const pageProblems: string[] = [];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`${CHROMIUM} is missing: the dashboard test needs it (apt-get install chromium)`);
    }
    dns = await startDnsServer();
    portico = startPortico(['serve'], {
      PORTICO_DATA_DIR: dataDir,
      PORTICO_API_PORT: '0',
      PORTICO_EDGE_HTTP_PORT: '0',
      PORTICO_EDGE_HTTPS_PORT: '0',
      PORTICO_DNS_SERVERS: dns.address,
      PORTICO_APPS_DOMAIN: APPS_DOMAIN,
      PORTICO_TLS_ISSUER: 'internal',
      PORTICO_BOOTSTRAP_KEY: KEY,
      PORTICO_ALLOW_PRIVATE_ORIGINS: '1',
      DATABASE_URL: '',
    });
    const [, url] = await portico.waitFor(/Portico API listening on (http:\/\/127\.0\.0\.1:\d+)/);
    apiUrl = url ?? '';
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--headless',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    // The copy buttons write to the clipboard; the test reads it back to see what was copied.
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: apiUrl });
  });

  afterAll(async () => {
    await browser?.close();
    await portico?.stop();
    await dns?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** The API called directly, as the test's independent view of what the page should show. */
  const api = async (method: string, pathname: string, body?: unknown, key = KEY) => {
    const response = await fetch(`${apiUrl}${pathname}`, {
      method,
      headers: {
        authorization: `Bearer ${key}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: response.status, body: await response.json() };
  };

  const openPage = async (): Promise<Page> => {
    const page = await context.newPage();
    page.on('pageerror', (error) => pageProblems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) {
        pageProblems.push(`console: ${message.text()}`);
      }
    });
    await page.goto(apiUrl);
    return page;
  };

  const textOf = async (locator: Locator) => (await locator.textContent()) ?? '';

  const signIn = async (page: Page, key: string) => {
    await page.getByLabel('API key').fill(key);
    await page.getByRole('button', { name: 'Sign in' }).click();
  };

  it('serves the page under a strict policy, and its modules, outside the OpenAPI document', async () => {
    const page = await fetch(apiUrl);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const policy = page.headers.get('content-security-policy') ?? '';
    expect(policy).toContain("default-src 'self'");
    expect(policy).not.toContain('unsafe-inline');
    const etag = page.headers.get('etag') ?? '';
    expect((await fetch(apiUrl, { headers: { 'if-none-match': etag } })).status).toBe(304);

    for (const asset of [
      '/ui/app.js',
      '/ui/vendor/preact.mjs',
      '/ui/vendor/preact-hooks.mjs',
      '/ui/vendor/htm.mjs',
    ]) {
      const response = await fetch(`${apiUrl}${asset}`);
      expect(response.status, asset).toBe(200);
      expect(response.headers.get('content-type'), asset).toBe('text/javascript; charset=utf-8');
    }
    expect((await fetch(`${apiUrl}/ui/styles.css`)).headers.get('content-type')).toBe(
      'text/css; charset=utf-8',
    );

    const openapi = await (await fetch(`${apiUrl}/openapi.json`)).json();
    expect(Object.keys(openapi.paths).filter((p) => p === '/' || p.startsWith('/ui'))).toEqual([]);
  });

  it("refuses a wrong key with the API's own message", async () => {
    const refused = await api('GET', '/v1/apps', undefined, 'pk_not_a_real_key');
    expect(refused.status).toBe(401);

    const page = await openPage();
    await signIn(page, 'pk_not_a_real_key');
    await page.getByRole('alert').getByText(refused.body.error.message, { exact: true }).waitFor();
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    await page.close();
  });

  it('takes a domain from added to active: records shown, copied, verified, certificate issued', async () => {
    const page = await openPage();
    await signIn(page, KEY);
    await page.getByRole('heading', { name: 'Apps' }).waitFor();
    // The key lives for this tab only.
    expect(await page.evaluate(() => [sessionStorage.length, localStorage.length])).toEqual([1, 0]);

    await page.getByLabel('Slug').fill('dashboard-shop');
    await page.getByLabel('Title').fill('Dashboard shop');
    await page.getByLabel('Origin URL').fill('http://127.0.0.1:9/');
    await page.getByRole('button', { name: 'Create app' }).click();
    await page.getByRole('heading', { name: 'Dashboard shop' }).waitFor();
    const appId = decodeURIComponent(new URL(page.url()).hash.split('/')[2] ?? '');
    expect(appId).toMatch(/^app_[a-z0-9]{12}$/);

    // A URL where a hostname belongs: the page shows the API's own explanation.
    const domainField = page.getByLabel('Domain', { exact: true });
    const addButton = page.getByRole('button', { name: 'Add domain' });
    const refused = await api('POST', `/v1/apps/${appId}/domains`, { domain: 'https://shop.example.com/' });
    expect(refused.status).toBe(400);
    await domainField.fill('https://shop.example.com/');
    await addButton.click();
    await page.getByRole('alert').getByText(refused.body.error.message, { exact: true }).waitFor();

    await domainField.fill(DOMAIN);
    await addButton.click();
    const panel = page.getByRole('region', { name: DOMAIN });
    const status = panel.getByRole('status', { name: 'Domain status' });
    await status.getByText('pending', { exact: true }).waitFor();

    // The records shown are the ones the API asks for, with this domain's token.
    const { body: added } = await api('GET', `/v1/apps/${appId}/domains/${DOMAIN}`);
    const txt = panel.getByRole('row').filter({ has: page.getByRole('cell', { name: 'TXT', exact: true }) });
    const cname = panel
      .getByRole('row')
      .filter({ has: page.getByRole('cell', { name: 'CNAME', exact: true }) });
    const txtName = await textOf(txt.locator('.record-name'));
    const txtValue = await textOf(txt.locator('.record-value'));
    expect(txtName).toBe(`_mixpeek-verify.${DOMAIN}`);
    expect(txtValue).toContain(added.verification_token);
    expect(await textOf(cname.locator('.record-name'))).toBe(DOMAIN);
    expect(await textOf(cname.locator('.record-value'))).toBe(`cname.${APPS_DOMAIN}`);

    await txt.getByRole('button', { name: 'Copy TXT record value' }).click();
    await txt.getByText('Copied', { exact: true }).waitFor();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(txtValue);

    // Verify before the records exist: the domain is checked again and again, and the page says why
    // it does not pass yet, in the API's words.
    const verifyButton = panel.getByRole('button', { name: 'Verify' });
    await verifyButton.click();
    await status.getByText('verifying', { exact: true }).waitFor();
    const reason = status.getByRole('listitem').first();
    await reason.waitFor();
    const { body: verifying } = await api('GET', `/v1/apps/${appId}/domains/${DOMAIN}`);
    expect(verifying.verification_errors.map((e: { message: string }) => e.message)).toContain(
      await textOf(reason),
    );
    await panel.getByText('Updating every 2 seconds…').waitFor();

    // The customer creates the records and verifies again. Verify checks DNS at once, so its answer
    // shows `verified`; the worker then issues the certificate, and only polling can show `active`.
    dns.set(txtName, 'TXT', txtValue);
    dns.set(DOMAIN, 'CNAME', `cname.${APPS_DOMAIN}`);
    await verifyButton.click();
    await status.getByText('verified', { exact: true }).waitFor();
    await status.getByText('active', { exact: true }).waitFor();

    const { body: active } = await api('GET', `/v1/apps/${appId}/domains/${DOMAIN}`);
    expect(active.status).toBe('active');
    const notAfter: string = active.certificate.not_after;
    await panel.locator('.certificate time').getByText(notAfter.slice(0, 10), { exact: true }).waitFor();
    await panel.getByText(/^\(\d+ days? left\)$/).waitFor();
    // The table follows the panel: same status, same expiry.
    const row = page.getByRole('row').filter({ has: page.getByRole('link', { name: DOMAIN }) });
    await row.getByText('active', { exact: true }).waitFor();
    await row.getByText(notAfter.slice(0, 10), { exact: true }).waitFor();
    await expect(panel.getByRole('button', { name: 'Verify' }).count()).resolves.toBe(0);

    mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(pageProblems).toEqual([]);
  }, 120_000);
});
