import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LIVE_STATUSES } from '../../../src/domain/lifecycle.js';
import { routingProof } from '../../../src/domain/routing-proof.js';
import { StoreRoutingProofs } from '../../../src/edge/store-sources.js';
import { createTestApp } from '../../helpers/api.js';
import { type NamedOrigin, startNamedOrigin, visit, visitRefused } from '../../helpers/https-visit.js';
import { openServedEdge, type ServedEdge } from '../../helpers/served-edge.js';
import { backends } from '../../helpers/stores.js';
import { waitUntil } from '../../helpers/wait.js';

const ZONE = 'acme-challenges.portico.test';
/** A name one label under `base`, new each time: nothing can have cached it. */
const randomName = (base: string) => `${randomBytes(6).toString('hex')}.${base}`;

/**
 * Wildcard claims at the edge (issue 15 item 5), as `serve` runs it with the local CA (which makes
 * wildcard certificates without a CA to ask; the same with Pebble over DNS-01 is
 * test/integration/acme/wildcard-dns-01.test.ts): the edge serves every name one label under a
 * served `*.{base}` from its certificate and App, nothing deeper and not the base itself; an exact
 * claim of another organization beats it on its own name; removing either is seen at once, through
 * the store's change feed (LISTEN/NOTIFY on PostgreSQL, where the edge has its own connection).
 */
describe.each(backends)('wildcard claims at the edge ($name)', (backend) => {
  let served: ServedEdge;
  let wildcardOrigin: NamedOrigin;
  let exactOrigin: NamedOrigin;
  const base = `wild-${backend.name}.com`;
  const wildcard = `*.${base}`;

  beforeAll(async () => {
    served = await openServedEdge(backend, {
      env: { PORTICO_ACME_CHALLENGE: 'dns-01', PORTICO_ACME_DNS_ZONE: ZONE },
    });
    wildcardOrigin = await startNamedOrigin('wildcard');
    exactOrigin = await startNamedOrigin('exact');
    const { rig } = served;
    const patched = await rig.api.call(rig.key, 'PATCH', `/v1/apps/${rig.appId}`, {
      origin_url: wildcardOrigin.url,
    });
    expect(patched.statusCode, patched.body).toBe(200);
  });
  afterAll(async () => {
    await served?.close();
    await wildcardOrigin?.close();
    await exactOrigin?.close();
  });

  const get = (name: string) => visit(served.edge.httpsPort, name, served.root);
  const refused = (name: string) => visitRefused(served.edge.httpsPort, name, served.root);
  const add = (domain: string) =>
    served.rig.api.call(served.rig.key, 'POST', `/v1/apps/${served.rig.appId}/domains`, { domain });

  it('refuses a public suffix’s wildcard and a misplaced "*", even with DNS-01', async () => {
    for (const [domain, code] of [
      ['*.com', 'domain_is_public_suffix'],
      ['*.co.uk', 'domain_is_public_suffix'],
      [`a.*.${base}`, 'domain_invalid'],
      [`*foo.${base}`, 'domain_invalid'],
    ] as const) {
      const answer = await add(domain);
      expect(answer.statusCode, domain).toBe(400);
      expect(answer.json().error.code, domain).toBe(code);
    }
  });

  it('claims *.{base} by records at its base, and serves each name one label under it from its certificate', async () => {
    const { rig, dns } = served;
    const added = await add(wildcard);
    expect(added.statusCode, added.body).toBe(200);
    const records: { type: string; name: string; value: string; purpose: string }[] =
      added.json().dns_records;
    expect(records.map(({ type, name, purpose }) => ({ type, name, purpose }))).toEqual([
      { type: 'TXT', name: `_mixpeek-verify.${base}`, purpose: 'ownership' },
      { type: 'CNAME', name: wildcard, purpose: 'routing' },
      { type: 'CNAME', name: `_acme-challenge.${base}`, purpose: 'certificate' },
    ]);
    // Nothing is served before the claim is (and the edge remembers that for 5 s).
    const early = randomName(base);
    expect(await refused(early)).toBe(true);

    const [ownership, routing, delegation] = records;
    dns.add(ownership?.name as string, 'TXT', ownership?.value as string);
    dns.set(wildcard, 'CNAME', routing?.value as string);
    dns.set(routing?.value as string, 'A', '127.0.0.1');
    dns.set(delegation?.name as string, 'CNAME', delegation?.value as string);
    const verified = await rig.api.call(rig.key, 'POST', `/v1/apps/${rig.appId}/domains/${wildcard}/verify`);
    expect(verified.json().status, verified.body).toBe('verified');
    // Routing was asked at a random name under the base, which the wildcard record answered.
    expect(verified.json().routing).toMatchObject({ ok: true, observed: [`CNAME ${routing?.value}`] });
    const routingQueries = dns.queries.filter((q) => q.type === 'CNAME' && !q.name.startsWith('_'));
    const asked = routingQueries.filter((q) => q.name.endsWith(`.${base}`)).map((q) => q.name);
    expect(asked.length).toBeGreaterThan(0);
    for (const name of asked)
      expect(name).toMatch(new RegExp(`^[a-z2-7]{16}\\.${base.replaceAll('.', '\\.')}$`));
    expect(dns.queriesFor(`_mixpeek-verify.${base}`, 'TXT')).toBeGreaterThan(0);
    await rig.drain();
    const active = await rig.read(wildcard);
    expect(active.status).toBe('active');
    expect(active.certificate?.status).toBe('issued');
    expect(active.url).toBeUndefined();

    for (let i = 0; i < 10; i++) {
      const name = randomName(base);
      const answer = await get(name);
      expect(answer.status, name).toBe(200);
      expect(answer.subjectAltName).toBe(`DNS:${wildcard}`);
      expect(JSON.parse(answer.body)).toEqual({ origin: 'wildcard', host: name });
    }
    // The wildcard, its base and a name under it are three names: each may be claimed beside it,
    // and the wildcard itself only once.
    for (const name of [base, `www.${base}`]) {
      expect((await add(name)).statusCode, name).toBe(200);
      const removed = await rig.api.call(rig.key, 'DELETE', `/v1/apps/${rig.appId}/domains/${name}`);
      expect(removed.statusCode).toBe(200);
    }
    expect((await add(wildcard)).json().error.code).toBe('domain_already_added');

    // The name refused before was forgotten when the wildcard became served, not 5 s later.
    expect((await get(early)).status).toBe(200);
    // One label only, and not the base itself: no handshake at all.
    expect(await refused(`a.b.${base}`)).toBe(true);
    expect(await refused(base)).toBe(true);
  });

  it('lets an exact claim of another organization win on its own name, and hands the name back when it leaves', async () => {
    const { rig } = served;
    const shop = `shop.${base}`;
    // Served by the wildcard (and cached so) until the exact claim is.
    expect(JSON.parse((await get(shop)).body).origin).toBe('wildcard');

    const key = await rig.api.keyFor('exact-org');
    const appId = await createTestApp(rig.api, key);
    await rig.api.call(key, 'PATCH', `/v1/apps/${appId}`, { origin_url: exactOrigin.url });
    await rig.addVerified(shop, '127.0.0.1', { key, appId });
    await rig.drain();
    expect((await rig.read(shop, { key, appId })).status).toBe('active');

    await waitUntil(async () => JSON.parse((await get(shop)).body).origin === 'exact');
    const exact = await get(shop);
    expect(exact.subjectAltName).toBe(`DNS:${shop}`);
    expect(JSON.parse(exact.body)).toEqual({ origin: 'exact', host: shop });
    // Every other name under the base is still the wildcard's.
    const other = await get(randomName(base));
    expect(other.subjectAltName).toBe(`DNS:${wildcard}`);

    // Routing proofs (a claim behind the customer's CDN) follow the same rule: a name's own claim,
    // else the wildcard one label above it, each proving the very name asked.
    const key32 = randomBytes(32);
    const proofs = new StoreRoutingProofs(served.store, key32);
    const [exactClaim, wildcardClaim] = await Promise.all([
      served.store.findDomainInStatus(shop, LIVE_STATUSES),
      served.store.findDomainInStatus(wildcard, LIVE_STATUSES),
    ]);
    const nonce = randomBytes(24).toString('base64url');
    expect(await proofs.proof(shop, nonce)).toBe(routingProof(key32, exactClaim?.id as string, shop, nonce));
    const under = randomName(base);
    expect(await proofs.proof(under, nonce)).toBe(
      routingProof(key32, wildcardClaim?.id as string, under, nonce),
    );
    for (const name of [`a.b.${base}`, base, wildcard])
      expect(await proofs.proof(name, nonce)).toBeUndefined();

    const removed = await rig.api.call(key, 'DELETE', `/v1/apps/${appId}/domains/${shop}`);
    expect(removed.statusCode, removed.body).toBe(200);
    await waitUntil(async () => (await get(shop)).subjectAltName === `DNS:${wildcard}`);
    expect(JSON.parse((await get(shop)).body)).toEqual({ origin: 'wildcard', host: shop });
  });

  it('stops serving every name under a removed wildcard within the 5 s the edge takes for an exact name', async () => {
    const { rig } = served;
    // Names the edge has cached as served, for its whole 10-minute lifetime unless told otherwise.
    const names = [randomName(base), randomName(base), randomName(base)];
    for (const name of names) expect((await get(name)).status).toBe(200);
    const removed = await rig.api.call(rig.key, 'DELETE', `/v1/apps/${rig.appId}/domains/${wildcard}`);
    expect(removed.statusCode, removed.body).toBe(200);
    const started = Date.now();
    for (const name of names) await waitUntil(() => refused(name));
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});
