import { X509Certificate } from 'node:crypto';
import https from 'node:https';
import acme from 'acme-client';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { batchedValues } from '../../../src/dns-server/batched-values.js';
import { type DnsListener, startDnsServer } from '../../../src/dns-server/server.js';
import { challengeLabel } from '../../../src/domain/dns-records.js';
import type { Store } from '../../../src/store/store.js';
import { startDnsServer as startTestDnsServer, type TestDnsServer } from '../../helpers/dns-server.js';
import { type Pebble, startPebble } from '../../helpers/pebble.js';
import { type Backend, backends } from '../../helpers/stores.js';

/**
 * A real CA validating DNS-01 through the dns role: Pebble's validation authority asks the role
 * itself (`-dnsserver`), for names under the zone the role serves, so no other DNS server stands
 * between them. The certificate covers the zone's apex and its wildcard, whose two challenges both
 * sit at `_acme-challenge.{zone}`: two TXT values at one name, answered together. The challenge
 * records go through the store, as an issuer on any worker writes them.
 *
 * The ACME client here is acme-client alone (Portico's issuer learns DNS-01 in issue 15, item 2).
 */

const ZONE = 'acme.pebble.test';

describe.each(backends)('Pebble validating DNS-01 through the dns role on $name', (backend) => {
  let store: Store;
  let role: DnsListener;
  let pebble: Pebble;
  const asked: string[] = [];

  beforeAll(async () => {
    store = await backend.open();
    const values = batchedValues((labels) => store.listDnsChallengeValues(labels, new Date().toISOString()));
    role = await startDnsServer({
      host: '127.0.0.1',
      port: 0,
      zone: ZONE,
      nameservers: [],
      values: (label) => {
        asked.push(label);
        return values(label);
      },
      logger: pino({ level: 'silent' }),
    });
    pebble = await startPebble({ dnsServer: `127.0.0.1:${role.port}` });
    // Pebble's own HTTPS listener is signed by a throwaway CA: acme-client's requests trust it.
    acme.axios.defaults.httpsAgent = new https.Agent({ ca: pebble.caPem });
  });

  afterAll(async () => {
    await pebble?.stop();
    await role?.close();
    await store?.close();
  });

  it('issues a certificate for the zone and its wildcard, both challenges answered at one name', async () => {
    const client = new acme.Client({
      directoryUrl: pebble.directoryUrl,
      accountKey: await acme.crypto.createPrivateEcdsaKey('P-256'),
      backoffMin: 100,
      backoffMax: 1000,
    });
    const [, csr] = await acme.crypto.createCsr(
      { commonName: ZONE, altNames: [ZONE, `*.${ZONE}`] },
      await acme.crypto.createPrivateEcdsaKey('P-256'),
    );
    const written: string[] = [];
    const certificate = await client.auto({
      csr,
      termsOfServiceAgreed: true,
      challengePriority: ['dns-01'],
      // acme-client's own pre-check asks the system's resolver, which knows nothing of this zone.
      skipChallengeVerification: true,
      challengeCreateFn: async (_authz, _challenge, value) => {
        // For DNS-01 acme-client hands over the TXT value itself: base64url(SHA-256(key authorization)).
        written.push(value);
        const now = new Date();
        const expiresAt = new Date(now.getTime() + 600_000).toISOString();
        await store.putDnsChallenge({
          label: '_acme-challenge',
          value,
          domainId: null,
          createdAt: now.toISOString(),
          expiresAt,
        });
      },
      challengeRemoveFn: async (_authz, _challenge, value) => {
        await store.removeDnsChallenge('_acme-challenge', value);
      },
    });

    expect(written).toHaveLength(2);
    expect(new Set(written).size).toBe(2);
    const leaf = new X509Certificate(certificate);
    expect(leaf.subjectAltName?.split(', ').sort()).toEqual([`DNS:*.${ZONE}`, `DNS:${ZONE}`]);
    // Pebble asked the role, and the role asked the store, for the challenge's label.
    expect(asked).toContain('_acme-challenge');
    // Removed once validated, as an issuer cleans up.
    expect(await store.listDnsChallengeValues(['_acme-challenge'], new Date().toISOString())).toEqual([]);
  });
});

// The store's part is shown above on both stores; this shows the DNS path, on SQLite.
const sqlite = backends.find((backend) => backend.name === 'sqlite') as Backend;

describe('Pebble validating a delegated DNS-01 challenge: the customer’s CNAME into the zone', () => {
  let store: Store;
  let role: DnsListener;
  let customerDns: TestDnsServer;
  let pebble: Pebble;

  beforeAll(async () => {
    store = await sqlite.open();
    role = await startDnsServer({
      host: '127.0.0.1',
      port: 0,
      zone: ZONE,
      nameservers: [],
      values: batchedValues((labels) => store.listDnsChallengeValues(labels, new Date().toISOString())),
      logger: pino({ level: 'silent' }),
    });
    // The customer's DNS, and the resolver Pebble asks: it follows the delegation of the challenge
    // zone to the role, as the internet's resolvers follow the platform's NS records.
    customerDns = await startTestDnsServer();
    customerDns.delegate(ZONE, `127.0.0.1:${role.port}`);
    pebble = await startPebble({ dnsServer: customerDns.address });
    acme.axios.defaults.httpsAgent = new https.Agent({ ca: pebble.caPem });
  });

  afterAll(async () => {
    await pebble?.stop();
    await customerDns?.close();
    await role?.close();
    await store?.close();
  });

  it('issues for the customer’s name, with the challenge answered at the claim’s label through the CNAME', async () => {
    const name = 'shop.customer.test';
    const label = challengeLabel('org_customer', name);
    customerDns.zone('customer.test');
    customerDns.set(`_acme-challenge.${name}`, 'CNAME', `${label}.${ZONE}`);
    // The name itself points elsewhere (not at any edge): DNS-01 does not care.
    customerDns.set(name, 'A', '192.0.2.10');

    const client = new acme.Client({
      directoryUrl: pebble.directoryUrl,
      accountKey: await acme.crypto.createPrivateEcdsaKey('P-256'),
      backoffMin: 100,
      backoffMax: 1000,
    });
    const [, csr] = await acme.crypto.createCsr(
      { commonName: name, altNames: [name] },
      await acme.crypto.createPrivateEcdsaKey('P-256'),
    );
    const certificate = await client.auto({
      csr,
      termsOfServiceAgreed: true,
      challengePriority: ['dns-01'],
      skipChallengeVerification: true,
      challengeCreateFn: async (_authz, _challenge, value) => {
        const now = new Date();
        await store.putDnsChallenge({
          label,
          value,
          domainId: null,
          createdAt: now.toISOString(),
          expiresAt: new Date(now.getTime() + 600_000).toISOString(),
        });
      },
      challengeRemoveFn: async (_authz, _challenge, value) => store.removeDnsChallenge(label, value),
    });
    expect(new X509Certificate(certificate).subjectAltName).toBe(`DNS:${name}`);
    // Pebble asked the customer's DNS for the challenge, which followed the CNAME to the role.
    expect(customerDns.queriesFor(`_acme-challenge.${name}`, 'TXT')).toBeGreaterThan(0);
  });
});
