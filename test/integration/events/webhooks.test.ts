import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SIGNATURE_HEADER, verifySignature } from '../../../src/events/webhooks.js';
import type { Store } from '../../../src/store/store.js';
import { openCertificateRig } from '../../helpers/certificates.js';
import { startDnsServer, type TestDnsServer } from '../../helpers/dns-server.js';
import { backends } from '../../helpers/stores.js';

interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
  answered: number;
}

/** A real HTTP receiver that answers each request with the next status of `script` (then 200). */
async function startReceiver(script: number[]) {
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => {
      const status = script.shift() ?? 200;
      received.push({ headers: req.headers, body, answered: status });
      res.writeHead(status).end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/portico`,
    received,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

describe.each(backends)('webhooks on $name', (backend) => {
  let store: Store;
  let dns: TestDnsServer;
  let rig: Awaited<ReturnType<typeof openCertificateRig>>;

  beforeAll(async () => {
    store = await backend.open();
    dns = await startDnsServer();
    rig = await openCertificateRig(store, dns, { PORTICO_ALLOW_PRIVATE_ORIGINS: '1' });
  });
  afterAll(async () => {
    await rig.api.close();
    await dns.close();
    await store.close();
  });

  it('delivers each status change, signed, retrying a failing receiver until it takes the event once', async () => {
    const receiver = await startReceiver([500, 503]);
    const created = await rig.api.call(rig.key, 'POST', '/v1/webhooks', {
      url: receiver.url,
      events: ['domain.verified'],
    });
    expect(created.statusCode).toBe(200);
    const { webhook_id: id, secret } = created.json();
    expect(secret).toMatch(/^whsec_/);
    // The secret is shown once: reading the webhook again does not reveal it.
    expect((await rig.api.call(rig.key, 'GET', `/v1/webhooks/${id}`)).json().secret).toBeUndefined();

    const name = `hooked.webhooks-${backend.name}.com`;
    await rig.addVerified(name);
    await rig.drain(); // attempt 1: 500
    rig.clock.advance(10);
    await rig.drain(); // attempt 2: 503
    rig.clock.advance(60);
    await rig.drain(); // attempt 3: 200
    rig.clock.advance(86_400);
    await rig.drain(); // nothing more: it was taken

    expect(receiver.received.map((r) => r.answered)).toEqual([500, 503, 200]);
    const accepted = receiver.received.filter((r) => r.answered === 200);
    expect(accepted).toHaveLength(1);
    const [delivery] = accepted;
    if (!delivery) throw new Error('not delivered');
    const event = JSON.parse(delivery.body);
    expect(event).toMatchObject({ type: 'domain.verified', data: { domain: name, status: 'verified' } });
    expect(event.id).toMatch(/^evt_/);
    expect(delivery.headers['portico-event']).toBe('domain.verified');
    // The signature verifies with the secret, over exactly these bytes, and not over others.
    const signature = String(delivery.headers[SIGNATURE_HEADER]);
    const now = Math.floor(rig.clock.now().getTime() / 1000);
    expect(verifySignature(secret, signature, delivery.body, Number(/t=(\d+)/.exec(signature)?.[1]))).toBe(
      true,
    );
    expect(verifySignature(secret, signature, delivery.body.replace('verified', 'moved'), now)).toBe(false);
    expect(verifySignature('whsec_wrong', signature, delivery.body, now)).toBe(false);

    const log = (await rig.api.call(rig.key, 'GET', `/v1/webhooks/${id}/deliveries`)).json();
    expect(log.results).toHaveLength(1);
    expect(log.results[0]).toMatchObject({
      event_type: 'domain.verified',
      status: 'delivered',
      attempts: 3,
      response_status: 200,
      last_error: null,
    });
    await receiver.close();
  });

  it('subscribes to every event type by default', async () => {
    const receiver = await startReceiver([]);
    const { webhook_id: id } = (
      await rig.api.call(rig.key, 'POST', '/v1/webhooks', { url: receiver.url })
    ).json();
    const name = `all.webhooks-${backend.name}.com`;
    await rig.addVerified(name);
    await rig.drain();
    await rig.drain();
    const types = receiver.received
      .map((r) => JSON.parse(r.body))
      .filter((e) => e.data.domain === name)
      .map((e) => e.type);
    expect(types.sort()).toEqual(['certificate.issued', 'domain.active', 'domain.verified']);
    await rig.api.call(rig.key, 'DELETE', `/v1/webhooks/${id}`);
    await receiver.close();
  });

  it('refuses bad URLs and unknown event types, and hides other organizations’ webhooks', async () => {
    const bad = [
      [{ url: 'ftp://example.com/hook' }, 'webhook_url_invalid'],
      [{ url: 'https://example.com/hook', events: ['domain.exploded'] }, 'webhook_event_unknown'],
    ] as const;
    for (const [body, code] of bad) {
      const response = await rig.api.call(rig.key, 'POST', '/v1/webhooks', body);
      expect(response.statusCode).toBe(400);
      expect(response.json().error.code).toBe(code);
    }
    const { webhook_id: id } = (
      await rig.api.call(rig.key, 'POST', '/v1/webhooks', { url: 'https://example.com/hook' })
    ).json();
    const stranger = await rig.api.keyFor('stranger-org');
    expect((await rig.api.call(stranger, 'GET', `/v1/webhooks/${id}`)).statusCode).toBe(404);
    expect((await rig.api.call(stranger, 'DELETE', `/v1/webhooks/${id}`)).statusCode).toBe(404);
    expect((await rig.api.call(stranger, 'GET', '/v1/webhooks')).json().results).toEqual([]);
  });
});
