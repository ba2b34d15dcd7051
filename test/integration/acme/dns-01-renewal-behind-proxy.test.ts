import { X509Certificate } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renewJobKey } from '../../../src/acme/certificates.js';
import type { DnsListener } from '../../../src/dns-server/server.js';
import { startDnsRole } from '../../../src/roles.js';
import {
  type Dns01Ca,
  httpsGet,
  loopbackAddress,
  publishDelegatedDomain,
  startDns01Ca,
} from '../../helpers/delegated-dns01.js';
import { openServedEdge, type ServedEdge } from '../../helpers/served-edge.js';
import { type StandInProxy, startStandInProxy } from '../../helpers/stand-in-proxy.js';
import { backends } from '../../helpers/stores.js';

const ZONE = 'acme-challenges.portico.test';

/**
 * A renewal while the name points at the customer's own proxy (issue 15, item 3: "renewals of a
 * delegated domain use DNS-01, so they succeed while the domain points through a proxy"). The
 * customer's DNS gives the proxy's address for the name (nginx on a loopback address of its own,
 * forwarding to the edge and verifying its certificate, as a CDN in "full (strict)" mode does); the
 * `_acme-challenge` CNAME delegates to Portico's dns role. The edge, the API, the worker and the dns
 * role run in this process on one store, with the clock the test moves (test/helpers/clock.ts):
 * the renewal comes when the clock reaches the certificate's `renewAt`, as it does in production,
 * weeks before expiry. Pebble's HTTP-01 and TLS-ALPN-01 port at the proxy's address is a tripwire:
 * a CA validating another way than DNS-01 would connect there.
 */
describe.each(backends)(
  'a delegated domain behind a stand-in proxy, renewed over DNS-01, on $name',
  (backend) => {
    const domain = `shop.behind-proxy-${backend.name}.com`;
    const proxyAddress = loopbackAddress();
    let ca: Dns01Ca;
    let served: ServedEdge;
    let dnsRole: DnsListener;
    let proxy: StandInProxy;
    let root = '';

    beforeAll(async () => {
      ca = await startDns01Ca({ tripwireHost: proxyAddress });
      served = await openServedEdge(backend, {
        dns: ca.dns,
        env: {
          PORTICO_TLS_ISSUER: 'acme',
          PORTICO_ACME_DIRECTORY: ca.pebble.directoryUrl,
          PORTICO_ACME_CA_FILE: ca.pebble.caFile,
          PORTICO_ACME_CHALLENGE: 'dns-01,http-01',
          PORTICO_ACME_DNS_ZONE: ZONE,
          PORTICO_DNS_LISTEN: '127.0.0.1:0',
        },
      });
      const { config, clock } = served.rig;
      dnsRole = await startDnsRole({ config, store: served.store, clock, logger: pino({ level: 'silent' }) });
      ca.dns.delegate(ZONE, `127.0.0.1:${dnsRole.port}`);
      root = await ca.pebble.rootPem();
      proxy = await startStandInProxy({
        address: proxyAddress,
        edgeHttpPort: served.edge.httpPort,
        edgeHttpsPort: served.edge.httpsPort,
        trustedCaPem: root,
      });
    });

    afterAll(async () => {
      await proxy?.close();
      await dnsRole?.close();
      await served?.close();
      await ca?.close();
    });

    /** The certificate the edge presents for the name, on a handshake of its own. */
    const presented = async () =>
      (await httpsGet({ host: '127.0.0.1', port: served.edge.httpsPort, servername: domain, ca: root }))
        .certificate.serialNumber;
    const stored = async () => {
      const record = await served.store.findCertificate(domain);
      if (!record?.certificatePem || !record.renewAt) throw new Error(`no certificate for ${domain}`);
      return {
        renewAt: record.renewAt,
        notAfter: record.notAfter ?? '',
        serial: new X509Certificate(record.certificatePem).serialNumber,
      };
    };

    it('issues over DNS-01 while the name points at the proxy, then renews the same way, served throughout', async () => {
      const { rig } = served;
      const added = (await rig.api.call(rig.key, 'POST', `/v1/apps/${rig.appId}/domains`, { domain })).json();
      publishDelegatedDomain(ca.dns, added, proxyAddress);
      const verified = (
        await rig.api.call(rig.key, 'POST', `/v1/apps/${rig.appId}/domains/${domain}/verify`)
      ).json();
      expect(verified.status, JSON.stringify(verified)).toBe('verified');
      await rig.drain();
      expect(await rig.read(domain)).toMatchObject({
        status: 'active',
        certificate: { status: 'issued', issuer: ca.pebble.directoryUrl },
      });

      const first = await stored();
      expect(await presented()).toBe(first.serial);
      const before = await proxy.get(domain);
      expect(before.status, `${before.body}\n${proxy.errors()}`).toBe(200);
      expect(JSON.parse(before.body)).toMatchObject({ url: '/', headers: { 'x-forwarded-host': domain } });
      expect(await served.store.findJob(renewJobKey(domain))).toMatchObject({ runAt: first.renewAt });

      // Time passes up to the renewal (two thirds of the lifetime, a third left), as the test clock
      // moves it; the worker finds the renewal due. Visitors keep coming through the proxy meanwhile.
      ca.dns.resetQueries();
      rig.clock.advance((Date.parse(first.renewAt) - rig.clock.now().getTime()) / 1000);
      const statuses: number[] = [];
      let renewing = true;
      const visitors = (async () => {
        while (renewing) {
          // A failed visit is a status 0 in the list (the assertion below shows it), not a rejection
          // nobody awaits until the renewal is done.
          const answer = await proxy.get(domain).catch(() => ({ status: 0 }));
          statuses.push(answer.status);
          // A visitor every 50 ms: traffic all through the renewal, without a loop of full TLS
          // handshakes (nginx to the edge) taking the CPU the renewal needs on a loaded machine.
          await sleep(50);
        }
      })();
      try {
        await rig.drain();
      } finally {
        renewing = false;
        await visitors;
      }

      const second = await stored();
      expect(second.serial).not.toBe(first.serial);
      expect(Date.parse(second.notAfter)).toBeGreaterThan(Date.parse(first.notAfter));
      expect(rig.events).toContainEqual({ hostname: domain, event: 'certificate.renewed' });
      // Over DNS-01: the CA looked the challenge up (through the delegation into the dns role), and
      // never connected to the name's address for HTTP-01 or TLS-ALPN-01.
      // (It failed once on CI with no such query: what the server did receive says more next time.)
      const received = ca.dns.queries.map((query) => `${query.name} ${query.type}`);
      expect(ca.dns.queriesFor(`_acme-challenge.${domain}`, 'TXT'), received.join(', ')).toBeGreaterThan(0);
      expect(ca.tripwire.connections()).toBe(0);

      // Served throughout, and from the new certificate from then on, straight and through the proxy.
      expect(statuses.length).toBeGreaterThan(0);
      expect(statuses.filter((status) => status !== 200)).toEqual([]);
      expect((await rig.read(domain)).status).toBe('active');
      expect(await presented()).toBe(second.serial);
      const after = await proxy.get(domain);
      expect(after.status, `${after.body}\n${proxy.errors()}`).toBe(200);
    });
  },
);
