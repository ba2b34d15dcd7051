import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../../helpers/chromium.js';
import { startDnsServer, type TestDnsServer } from '../../helpers/dns-server.js';
import { type ServedPortico, servePortico } from '../../helpers/process.js';

const KEY = 'pk_dashboard_wildcard_test_0123456789abcdef';
const ZONE = 'acme-challenges.portico.test';
const WILDCARD = '*.wild-dashboard.test';

/**
 * A wildcard claim in the dashboard (issue 15 item 5), on a `portico serve` that answers DNS-01 in
 * its challenge zone: the page lists the three records the API asks for (the ownership TXT and
 * the delegation at the wildcard's base, the routing CNAME at the wildcard itself) as it lists any
 * claim's. Debian's Chromium reads the page; the API is the test's independent view.
 */
describe('a wildcard claim in the dashboard', () => {
  let dns: TestDnsServer;
  let portico: ServedPortico;
  let browser: Browser;

  beforeAll(async () => {
    dns = await startDnsServer();
    portico = await servePortico({
      PORTICO_DNS_SERVERS: dns.address,
      PORTICO_TLS_ISSUER: 'internal',
      PORTICO_BOOTSTRAP_KEY: KEY,
      PORTICO_ALLOW_PRIVATE_ORIGINS: '1',
      PORTICO_ACME_CHALLENGE: 'dns-01',
      PORTICO_ACME_DNS_ZONE: ZONE,
    });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await portico?.close();
    await dns?.close();
  });

  const api = (method: string, pathname: string, body?: unknown) => portico.call(KEY, method, pathname, body);

  it('shows its ownership TXT and delegation at its base and its routing CNAME at the wildcard', async () => {
    const app = await api('POST', '/v1/apps', {
      slug: 'dashboard-wild',
      meta: { title: 'Dashboard wild' },
      origin_url: 'http://127.0.0.1:9/',
    });
    expect(app.status).toBe(200);
    const appId: string = app.body.app_id;
    const added = await api('POST', `/v1/apps/${appId}/domains`, { domain: WILDCARD });
    expect(added.status, JSON.stringify(added.body)).toBe(200);
    const expected: { type: string; name: string; value: string; purpose: string }[] = added.body.dns_records;
    expect(expected.map((r) => r.name)).toEqual([
      '_mixpeek-verify.wild-dashboard.test',
      WILDCARD,
      '_acme-challenge.wild-dashboard.test',
    ]);

    const page: Page = await (await browser.newContext()).newPage();
    await page.goto(
      `${portico.url}/#/apps/${encodeURIComponent(appId)}/domains/${encodeURIComponent(WILDCARD)}`,
    );
    await page.getByLabel('API key').fill(KEY);
    await page.getByRole('button', { name: 'Sign in' }).click();
    const rows = page.locator('table.records tbody tr');
    await rows.nth(expected.length - 1).waitFor();
    const shown = await rows.evaluateAll((trs) =>
      trs.map((tr) => ({
        type: tr.querySelector('[data-label="Type"]')?.textContent?.trim(),
        name: tr.querySelector('.record-name')?.textContent,
        value: tr.querySelector('.record-value')?.textContent,
        purpose: tr.querySelector('[data-label="For"]')?.textContent?.trim(),
      })),
    );
    expect(shown).toEqual(expected);
  });
});
