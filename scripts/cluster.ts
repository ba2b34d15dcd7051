/**
 * `npm run cluster`: Portico as a platform runs it on several machines, on one: 2 api, 2 worker
 * and 2 edge processes sharing one PostgreSQL database, with a loopback DNS server standing in for
 * customers' DNS and Pebble (Let's Encrypt's test CA) issuing certificates. Watch a domain go from
 * added to served through either edge. Ctrl-C stops everything.
 *
 * `startCluster()` is also what test/integration/system/cluster.test.ts runs.
 */
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { createScratchDatabase } from '../test/helpers/databases.js';
import { startDnsServer, type TestDnsServer, type TestRecordType } from '../test/helpers/dns-server.js';
import { freePort, type Pebble, startPebble } from '../test/helpers/pebble.js';
import { type RunningProcess, startPortico } from '../test/helpers/process.js';

export interface ClusterOptions {
  databaseUrl: string;
  /** Processes per role. */
  size?: Partial<Record<'api' | 'worker' | 'edge', number>>;
  /** Extra environment for every process. */
  env?: Record<string, string>;
}

export interface Node {
  role: 'api' | 'worker' | 'edge';
  process: RunningProcess;
  /** The env it was started with, to start it again after a kill. */
  env: Record<string, string>;
  url?: string;
  httpsPort?: number;
  httpPort?: number;
}

export interface Cluster {
  key: string;
  dns: TestDnsServer;
  pebble: Pebble;
  nodes: Node[];
  cnameTarget: string;
  /** Starts a node again with its own env (after a kill). */
  restart(node: Node): Promise<void>;
  stop(): Promise<void>;
}

export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const size = { api: 2, worker: 2, edge: 2, ...options.size };
  const database = await createScratchDatabase(options.databaseUrl);
  const dns = await startDnsServer();
  const appsDomain = 'apps.cluster.test';
  const cnameTarget = `cname.${appsDomain}`;
  dns.set(cnameTarget, 'A', '127.0.0.1');
  // Pebble validates HTTP-01 on one port of the address DNS gives: the first edge listens there.
  const challengePort = await freePort();
  const pebble = await startPebble({ dnsServer: dns.address, httpPort: challengePort });
  const key = `cluster-key-${Math.random().toString(36).slice(2)}`;
  const common: Record<string, string> = {
    DATABASE_URL: database.url,
    PORTICO_ENCRYPTION_KEY: Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64'),
    PORTICO_BOOTSTRAP_KEY: key,
    PORTICO_DNS_SERVERS: dns.address,
    PORTICO_APPS_DOMAIN: appsDomain,
    PORTICO_TLS_ISSUER: 'acme',
    PORTICO_ACME_DIRECTORY: pebble.directoryUrl,
    PORTICO_ACME_CA_FILE: pebble.caFile,
    PORTICO_ALLOW_PRIVATE_ORIGINS: '1',
    PORTICO_ISSUANCE_RATE_PER_HOUR: '100000',
    PORTICO_RATE_LIMIT_PER_MINUTE: '0',
    PORTICO_JOB_LEASE_SECONDS: '15',
    PORTICO_LOG_LEVEL: 'info',
    // Each process stands for a machine of the fleet, all on this one: an edge node forking an edge
    // worker per core here would multiply processes and PostgreSQL connections on the same two
    // cores. Edge workers are tested on their own (test/integration/edge/workers.test.ts).
    PORTICO_EDGE_WORKERS: '1',
    ...options.env,
  };

  const nodes: Node[] = [];
  const start = async (role: Node['role'], env: Record<string, string>): Promise<Node> => {
    const node: Node = { role, env, process: startPortico(['serve', '--roles', role], env) };
    if (role === 'api') node.url = (await node.process.waitFor(/API listening on (http:\/\/[\d.:]+)/))[1];
    if (role === 'worker') await node.process.waitFor(/worker started/);
    if (role === 'edge') {
      const [, http, https] = await node.process.waitFor(
        /edge listening on http:\/\/[\d.]+:(\d+) and https:\/\/[\d.]+:(\d+)/,
      );
      node.httpPort = Number(http);
      node.httpsPort = Number(https);
    }
    return node;
  };
  try {
    for (const role of ['api', 'worker', 'edge'] as const) {
      for (let i = 0; i < size[role]; i++) {
        const env = {
          ...common,
          PORTICO_API_PORT: '0',
          PORTICO_EDGE_HTTP_PORT: role === 'edge' && i === 0 ? String(challengePort) : '0',
          PORTICO_EDGE_HTTPS_PORT: '0',
        };
        // Sequentially: the first process applies the migrations, the rest find them done.
        nodes.push(await start(role, env));
      }
    }
  } catch (error) {
    await Promise.all(nodes.map((node) => node.process.stop()));
    await pebble.stop();
    await dns.close();
    await database.drop();
    throw error;
  }
  return {
    key,
    dns,
    pebble,
    nodes,
    cnameTarget,
    restart: async (node) => {
      Object.assign(node, await start(node.role, node.env));
    },
    stop: async () => {
      await Promise.all(nodes.map((node) => node.process.stop()));
      await pebble.stop();
      await dns.close();
      await database.drop();
    },
  };
}

/** A tiny control endpoint for a person at the terminal: create records in the loopback DNS server. */
async function startDnsControl(dns: TestDnsServer): Promise<string> {
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => {
      try {
        const { name, type, value } = JSON.parse(body) as {
          name: string;
          type: TestRecordType;
          value: string;
        };
        dns.add(name, type, value);
        res.writeHead(200).end('ok\n');
      } catch {
        res.writeHead(400).end('send {"name","type","value"}\n');
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const databaseUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  const cluster = await startCluster({ databaseUrl });
  const control = await startDnsControl(cluster.dns);
  const api = cluster.nodes.filter((n) => n.role === 'api');
  const edges = cluster.nodes.filter((n) => n.role === 'edge');
  console.log(`
Portico cluster on PostgreSQL: ${cluster.nodes.length} processes (2 api, 2 worker, 2 edge), Pebble, loopback DNS.

  API:    ${api.map((n) => n.url).join('  ')}      key: ${cluster.key}
  Edges:  ${edges.map((n) => `https://127.0.0.1:${n.httpsPort}`).join('  ')}
  DNS:    ${cluster.dns.address} (records: POST ${control}  {"name","type","value"})

Try it:
  export KEY=${cluster.key} API=${api[0]?.url}
  APP=$(curl -s -H "Authorization: Bearer $KEY" -H 'content-type: application/json' $API/v1/apps \\
        -d '{"slug":"demo","meta":{"title":"Demo"},"origin_url":"http://127.0.0.1:${api[0]?.url?.split(':').at(-1)}"}' | sed 's/.*"app_id":"\\([^"]*\\)".*/\\1/')
  TOKEN=$(curl -s -H "Authorization: Bearer $KEY" -H 'content-type: application/json' $API/v1/apps/$APP/domains \\
        -d '{"domain":"shop.demo.test"}' | sed 's/.*"verification_token":"\\([^"]*\\)".*/\\1/')
  curl -s ${control} -d "{\\"name\\":\\"_mixpeek-verify.shop.demo.test\\",\\"type\\":\\"TXT\\",\\"value\\":\\"mixpeek-site-verification=$TOKEN\\"}"
  curl -s ${control} -d '{"name":"shop.demo.test","type":"CNAME","value":"${cluster.cnameTarget}"}'
  curl -s -H "Authorization: Bearer $KEY" -X POST ${api[1]?.url}/v1/apps/$APP/domains/shop.demo.test/verify
  # a few seconds later, through either edge (the certificate is Pebble's: -k):
  curl -sk --resolve shop.demo.test:${edges[1]?.httpsPort}:127.0.0.1 https://shop.demo.test:${edges[1]?.httpsPort}/healthz

Ctrl-C stops every process.`);
  await new Promise((resolve) => process.once('SIGINT', resolve));
  await cluster.stop();
  process.exit(0);
}
