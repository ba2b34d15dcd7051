import https from 'node:https';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, startCluster } from '../../../scripts/cluster.js';
import { startOrigin, type TestOrigin } from '../../helpers/origin.js';
import { backends } from '../../helpers/stores.js';
import { waitUntil } from '../../helpers/wait.js';

// 150 by default keeps CI well inside its time limit; CLUSTER_DOMAINS=300 (or more) for a longer soak.
const DOMAINS = Number(process.env.CLUSTER_DOMAINS ?? 150);
const hasPostgres = backends.some((backend) => backend.name === 'postgres');

/**
 * The whole system as a fleet: 3 api, 3 worker and 3 edge processes on one PostgreSQL, Pebble
 * issuing, the loopback DNS server answering. DOMAINS domains go from added to served while one worker
 * is killed with SIGKILL midway; afterwards every domain was verified once, holds one certificate,
 * and is served by every edge.
 */
describe.skipIf(!hasPostgres)('a cluster of processes on PostgreSQL', () => {
  let cluster: Cluster;
  let origin: TestOrigin;
  const names = Array.from({ length: DOMAINS }, (_, i) => `site${i}.fleet-test.com`);

  beforeAll(async () => {
    origin = await startOrigin();
    cluster = await startCluster({
      databaseUrl: process.env.DATABASE_URL as string,
      size: { api: 3, worker: 3, edge: 3 },
      env: { PORTICO_WORKER_CONCURRENCY: '16', PORTICO_LOG_LEVEL: 'warn' },
    });
  }, 120_000);
  afterAll(async () => {
    await cluster?.stop();
    await origin?.close();
  });

  const call = async (apiIndex: number, method: string, path: string, body?: unknown) => {
    const api = cluster.nodes.filter((n) => n.role === 'api')[apiIndex % 3];
    const response = await fetch(`${api?.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${cluster.key}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: response.status, body: await response.json() };
  };
  const query = async <T>(sql: string, params: unknown[] = []): Promise<T[]> => {
    const client = new pg.Client({ connectionString: cluster.nodes[0]?.env.DATABASE_URL });
    await client.connect();
    try {
      return (await client.query(sql, params)).rows as T[];
    } finally {
      await client.end();
    }
  };

  it(`takes ${DOMAINS} domains to active through Pebble while a worker dies, each verified and issued once`, async () => {
    const app = await call(0, 'POST', '/v1/apps', {
      slug: 'fleet',
      meta: { title: 'Fleet' },
      origin_url: origin.url,
    });
    expect(app.status).toBe(200);
    const appId = app.body.app_id as string;

    for (const [i, name] of names.entries()) {
      const added = await call(i, 'POST', `/v1/apps/${appId}/domains`, { domain: name });
      expect(added.status).toBe(200);
      cluster.dns.add(
        `_mixpeek-verify.${name}`,
        'TXT',
        `mixpeek-site-verification=${added.body.verification_token}`,
      );
      cluster.dns.set(name, 'CNAME', cluster.cnameTarget);
    }
    for (const [i, name] of names.entries()) {
      const verified = await call(i, 'POST', `/v1/apps/${appId}/domains/${name}/verify`);
      expect(verified.body.status).toBe('verified');
    }

    // Kill one worker with SIGKILL once issuance is under way; its leases expire and others take over.
    const victim = cluster.nodes.find((n) => n.role === 'worker');
    if (!victim) throw new Error('no worker');
    const active = async () =>
      Number((await query<{ n: string }>(`select count(*) as n from domains where status = 'active'`))[0]?.n);
    await waitUntil(async () => (await active()) >= DOMAINS / 10, 250);
    await victim.process.stop('SIGKILL');

    await waitUntil(async () => (await active()) === DOMAINS, 500);

    // Exactly once: one domain.verified event and one issued certificate per domain.
    const verifiedEvents = await query<{ n: string }>(
      `select count(*) as n from events where type = 'domain.verified'`,
    );
    expect(Number(verifiedEvents[0]?.n)).toBe(DOMAINS);
    const issuedPerName = await query<{ hostname: string; n: string }>(
      `select hostname, count(*) as n from certificate_orders where outcome = 'issued' and hostname like '%.fleet-test.com' group by hostname`,
    );
    expect(issuedPerName).toHaveLength(DOMAINS);
    expect(issuedPerName.every((row) => Number(row.n) === 1)).toBe(true);
    const placed = await query<{ n: string }>(
      `select count(*) as n from certificate_orders where outcome = 'placed' and hostname like '%.fleet-test.com'`,
    );
    // An order the killed worker had placed but not finished is placed again by another: at most a few.
    expect(Number(placed[0]?.n)).toBeGreaterThanOrEqual(DOMAINS);
    expect(Number(placed[0]?.n)).toBeLessThanOrEqual(DOMAINS + 16);
    console.log(
      `cluster: ${DOMAINS} active, ${placed[0]?.n} orders placed, ${DOMAINS} issued, one worker killed`,
    );

    // Served by every edge, over HTTPS with each domain's own certificate.
    const edges = cluster.nodes.filter((n) => n.role === 'edge');
    for (const [i, name] of names.entries()) {
      const edge = edges[i % edges.length];
      const status = await new Promise<number>((resolve, reject) => {
        https
          .get(
            {
              host: '127.0.0.1',
              port: edge?.httpsPort,
              servername: name,
              headers: { host: name },
              path: '/',
              rejectUnauthorized: false,
              agent: false,
            },
            (res) => {
              const peer =
                res.socket && 'getPeerCertificate' in res.socket
                  ? (res.socket as import('node:tls').TLSSocket).getPeerCertificate()
                  : undefined;
              expect(peer?.subjectaltname).toBe(`DNS:${name}`);
              res.resume();
              res.on('end', () => resolve(res.statusCode ?? 0));
            },
          )
          .on('error', reject);
      });
      expect(status, name).toBe(200);
    }
  }, 600_000);
});
