import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config.js';
import { createApiKey } from '../../../src/domain/api-keys.js';
import { AppService } from '../../../src/domain/apps.js';
import { systemClock } from '../../../src/domain/clock.js';
import { DomainService } from '../../../src/domain/domains.js';
import { DELIVER_JOB } from '../../../src/events/webhooks.js';
import { createServices, type Services } from '../../../src/services.js';
import { createStore, type Store } from '../../../src/store/index.js';
import type { Domain } from '../../../src/store/store.js';
import {
  createProcessState,
  type ProcessState,
  type RunningProcess,
  startPortico,
} from '../../helpers/process.js';
import { backends } from '../../helpers/stores.js';
import { waitUntil } from '../../helpers/wait.js';
import { startWebhookReceiver } from '../../helpers/webhook-receiver.js';

const STARTED = /Portico worker started \((worker:[^,]+),/;

/**
 * `portico serve --roles worker` killed with SIGKILL while it holds a job, and started again on
 * the same node (machine and data directory): the new process runs the job at once. The lease is
 * the shipped 300 s and the test waits far less (vitest's 60 s), so without recovery on restart
 * the job could not run again here at all. Two live workers on one node never take each other's.
 */
describe.each(backends)('lease recovery across a restart on $name', (backend) => {
  let state: ProcessState;
  let env: Record<string, string>;
  let store: Store;
  let services: Services;
  let domain: Domain;
  const processes: RunningProcess[] = [];
  const receivers: Awaited<ReturnType<typeof startWebhookReceiver>>[] = [];

  beforeAll(async () => {
    // The workers inherit this process's environment: on SQLite, state.env clears its DATABASE_URL.
    state = await createProcessState(backend.name, 'portico-restart-');
    env = {
      ...state.env,
      PORTICO_TLS_ISSUER: 'none',
      PORTICO_DNS_SERVERS: '127.0.0.1',
      PORTICO_ALLOW_PRIVATE_ORIGINS: '1',
      PORTICO_ENCRYPTION_KEY: Buffer.alloc(32, 11).toString('base64'),
      // The shipped default, set so that nothing in the environment shortens it.
      PORTICO_JOB_LEASE_SECONDS: '300',
    };
    store = await createStore({ dataDir: state.dataDir, databaseUrl: env.DATABASE_URL || undefined });
    const config = loadConfig(env);
    services = await createServices({
      config,
      store,
      clock: systemClock,
      logger: pino({ level: 'silent' }),
      issuer: null,
    });
    const { orgId } = await createApiKey(store, systemClock, { orgName: 'restart', scope: 'write' });
    const app = await new AppService(store, config, systemClock).create(orgId, {
      slug: 'restart',
      title: 'r',
    });
    domain = await new DomainService(store, config, systemClock).add(orgId, app.id, {
      domain: 'restart.lease-test.com',
      isPrimary: false,
    });
  });
  afterEach(async () => {
    await Promise.all(processes.splice(0).map((worker) => worker.stop('SIGKILL')));
    await Promise.all(receivers.splice(0).map((receiver) => receiver.close()));
    for (const holder of await store.leaseHolders()) await store.releaseLeases(holder);
    const webhooks = await store.listWebhooks(domain.orgId, { limit: 100, offset: 0 });
    for (const webhook of webhooks.rows) await store.deleteWebhook(domain.orgId, webhook.id);
  });
  afterAll(async () => {
    await store?.close();
    await state?.remove();
  });

  /** A webhook to `receiver` for events of `type`, and one delivery queued for it: a job of its own. */
  const queueDelivery = async (receiver: { url: string }, type: 'domain.verified' | 'domain.active') => {
    const before = new Set((await deliveryJobs()).map((job) => job.key));
    await services.webhooks.create(domain.orgId, { url: receiver.url, events: [type] });
    await store.transaction((tx) => services.webhooks.record(tx, type, domain, systemClock.now()));
    const [job] = (await deliveryJobs()).filter((candidate) => !before.has(candidate.key));
    if (!job) throw new Error('no delivery was queued');
    return job.key;
  };
  const deliveryJobs = async () => {
    const webhooks = await store.listWebhooks(domain.orgId, { limit: 100, offset: 0 });
    const jobs = [];
    for (const webhook of webhooks.rows) {
      for (const delivery of (await store.listDeliveries(webhook.id, { limit: 100, offset: 0 })).rows) {
        const job = await store.findJob(`${DELIVER_JOB}:${delivery.id}`);
        if (job) jobs.push(job);
      }
    }
    return jobs;
  };
  const startWorker = async (extra: Record<string, string> = {}) => {
    const worker = startPortico(['serve', '--roles', 'worker'], { ...env, ...extra });
    processes.push(worker);
    const [, id] = await worker.waitFor(STARTED);
    return { worker, id: id as string };
  };

  it('runs a killed worker’s job again as soon as the node restarts, with the shipped 300 s lease', async () => {
    const silent = await startWebhookReceiver({ answer: false });
    receivers.push(silent);
    const key = await queueDelivery(silent, 'domain.verified');

    const first = await startWorker();
    await waitUntil(() => silent.received() === 1);
    expect((await store.findJob(key))?.lockedBy).toBe(first.id);
    await first.worker.stop('SIGKILL');

    const second = await startWorker();
    expect(second.id).not.toBe(first.id);
    // The restarted node freed its predecessor's lease and sent the delivery again.
    await waitUntil(() => silent.received() === 2);
    expect((await store.findJob(key))?.lockedBy).toBe(second.id);
    expect(second.worker.output()).toMatch(/freed the leases of a process of this node that is gone/);
  });

  it('never takes the job of another live worker on the same node', async () => {
    const silent = await startWebhookReceiver({ answer: false });
    const answering = await startWebhookReceiver({ answer: true });
    receivers.push(silent, answering);
    const slowKey = await queueDelivery(silent, 'domain.verified');
    // One slot: while it waits for the silent receiver, the first worker takes nothing else.
    const first = await startWorker({ PORTICO_WORKER_CONCURRENCY: '1' });
    await waitUntil(() => silent.received() === 1);

    const second = await startWorker();
    // The second swept for dead holders of this node before its start-up line: the first's lease
    // survived it. Read at once, while the first still waits for the silent receiver (a delivery
    // gives up after 10 s, and then frees its job itself).
    expect((await store.findJob(slowKey))?.lockedBy).toBe(first.id);
    // Only the second worker can deliver this one.
    const quickKey = await queueDelivery(answering, 'domain.active');
    await waitUntil(async () => answering.received() === 1 && (await store.findJob(quickKey)) === undefined);
    expect(second.worker.output()).not.toMatch(/freed the leases/);
  });
});
