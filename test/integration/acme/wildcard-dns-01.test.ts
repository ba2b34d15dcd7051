import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHALLENGE_ZONE, type DelegatedDns01, startDelegatedDns01 } from '../../helpers/delegated-dns01.js';
import { type NamedOrigin, startNamedOrigin, visit, visitRefused } from '../../helpers/https-visit.js';
import { createProcessState, type ProcessState, runPortico } from '../../helpers/process.js';
import { backends } from '../../helpers/stores.js';
import { waitUntil } from '../../helpers/wait.js';

const KEY = 'pk_wildcard_dns01_test_0123456789abcdef00';
const BASE = 'acme.com';
const WILDCARD = `*.${BASE}`;

interface DnsRecord {
  type: 'TXT' | 'CNAME';
  name: string;
  value: string;
  purpose: string;
}

/**
 * A wildcard claim end to end (issue 15 item 5), as `portico serve` runs it with the `dns` role on
 * each store: `*.acme.com` is added, proven at `_mixpeek-verify.acme.com`, its certificate ordered
 * from Pebble for the identifier `*.acme.com` over the delegated DNS-01 challenge (no connection
 * to the edge: Pebble's other challenge ports are a tripwire), and 100 random names under it are
 * then served over HTTPS with that certificate, by the wildcard's App; deeper names and the base
 * are not. An exact claim of another organization on `shop.acme.com` then beats it on that name,
 * with its own certificate and App.
 */
describe.each(backends)('a wildcard issued by Pebble over delegated DNS-01 ($name)', (backend) => {
  let state: ProcessState;
  /** The store's place, and on PostgreSQL the key every node seals certificates' private keys with. */
  let env: Record<string, string>;
  let setup: DelegatedDns01;
  let wildcardOrigin: NamedOrigin;
  let exactOrigin: NamedOrigin;
  let root: string;
  let edgePort = 0;

  beforeAll(async () => {
    state = await createProcessState(backend.name, 'portico-wildcard-');
    env = { ...state.env, PORTICO_ENCRYPTION_KEY: Buffer.alloc(32, 15).toString('base64') };
    wildcardOrigin = await startNamedOrigin('wildcard');
    exactOrigin = await startNamedOrigin('exact');
    setup = await startDelegatedDns01({ PORTICO_BOOTSTRAP_KEY: KEY, ...env });
    edgePort = await setup.portico.process.edgeHttpsPort();
    root = await setup.pebble.rootPem();
  });
  afterAll(async () => {
    await setup?.close();
    await state?.remove();
    await wildcardOrigin?.close();
    await exactOrigin?.close();
  });

  const call = (key: string, method: string, pathname: string, body?: unknown) =>
    setup.portico.call(key, method, pathname, body);
  const createApp = async (key: string, slug: string, originUrl: string): Promise<string> => {
    const app = await call(key, 'POST', '/v1/apps', { slug, meta: { title: slug }, origin_url: originUrl });
    expect(app.status, JSON.stringify(app.body)).toBe(200);
    return app.body.app_id;
  };
  /** Creates a claim's records in the customer's zone: ownership, routing (at the edge), delegation. */
  const createRecords = (records: DnsRecord[]) => {
    for (const record of records) setup.dns.add(record.name, record.type, record.value);
  };
  const waitForActive = (key: string, path: string) =>
    waitUntil(async () => {
      const domain = (await call(key, 'GET', path)).body;
      if (domain.certificate?.status === 'failed' || domain.certificate?.last_error) {
        throw new Error(`issuance failed: ${JSON.stringify(domain.certificate)}\n${setup.pebble.output()}`);
      }
      return domain.status === 'active';
    }, 200);
  const randomName = () => `${randomBytes(6).toString('hex')}.${BASE}`;

  it('issues *.acme.com over DNS-01 alone and serves 100 random names under it; not a.b.acme.com, not acme.com', async () => {
    const appId = await createApp(KEY, `wild-${backend.name}`, wildcardOrigin.url);
    const added = await call(KEY, 'POST', `/v1/apps/${appId}/domains`, { domain: WILDCARD });
    expect(added.status, JSON.stringify(added.body)).toBe(200);
    const records: DnsRecord[] = added.body.dns_records;
    expect(records).toEqual([
      {
        type: 'TXT',
        name: `_mixpeek-verify.${BASE}`,
        value: `mixpeek-site-verification=${added.body.verification_token}`,
        purpose: 'ownership',
      },
      { type: 'CNAME', name: WILDCARD, value: added.body.cname_target, purpose: 'routing' },
      {
        type: 'CNAME',
        name: `_acme-challenge.${BASE}`,
        value: expect.stringMatching(new RegExp(`^[a-z2-7]{20}\\.${CHALLENGE_ZONE.replaceAll('.', '\\.')}$`)),
        purpose: 'certificate',
      },
    ]);
    createRecords(records);
    setup.dns.set(added.body.cname_target, 'A', '127.0.0.1');

    // `portico domains check` reads and checks the wildcard's three records like any claim's.
    const check = await runPortico(
      ['domains', 'check', `wild-${backend.name}`, WILDCARD, '--dns', setup.dns.address, '--json'],
      { PORTICO_URL: setup.portico.url, PORTICO_API_KEY: KEY },
    );
    const checked: { purpose: string; name: string; ok: boolean }[] = JSON.parse(check.stdout).records;
    expect(checked.filter((r) => r.purpose !== 'caa')).toEqual([
      expect.objectContaining({ purpose: 'ownership', name: `_mixpeek-verify.${BASE}`, ok: true }),
      expect.objectContaining({ purpose: 'routing', name: WILDCARD, ok: true }),
      expect.objectContaining({ purpose: 'certificate', name: `_acme-challenge.${BASE}`, ok: true }),
    ]);

    const path = `/v1/apps/${appId}/domains/${WILDCARD}`;
    const verified = await call(KEY, 'POST', `${path}/verify`);
    expect(verified.body.status, JSON.stringify(verified.body)).toBe('verified');
    expect(verified.body.routing).toMatchObject({ ok: true });
    await waitForActive(KEY, path);
    expect((await call(KEY, 'GET', path)).body.certificate).toMatchObject({
      status: 'issued',
      issuer: setup.pebble.directoryUrl,
    });
    // The CA validated by DNS-01 alone (it offers nothing else for a wildcard) and never reached for the edge.
    expect(setup.tripwire.connections()).toBe(0);

    const names = Array.from({ length: 100 }, randomName);
    expect(new Set(names).size).toBe(100);
    // Ten at a time: a hundred handshakes at once would measure the machine, not the edge.
    for (let i = 0; i < names.length; i += 10) {
      const visits = await Promise.all(names.slice(i, i + 10).map((name) => visit(edgePort, name, root)));
      visits.forEach((answer, j) => {
        const name = names[i + j];
        expect(answer.status, name).toBe(200);
        expect(answer.subjectAltName, name).toBe(`DNS:${WILDCARD}`);
        expect(JSON.parse(answer.body), name).toEqual({ origin: 'wildcard', host: name });
      });
    }
    expect(await visitRefused(edgePort, `a.b.${BASE}`, root)).toBe(true);
    expect(await visitRefused(edgePort, BASE, root)).toBe(true);
  });

  it('serves an exact claim of another organization on its own name, with its own certificate and App', async () => {
    const made = await runPortico(['keys', 'create', '--org', 'exact-org'], env);
    expect(made.code, made.stderr).toBe(0);
    const key = made.stdout.trim();
    const shop = `shop.${BASE}`;
    expect(JSON.parse((await visit(edgePort, shop, root)).body).origin).toBe('wildcard');

    const appId = await createApp(key, `exact-${backend.name}`, exactOrigin.url);
    const added = await call(key, 'POST', `/v1/apps/${appId}/domains`, { domain: shop });
    expect(added.status, JSON.stringify(added.body)).toBe(200);
    const records: DnsRecord[] = added.body.dns_records;
    expect(records.map((r) => r.name)).toEqual([`_mixpeek-verify.${shop}`, shop, `_acme-challenge.${shop}`]);
    createRecords(records);
    const path = `/v1/apps/${appId}/domains/${shop}`;
    expect((await call(key, 'POST', `${path}/verify`)).body.status).toBe('verified');
    await waitForActive(key, path);

    await waitUntil(async () => (await visit(edgePort, shop, root)).subjectAltName === `DNS:${shop}`);
    expect(JSON.parse((await visit(edgePort, shop, root)).body)).toEqual({ origin: 'exact', host: shop });
    const other = randomName();
    const beside = await visit(edgePort, other, root);
    expect(beside.subjectAltName).toBe(`DNS:${WILDCARD}`);
    expect(JSON.parse(beside.body)).toEqual({ origin: 'wildcard', host: other });
    expect(setup.tripwire.connections()).toBe(0);
  });
});
