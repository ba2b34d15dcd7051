import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { availableParallelism } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EDGE_ENVIRONMENT, EDGE_NODE_FLAGS } from '../../../src/edge-workers/node-flags.js';
import { startDnsServer, type TestDnsServer } from '../../helpers/dns-server.js';
import { startOrigin, type TestOrigin } from '../../helpers/origin.js';
import { connectionOwner, edgeWorkerPids } from '../../helpers/proc.js';
import {
  createProcessState,
  type ProcessState,
  type ServedPortico,
  servePortico,
} from '../../helpers/process.js';
import { backends } from '../../helpers/stores.js';
import { waitUntil } from '../../helpers/wait.js';

const KEY = 'pk_edge_workers_test_0123456789abcdef012345';
const DOMAIN = 'shop.edge-workers-e2e.com';

/** One answer of the edge, with the client's end of the connection it came over. */
interface Answer {
  status: number;
  body: string;
  /** The client's port: with the edge's port, it names the connection, and through /proc its process. */
  clientPort: number;
  /** Whether the request went over a connection opened for an earlier one (keep-alive). */
  reused: boolean;
}

/** One keep-alive HTTPS connection to the edge, and the edge worker that holds its other end. */
interface Connection {
  agent: https.Agent;
  owner: number;
  clientPort: number;
  get(path: string, hostname?: string): Promise<Answer>;
}

/** Whether something accepts TCP connections on 127.0.0.1:`port`. */
const accepts = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });

/** Pids in numeric order, as `edgeWorkerPids` gives them (the default sort compares them as text). */
const byNumber = (a: number, b: number) => a - b;

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** The JSON log records `portico serve` printed (its workers' included: they share its stdout). */
const records = (portico: ServedPortico): Record<string, unknown>[] =>
  portico.process
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);

/**
 * PORTICO_EDGE_WORKERS=2: `portico serve` as a real process, with an App whose domain is verified
 * against a loopback DNS server, certified by the local CA and served by two edge workers. Which
 * worker answered is read from /proc (the process holding the server's end of the connection), so
 * nothing about it has to show to clients.
 */
describe.each(backends)('two edge workers on $name', { timeout: 120_000 }, (backend) => {
  let state: ProcessState;
  let dns: TestDnsServer;
  let origin: TestOrigin;
  let portico: ServedPortico;
  let primary: number;
  let edgePort: number;
  let root: string;
  let appId: string;
  let defaultHostname: string;
  /** 2xx answers the edge gave these tests, to compare with its metrics. */
  let served2xx = 0;
  const agents: https.Agent[] = [];

  const api = (method: string, pathname: string, body?: unknown) => portico.call(KEY, method, pathname, body);

  /** GET over HTTPS to the edge for `hostname` (SNI and Host), trusting the local CA only. */
  const get = (agent: https.Agent, hostname: string, path: string) =>
    new Promise<Answer>((resolve, reject) => {
      const request = https.get(
        {
          host: '127.0.0.1',
          port: edgePort,
          servername: hostname,
          headers: { host: hostname },
          path,
          ca: root,
          agent,
        },
        (res) => {
          // Read now: once the response ends, the socket goes back to the agent and `res.socket` is null.
          const clientPort = res.socket.localPort ?? 0;
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk) => {
            body += chunk;
          });
          res.on('end', () => {
            if (res.statusCode !== undefined && res.statusCode < 300) served2xx += 1;
            resolve({
              status: res.statusCode ?? 0,
              body,
              clientPort,
              reused: request.reusedSocket,
            });
          });
        },
      );
      request.on('error', reject);
    });

  /**
   * Keep-alive connections, `perWorker` to each of `workers`: new connections are opened (the
   * primary hands them to the workers in turn) until each has its share; the others are closed.
   */
  async function connectionsTo(workers: number[], perWorker = 1, hostname = DOMAIN): Promise<Connection[]> {
    const found: Connection[] = [];
    for (let attempt = 0; attempt < 20 * workers.length * perWorker; attempt++) {
      const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
      agents.push(agent);
      const first = await get(agent, hostname, '/');
      expect(first.status, first.body).toBe(200);
      // A connection the primary is handing to a worker is held by both for a moment.
      let owner: number | undefined;
      const deadline = Date.now() + 5_000;
      await waitUntil(() => {
        owner = connectionOwner(edgePort, first.clientPort, [primary, ...edgeWorkerPids(primary)]);
        return owner !== undefined || Date.now() > deadline;
      });
      if (owner === undefined)
        throw new Error(`no single process holds the connection from ${first.clientPort}`);
      if (owner && workers.includes(owner) && found.filter((c) => c.owner === owner).length < perWorker) {
        found.push({
          agent,
          owner,
          clientPort: first.clientPort,
          get: (path, name = hostname) => get(agent, name, path),
        });
      } else {
        agent.destroy();
      }
      if (found.length === workers.length * perWorker) return found;
    }
    throw new Error(`no connection reached every one of ${workers.join(', ')}`);
  }

  beforeAll(async () => {
    state = await createProcessState(backend.name, 'portico-edge-workers-');
    dns = await startDnsServer();
    origin = await startOrigin();
    portico = await servePortico({
      ...state.env,
      PORTICO_EDGE_WORKERS: '2',
      PORTICO_DNS_SERVERS: dns.address,
      PORTICO_BOOTSTRAP_KEY: KEY,
      PORTICO_ALLOW_PRIVATE_ORIGINS: '1',
      PORTICO_TLS_ISSUER: 'internal',
      PORTICO_APPS_DOMAIN: undefined,
      ...(backend.name === 'postgres'
        ? { PORTICO_ENCRYPTION_KEY: Buffer.alloc(32, 9).toString('base64') }
        : {}),
    });
    primary = portico.process.child.pid as number;
    edgePort = await portico.process.edgeHttpsPort();
    root = await (await fetch(`${portico.url}/tls/root.pem`)).text();

    const app = await api('POST', '/v1/apps', {
      slug: 'edge-workers',
      meta: { title: 'Edge workers' },
      origin_url: origin.url,
    });
    expect(app.status, JSON.stringify(app.body)).toBe(200);
    appId = app.body.app_id;
    defaultHostname = app.body.default_hostname;
    const added = await api('POST', `/v1/apps/${appId}/domains`, { domain: DOMAIN });
    expect(added.status, JSON.stringify(added.body)).toBe(200);
    dns.set(`_mixpeek-verify.${DOMAIN}`, 'TXT', `mixpeek-site-verification=${added.body.verification_token}`);
    dns.set(DOMAIN, 'CNAME', added.body.cname_target);
    expect((await api('POST', `/v1/apps/${appId}/domains/${DOMAIN}/verify`)).body.status).toBe('verified');
    // The worker issues the certificate from the local CA; then the domain is active.
    await waitUntil(
      async () => (await api('GET', `/v1/apps/${appId}/domains/${DOMAIN}`)).body.status === 'active',
      100,
    );
  });

  afterAll(async () => {
    for (const agent of agents) agent.destroy();
    await portico?.close();
    await origin?.close();
    await dns?.close();
    await state?.remove();
  });

  it('runs two edge worker processes, and both answer', async () => {
    const workers = edgeWorkerPids(primary);
    expect(workers).toHaveLength(2);
    const connections = await connectionsTo(workers);
    expect(connections.map((connection) => connection.owner).sort(byNumber)).toEqual(workers);
    for (const connection of connections) {
      const answer = await connection.get('/from-either');
      expect(answer).toMatchObject({ status: 200, clientPort: connection.clientPort, reused: true });
      expect(JSON.parse(answer.body)).toMatchObject({
        url: '/from-either',
        headers: { 'x-forwarded-host': DOMAIN },
      });
    }
    // Each says it started, in the log an operator reads.
    const started = records(portico).filter((record) => record.msg === 'edge: worker started');
    expect(started.map((record) => Number(record.pid)).sort(byNumber)).toEqual(workers);
    // Each runs with the edge's bound on V8's young generation and glibc's arenas
    // (src/edge-workers/node-flags.ts), as the kernel started it.
    for (const pid of workers) {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      expect(argv).toEqual(expect.arrayContaining([...EDGE_NODE_FLAGS]));
      const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      const expected = Object.entries(EDGE_ENVIRONMENT).map(([name, value]) => `${name}=${value}`);
      expect(environ).toEqual(expect.arrayContaining(expected));
    }
  });

  it("shows both workers' answers and TLS contexts in the API's /metrics", async () => {
    const scrape = async () => {
      const text = await (await fetch(`${portico.url}/metrics`)).text();
      const value = (pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? 0);
      return {
        answered2xx: value(/^portico_edge_request_duration_seconds_count\{status_class="2xx"\} (\d+)$/m),
        contexts: value(/^portico_edge_tls_contexts_built_total (\d+)$/m),
      };
    };
    // Workers send what they counted every second.
    const deadline = Date.now() + 5_000;
    let seen = await scrape();
    await waitUntil(async () => {
      seen = await scrape();
      return seen.answered2xx === served2xx || Date.now() > deadline;
    }, 100);
    expect(seen.answered2xx).toBe(served2xx);
    // Each worker built the domain's TLS context for itself: its caches are its own.
    expect(seen.contexts).toBe(2);
  });

  it('keeps serving on connections to one worker while the other is killed, and replaces it', async () => {
    const [victim, survivor] = edgeWorkerPids(primary) as [number, number];
    const toSurvivor = await connectionsTo([survivor], 3);
    let killed = false;
    let sinceKill = 0;
    let done = 0;
    const failures: string[] = [];
    const streams = toSurvivor.map(async (connection) => {
      while (!killed || sinceKill < 90) {
        try {
          const answer = await connection.get('/stream');
          if (answer.status !== 200 || answer.clientPort !== connection.clientPort) {
            failures.push(`${answer.status} on ${answer.clientPort}: ${answer.body.slice(0, 100)}`);
          }
        } catch (error) {
          failures.push(String(error));
        }
        done += 1;
        if (killed) sinceKill += 1;
      }
    });
    await waitUntil(() => done >= 30);
    process.kill(victim, 'SIGKILL');
    killed = true;
    await Promise.all(streams);
    expect(failures).toEqual([]);
    expect(sinceKill).toBeGreaterThanOrEqual(90);

    // The primary says so, and starts another that serves.
    let replacement: number | undefined;
    await waitUntil(() => {
      const now = edgeWorkerPids(primary);
      replacement = now.find((pid) => pid !== survivor && pid !== victim);
      return now.length === 2 && replacement !== undefined;
    }, 50);
    expect(alive(victim)).toBe(false);
    expect(records(portico)).toContainEqual(
      expect.objectContaining({
        msg: 'edge: worker exited; starting another',
        pid: victim,
        signal: 'SIGKILL',
      }),
    );
    // It takes connections once it listens, as it says.
    await waitUntil(() =>
      records(portico).some((record) => record.msg === 'edge: worker started' && record.pid === replacement),
    );
    const [toReplacement] = await connectionsTo([replacement as number]);
    expect((await toReplacement?.get('/new'))?.status).toBe(200);
  });

  it('stops serving a removed domain on both workers within 5 s', async () => {
    const workers = edgeWorkerPids(primary);
    expect(workers).toHaveLength(2);
    const connections = await connectionsTo(workers);
    // Both have the domain's route cached (for 10 minutes, unless told of a change).
    for (const connection of connections) expect((await connection.get('/before')).status).toBe(200);

    const removedAt = Date.now();
    expect((await api('DELETE', `/v1/apps/${appId}/domains/${DOMAIN}`)).status).toBe(200);
    const stopped = new Map<number, Answer>();
    await waitUntil(async () => {
      for (const connection of connections) {
        if (stopped.has(connection.owner)) continue;
        const answer = await connection.get('/after');
        if (answer.status !== 200) stopped.set(connection.owner, answer);
      }
      return stopped.size === connections.length || Date.now() - removedAt > 5_000;
    }, 50);
    expect([...stopped.keys()].sort(byNumber)).toEqual(workers);
    for (const connection of connections) {
      // On the connection to that worker: its own answer.
      expect(stopped.get(connection.owner)).toMatchObject({ status: 404, clientPort: connection.clientPort });
    }
  });

  it('drains on SIGTERM: a request in flight finishes, then every process exits', async () => {
    const workers = edgeWorkerPids(primary);
    // The App's default hostname, served with its own certificate from the local CA.
    const [connection] = await connectionsTo([workers[0] as number], 1, defaultHostname);
    const held = connection?.get('/held') as Promise<Answer>;
    await waitUntil(() => origin.requests.some((request) => request.url === '/held'));

    const exited = new Promise<number | null>((resolve) => portico.process.child.once('exit', resolve));
    portico.process.child.kill('SIGTERM');
    // Every worker stops accepting at once: the shared port closes while the request is in flight.
    await waitUntil(async () => !(await accepts(edgePort)), 50);
    expect(origin.requests.find((request) => request.url === '/held')?.aborted).toBeUndefined();
    origin.release();
    expect(await held).toMatchObject({ status: 200, body: 'released' });
    expect(await exited).toBe(0);
    expect(workers.filter(alive)).toEqual([]);
  });
});

describe("the edge's processes by default, and with PORTICO_EDGE_WORKERS=1", { timeout: 60_000 }, () => {
  it("runs one edge worker per core when unset (the shipped default), on this machine's cores", async () => {
    const portico = await servePortico({ PORTICO_EDGE_WORKERS: undefined });
    try {
      await portico.process.edgeHttpsPort();
      const cores = availableParallelism();
      // One core: the edge runs in `serve` itself, as with PORTICO_EDGE_WORKERS=1.
      expect(edgeWorkerPids(portico.process.child.pid as number)).toHaveLength(cores > 1 ? cores : 0);
    } finally {
      await portico.close();
    }
  });

  it('runs the edge in the serve process itself with 1, as before edge workers existed', async () => {
    const portico = await servePortico({ PORTICO_EDGE_WORKERS: '1' });
    const agent = new http.Agent({ keepAlive: true });
    try {
      const pid = portico.process.child.pid as number;
      const [, port] = await portico.process.waitFor(/edge listening on http:\/\/127\.0\.0\.1:(\d+)/);
      expect(edgeWorkerPids(pid)).toEqual([]);
      const answer = await new Promise<{ status: number; clientPort: number }>((resolve, reject) => {
        http
          .get(
            { host: '127.0.0.1', port: Number(port), path: '/', headers: { host: 'nothing.example' }, agent },
            (res) => {
              const clientPort = res.socket.localPort ?? 0;
              res.resume();
              res.on('end', () => resolve({ status: res.statusCode ?? 0, clientPort }));
            },
          )
          .on('error', reject);
      });
      expect(answer.status).toBe(404);
      expect(connectionOwner(Number(port), answer.clientPort, [pid])).toBe(pid);
    } finally {
      agent.destroy();
      await portico.close();
    }
  });
});
