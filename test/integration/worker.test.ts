import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { iso } from '../../src/domain/clock.js';
import { newId } from '../../src/domain/ids.js';
import type { Store } from '../../src/store/store.js';
import { type JobHandler, retryDelaySeconds, Worker } from '../../src/worker/runner.js';
import { ManualClock } from '../helpers/clock.js';
import { backends } from '../helpers/stores.js';
import { waitUntil } from '../helpers/wait.js';

/** The job loop on a real store: leases, retries, isolation of slow and failing jobs, shutdown. */
describe.each(backends)('worker on $name', (backend) => {
  let store: Store;
  const clock = new ManualClock();
  const logger = pino({ level: 'silent' });
  let kindCounter = 0;

  beforeAll(async () => {
    store = await backend.open();
  });
  afterAll(async () => {
    await store.close();
  });

  /** A fresh job kind per test, so tests never see each other's jobs. */
  const enqueue = async (kind: string, keys: string[]) => {
    for (const key of keys) {
      await store.enqueueJob(
        { kind, key, payload: { key }, orgId: null, runAt: iso(clock.now()) },
        newId('job'),
        iso(clock.now()),
      );
    }
  };
  const worker = (handlers: JobHandler[], extra: Partial<ConstructorParameters<typeof Worker>[0]> = {}) =>
    new Worker({ store, handlers, clock, logger, concurrency: 4, leaseSeconds: 60, ...extra });

  it('runs the jobs a dead worker leased, once the lease has expired, and not before', async () => {
    const kind = `test:lease${++kindCounter}`;
    await enqueue(kind, ['a', 'b', 'c']);
    const leased = await store.claimJobs('dead-worker', [kind], 10, iso(clock.now()));
    expect(leased).toHaveLength(3);
    const ran: string[] = [];
    const survivor = worker([{ kind, run: async (job) => void ran.push(job.key) }]);
    clock.advance(30);
    await survivor.drain();
    expect(ran).toEqual([]);
    clock.advance(31);
    await survivor.drain();
    expect(ran.sort()).toEqual(['a', 'b', 'c']);
    expect(await store.countJobs(kind)).toBe(0);
  });

  it('keeps the lease of a job that runs longer than the lease while its worker lives', async () => {
    const kind = `test:long${++kindCounter}`;
    await enqueue(kind, ['long']);
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => {
      finish = resolve;
    });
    let runs = 0;
    const handler: JobHandler = {
      kind,
      run: async () => {
        runs++;
        await finished;
        return undefined;
      },
    };
    const owner = worker([handler], { leaseSeconds: 3, pollIntervalMs: 20 });
    owner.start();
    await waitUntil(async () => (await store.findJob('long'))?.lockedBy === owner.id);
    const lockedAt = (await store.findJob('long'))?.lockedAt;
    // Time passes beyond the lease; the owner's heartbeat renews it.
    clock.advance(2);
    await waitUntil(async () => (await store.findJob('long'))?.lockedAt !== lockedAt);
    clock.advance(2);
    const other = worker([handler], { leaseSeconds: 3 });
    await Promise.race([other.drain(), finished]);
    expect(runs).toBe(1);
    expect((await store.findJob('long'))?.lockedBy).toBe(owner.id);
    finish();
    await owner.stop();
    expect(await store.findJob('long')).toBeUndefined();
  });

  it('retries a failing job on the backoff schedule with its error recorded, without holding up the rest', async () => {
    const kind = `test:fail${++kindCounter}`;
    await enqueue(kind, ['bad', 'good-1', 'good-2']);
    const ran: string[] = [];
    const runner = worker([
      {
        kind,
        run: async (job) => {
          if (job.key === 'bad') throw new Error('upstream said no');
          ran.push(job.key);
          return undefined;
        },
      },
    ]);
    await runner.drain();
    expect(ran.sort()).toEqual(['good-1', 'good-2']);
    const bad = await store.findJob('bad');
    expect(bad).toMatchObject({ lastError: 'upstream said no', attempts: 1, lockedBy: null });
    expect(Date.parse(bad?.runAt ?? '') - clock.now().getTime()).toBe(retryDelaySeconds(1) * 1000);
    clock.advance(retryDelaySeconds(1));
    await runner.drain();
    expect(await store.findJob('bad')).toMatchObject({ attempts: 2 });
    await store.deleteJob('bad');
  });

  it('a hanging job is aborted at its timeout and does not stop the others', async () => {
    const kind = `test:hang${++kindCounter}`;
    const quick = Array.from({ length: 10 }, (_, i) => `quick-${i}`);
    await enqueue(kind, ['hang', ...quick]);
    const done: string[] = [];
    const runner = worker(
      [
        {
          kind,
          timeoutMs: 300,
          run: (job, signal) =>
            job.key === 'hang'
              ? new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)))
              : Promise.resolve(void done.push(job.key)),
        },
      ],
      { concurrency: 2 },
    );
    await runner.drain();
    expect(done.sort()).toEqual([...quick].sort());
    expect((await store.findJob('hang'))?.lastError).toMatch(/timeout|aborted/i);
    await store.deleteJob('hang');
  });

  it('stops gracefully: waits for running jobs, then releases what it still holds', async () => {
    const kind = `test:stop${++kindCounter}`;
    await enqueue(kind, ['slow']);
    let release!: () => void;
    const started = new Promise<void>((resolve) => {
      release = resolve;
    });
    const runner = worker(
      [
        {
          kind,
          run: (_job, signal) =>
            new Promise((_, reject) => {
              release();
              signal.addEventListener('abort', () => reject(signal.reason));
            }),
        },
      ],
      { pollIntervalMs: 20 },
    );
    runner.start();
    await started;
    expect((await store.findJob('slow'))?.lockedBy).toBe(runner.id);
    await runner.stop(50);
    // Aborted by the stop, so it failed and was put back for another worker (with a retry delay).
    const job = await store.findJob('slow');
    expect(job?.lockedBy).toBeNull();
    expect(job?.lastError).toMatch(/stopping/);
    await store.deleteJob('slow');
  });
});
