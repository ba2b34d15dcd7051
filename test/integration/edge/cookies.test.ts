/**
 * Cookies across tenants (issue 18, item 5): every App's default hostname is a sibling under the
 * apps domain, so a `Set-Cookie` with `Domain={apps domain}` from one App would reach all the
 * others. Through the edge as `serve` runs it, with real clients: undici for the exact headers a
 * browser receives, ws for a WebSocket handshake, and Chromium for what a browser then sends.
 */
import type { LookupFunction } from 'node:net';
import { chromium } from 'playwright-core';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { openServedEdge, type ServedEdge } from '../../helpers/served-edge.js';
import { backends } from '../../helpers/stores.js';

const CHROMIUM = '/usr/bin/chromium';
const APPS_DOMAIN = 'apps.portico.test';

/** Every name resolves to 127.0.0.1: clients use real names (SNI, Host) against loopback. */
const loopback: LookupFunction = (_hostname, options, callback) => {
  if (options.all) callback(null, [{ address: '127.0.0.1', family: 4 }]);
  else callback(null, '127.0.0.1', 4);
};

const setCookiePath = (cookies: string[]) =>
  `/set-cookie?${cookies.map((cookie) => `cookie=${encodeURIComponent(cookie)}`).join('&')}`;

describe.each(backends)('cookies through the edge on the $name store', (backend) => {
  let served: ServedEdge;
  let client: Agent;
  /** The rig's App's default hostname, and another organization's. */
  let own: string;
  let neighbour: string;
  const custom = `shop.cookies-${backend.name}.com`;
  const underPrivateSuffix = `docs.cookies-${backend.name}.github.io`;
  /** A customer's domain beside the apps domain: `portico.test` is above every App's hostname. */
  const besideApps = `shop-${backend.name}.portico.test`;

  beforeAll(async () => {
    served = await openServedEdge(backend);
    expect(served.rig.config.appsDomain).toBe(APPS_DOMAIN);
    for (const name of [custom, underPrivateSuffix, besideApps]) await served.activate(name);
    neighbour = await served.addTenant('cookie-neighbour');
    own = await served.defaultHostname();
    client = new Agent({ connect: { ca: served.root, lookup: loopback } });
  });
  afterAll(async () => {
    await client?.close();
    await served?.close();
  });

  /** The `Set-Cookie` headers a client receives when the origin sends `cookies` for `hostname`. */
  async function received(hostname: string, cookies: string[]): Promise<string[]> {
    const response = await request(`https://${hostname}:${served.edge.httpsPort}${setCookiePath(cookies)}`, {
      dispatcher: client,
    });
    expect(response.statusCode).toBe(200);
    await response.body.dump();
    const header = response.headers['set-cookie'];
    return header === undefined ? [] : typeof header === 'string' ? [header] : header;
  }

  it("keeps an App's cookies on its own default hostname", async () => {
    expect(
      await received(own, [
        `wide=1; Domain=${APPS_DOMAIN}; Path=/; Secure; HttpOnly`,
        'dotted=1; domain=.APPS.Portico.test; SameSite=Lax',
        `neighbour=1; Domain=${neighbour}; Path=/`,
        'parent=1; Domain=portico.test',
        'tld=1; Domain=test',
        `own=1; Domain=${own}; Path=/`,
        'plain=1; Path=/; Max-Age=60',
        `quoted="a; Domain=${APPS_DOMAIN}; b"; Path=/`,
        `last=1; Domain=${own}; Domain=${APPS_DOMAIN}`,
      ]),
    ).toEqual([
      'wide=1; Path=/; Secure; HttpOnly',
      'dotted=1; SameSite=Lax',
      'neighbour=1; Path=/',
      'parent=1',
      'tld=1',
      `own=1; Domain=${own}; Path=/`,
      'plain=1; Path=/; Max-Age=60',
      'quoted="a; b"; Path=/',
      `last=1; Domain=${own}`,
    ]);
  });

  it("keeps a customer domain's cookies within its registrable domain, never on a public suffix or the apps domain", async () => {
    const registrable = `cookies-${backend.name}.com`;
    expect(
      await received(custom, [
        `parent=1; Domain=${registrable}; Path=/`,
        `dotted=1; Domain=.${registrable}`,
        `self=1; Domain=${custom}`,
        'suffix=1; Domain=com; Path=/',
        `apps=1; Domain=${APPS_DOMAIN}`,
        `neighbour=1; Domain=${neighbour}`,
        'unrelated=1; Domain=example.com',
        `child=1; Domain=x.${custom}`,
      ]),
    ).toEqual([
      `parent=1; Domain=${registrable}; Path=/`,
      `dotted=1; Domain=.${registrable}`,
      `self=1; Domain=${custom}`,
      'suffix=1; Path=/',
      'apps=1',
      'neighbour=1',
      'unrelated=1',
      'child=1',
    ]);
    const tenantSite = `cookies-${backend.name}.github.io`;
    expect(
      await received(underPrivateSuffix, [`site=1; Domain=${tenantSite}`, 'suffix=1; Domain=github.io']),
    ).toEqual([`site=1; Domain=${tenantSite}`, 'suffix=1']);
    expect(
      await received(besideApps, [`self=1; Domain=${besideApps}`, 'above=1; Domain=portico.test; Secure']),
    ).toEqual([`self=1; Domain=${besideApps}`, 'above=1; Secure']);
  });

  it('scopes cookies set by a WebSocket handshake too', async () => {
    const url = `wss://${own}:${served.edge.httpsPort}${setCookiePath([`ws=1; Domain=${APPS_DOMAIN}; Path=/`, 'plain=1'])}`;
    const socket = new WebSocket(url, { ca: served.root, lookup: loopback });
    const [headers] = await Promise.all([
      new Promise<Record<string, unknown>>((resolve) =>
        socket.once('upgrade', (res) => resolve(res.headers)),
      ),
      new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject)),
    ]);
    socket.close();
    expect(headers['set-cookie']).toEqual(['ws=1; Path=/', 'plain=1']);
  });

  it("in a real browser, one App's cookie for the apps domain never reaches another App", async () => {
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--headless', '--disable-gpu', '--host-resolver-rules=MAP * 127.0.0.1'],
    });
    try {
      // Chromium keeps its own trust store: the local CA is not in it.
      const context = await browser.newContext({ ignoreHTTPSErrors: true });
      const page = await context.newPage();
      const port = served.edge.httpsPort;
      const visit = async (hostname: string, pathname: string) => {
        const response = await page.goto(`https://${hostname}:${port}${pathname}`);
        expect(response?.status()).toBe(200);
      };
      await visit(own, setCookiePath([`tenant=own; Domain=${APPS_DOMAIN}; Path=/; Secure`]));
      await visit(neighbour, '/seen-by-neighbour');
      await visit(own, '/seen-by-own');

      /** The cookie names the browser sent with a request (the origin's other pages set `a` and `b`). */
      const sent = (pathname: string): string[] => {
        const header = served.origin.requests.findLast((seen) => seen.url === pathname)?.headers.cookie;
        return (header ?? '').split('; ').map((pair) => pair.slice(0, pair.indexOf('=')));
      };
      expect(sent('/seen-by-neighbour')).not.toContain('tenant');
      // Still the App's own cookie, host-only.
      expect(sent('/seen-by-own')).toContain('tenant');
      const stored = (await context.cookies()).filter((cookie) => cookie.name === 'tenant');
      expect(stored.map(({ domain }) => domain)).toEqual([own]);
    } finally {
      await browser.close();
    }
  });
});
