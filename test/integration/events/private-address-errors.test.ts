import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../../../src/store/store.js';
import { openCertificateRig } from '../../helpers/certificates.js';
import { startDnsServer, type TestDnsServer } from '../../helpers/dns-server.js';
import { backends } from '../../helpers/stores.js';

/** Any IPv4 or IPv6 address written out. */
const ANY_ADDRESS = /\d+\.\d+\.\d+\.\d+|[0-9a-f]*:[0-9a-f]*:[0-9a-f:]*/i;

/**
 * What a tenant reads when the guard refuses an address: that it is not allowed, never the address
 * a name resolved to (that would map the platform's internal names for them). The webhook's URL is
 * a name resolving to loopback, registered while the operator allowed private addresses; the
 * operator then turned that off (the shipped default), and the next delivery is refused at
 * connect time. Its `last_error` is what the deliveries API shows the tenant.
 */
describe.each(backends)('errors a tenant reads about refused addresses, on $name', (backend) => {
  let store: Store;
  let dns: TestDnsServer;
  let permissive: Awaited<ReturnType<typeof openCertificateRig>>;
  let defaults: Awaited<ReturnType<typeof openCertificateRig>>;

  beforeAll(async () => {
    store = await backend.open();
    dns = await startDnsServer();
    permissive = await openCertificateRig(store, dns, { PORTICO_ALLOW_PRIVATE_ORIGINS: '1' });
    defaults = await openCertificateRig(store, dns);
  });
  afterAll(async () => {
    await permissive?.api.close();
    await defaults?.api.close();
    await dns?.close();
    await store?.close();
  });

  it('a webhook delivery refused at connect time says the address is not allowed, not what it is', async () => {
    let received = 0;
    const receiver = http.createServer((_req, res) => {
      received += 1;
      res.end();
    });
    receiver.listen(0, '127.0.0.1');
    await once(receiver, 'listening');
    const url = `http://localhost:${(receiver.address() as AddressInfo).port}/hook`;

    // Refused at registration under the defaults; taken while private addresses were allowed.
    const refused = await defaults.api.call(defaults.key, 'POST', '/v1/webhooks', { url });
    expect(refused.statusCode).toBe(400);
    expect(refused.json().error.code).toBe('webhook_url_private');
    const created = await permissive.api.call(permissive.key, 'POST', '/v1/webhooks', {
      url,
      events: ['domain.verified'],
    });
    expect(created.statusCode).toBe(200);
    const { webhook_id: id } = created.json();

    await defaults.addVerified(`hooked.private-errors-${backend.name}.com`);
    await defaults.drain();

    const log = (await defaults.api.call(defaults.key, 'GET', `/v1/webhooks/${id}/deliveries`)).json();
    expect(log.results).toHaveLength(1);
    const [delivery] = log.results;
    expect(delivery).toMatchObject({ status: 'pending', attempts: 1, response_status: null });
    expect(delivery.last_error).toContain('localhost is not allowed');
    expect(delivery.last_error).not.toMatch(ANY_ADDRESS);
    expect(received).toBe(0);

    receiver.close();
    await once(receiver, 'close');
  });
});
