import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../../../src/store/store.js';
import { openCertificateRig } from '../../helpers/certificates.js';
import { startDnsServer, type TestDnsServer } from '../../helpers/dns-server.js';
import { startOrigin, type TestOrigin } from '../../helpers/origin.js';
import { freePort } from '../../helpers/pebble.js';
import { backends } from '../../helpers/stores.js';
import { waitUntil } from '../../helpers/wait.js';

const backend = backends[0];
if (!backend) throw new Error('no store backend');

/** Completes a TLS handshake with Caddy for `servername`; answers whether it succeeded. */
function handshake(port: number, servername: string): Promise<boolean> {
  return new Promise((resolve) => {
    // Caddy's internal CA signs these; what is tested is whether Caddy agrees to serve the name.
    const socket = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false }, () => {
      socket.end();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

/**
 * docs/caddy.md's Caddyfile, run by Debian's Caddy against a real Portico API: Caddy gets a
 * certificate on demand only for the names `/v1/edge/ask` approves. Caddy's internal CA stands in
 * for an ACME CA (no network here); the `ask` exchange is the same.
 */
describe('Caddy with on-demand TLS asking Portico', () => {
  let store: Store;
  let dns: TestDnsServer;
  let origin: TestOrigin;
  let rig: Awaited<ReturnType<typeof openCertificateRig>>;
  let caddy: ChildProcess;
  let caddyOutput = '';
  let httpsPort: number;
  const dir = mkdtempSync(path.join(tmpdir(), 'portico-caddy-'));

  beforeAll(async () => {
    if (!existsSync('/usr/bin/caddy'))
      throw new Error('Caddy is missing: apt-get install -y caddy (.ci/run does)');
    store = await backend.open();
    dns = await startDnsServer();
    origin = await startOrigin();
    rig = await openCertificateRig(store, dns);
    await rig.api.app.listen({ host: '127.0.0.1', port: 0 });
    const apiPort = (rig.api.app.server.address() as AddressInfo).port;
    httpsPort = await freePort();
    const caddyfile = path.join(dir, 'Caddyfile');
    writeFileSync(
      caddyfile,
      `{
	admin off
	storage file_system ${dir}/data
	http_port ${await freePort()}
	https_port ${httpsPort}
	local_certs
	skip_install_trust
	on_demand_tls {
		ask http://127.0.0.1:${apiPort}/v1/edge/ask
	}
}

https:// {
	tls {
		on_demand
	}
	reverse_proxy ${origin.url.replace('http://', '')}
}
`,
    );
    caddy = spawn('caddy', ['run', '--config', caddyfile, '--adapter', 'caddyfile'], {
      env: { ...process.env, HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    caddy.stdout?.on('data', (chunk) => {
      caddyOutput += chunk;
    });
    caddy.stderr?.on('data', (chunk) => {
      caddyOutput += chunk;
    });
    await waitUntil(
      () => /serving initial configuration|server running/.test(caddyOutput) || caddy.exitCode !== null,
      50,
    );
    if (caddy.exitCode !== null) throw new Error(`caddy exited:\n${caddyOutput}`);
  });
  afterAll(async () => {
    caddy?.kill();
    await rig?.api.close();
    await origin?.close();
    await dns?.close();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves an active domain and refuses a pending one', async () => {
    const active = 'shop.caddy-test.com';
    await rig.addVerified(active);
    await rig.drain();
    expect((await rig.read(active)).status).toBe('active');
    await rig.api.call(rig.key, 'POST', `/v1/apps/${rig.appId}/domains`, {
      domain: 'pending.caddy-test.com',
    });

    expect(await handshake(httpsPort, active)).toBe(true);
    expect(await handshake(httpsPort, 'pending.caddy-test.com')).toBe(false);
    expect(await handshake(httpsPort, 'nobody.example.org')).toBe(false);
  });
});
