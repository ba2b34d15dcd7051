import { type ExpressionBuilder, type Selectable, sql } from 'kysely';
import type { Database, JobsTable } from '../schema.js';
import type { Job, JobStore } from '../store.js';
import { type SqlContext, toCount } from './context.js';

/** `org_id` of the platform's own work (a job's `orgId` null): one more tenant to the claim. */
const PLATFORM = '';

const toJob = (row: Selectable<JobsTable>): Job => ({
  id: row.id,
  kind: row.kind,
  key: row.key,
  payload: JSON.parse(row.payload),
  orgId: row.org_id === PLATFORM ? null : row.org_id,
  runAt: row.run_at,
  lockedBy: row.locked_by,
  lockedAt: row.locked_at,
  attempts: row.attempts,
  revision: row.revision,
  lastError: row.last_error,
  createdAt: row.created_at,
});

/**
 * How many due jobs of each organization's queue a claim ranks beyond the `limit` it may take:
 * room for concurrent claimers on PostgreSQL, which skip each other's locked rows (8 workers
 * claiming 32 each all find work in one queue). A claimer that finds every ranked row taken gets
 * fewer and claims again at its next poll.
 */
const CLAIM_HEADROOM = 256;

/** A queue of the claim: one organization's jobs of one kind. */
type QueueRow = { kind: string; org_id: string };

/** The lease protocol of docs/architecture.md, one function per SQL operation. */
export function jobQueries({ db, caps }: SqlContext): JobStore {
  return {
    async enqueueJob(job, id, now) {
      await db
        .insertInto('jobs')
        .values({
          id,
          kind: job.kind,
          key: job.key,
          payload: JSON.stringify(job.payload),
          org_id: job.orgId ?? PLATFORM,
          run_at: job.runAt,
          created_at: now,
        })
        .onConflict((oc) =>
          oc.column('key').doUpdateSet({
            run_at: (eb) => eb.ref('excluded.run_at'),
            payload: (eb) => eb.ref('excluded.payload'),
            org_id: (eb) => eb.ref('excluded.org_id'),
            attempts: 0,
            last_error: null,
            revision: sql`jobs.revision + 1`,
          }),
        )
        .execute();
    },

    async claimJobs(workerId, kinds, limit, now, perOrgLimit) {
      if (kinds.length === 0 || limit <= 0) return [];
      // Fair shares: per kind, each organization has a queue, and the next job of each queue takes
      // its turn (round-robin). A queue's running jobs, on any worker, count as turns it has had,
      // so an organization with 30 webhooks running has its next one behind another's first.
      // Among equal turns the earliest due goes first.
      const rows = await db
        // The running jobs of each queue, and how many of them this worker holds.
        .with('held', (qb) =>
          qb
            .selectFrom('jobs')
            .select(['kind', 'org_id'])
            .select((eb) => [
              eb.fn.countAll<number>().as('running'),
              sql<number>`sum(case when locked_by = ${workerId} then 1 else 0 end)`.as('mine'),
            ])
            .where('locked_at', 'is not', null)
            .where('kind', 'in', kinds)
            .groupBy(['kind', 'org_id']),
        )
        // The queues with due jobs, and the first few due jobs of each, read from `jobs_queue` in
        // queue order: only those can be claimed now. More than `limit` of each, though: concurrent
        // claimers on PostgreSQL skip the rows each other locks, and each must find others further
        // on. (Numbering every due job with a window function instead cost SQLite four times as
        // much at 100,000 due.)
        .with('queues', (qb) =>
          qb
            .selectFrom('jobs')
            .select(['kind', 'org_id'])
            .where('locked_at', 'is', null)
            .where('kind', 'in', kinds)
            .where('run_at', '<=', now)
            .groupBy(['kind', 'org_id']),
        )
        .with('queue', (qb) => {
          const firstOfQueue = (eb: ExpressionBuilder<Database & { queues: QueueRow }, 'queues'>) =>
            eb
              .selectFrom('jobs as next')
              .whereRef('next.kind', '=', 'queues.kind')
              .whereRef('next.org_id', '=', 'queues.org_id')
              .where('next.locked_at', 'is', null)
              .where('next.run_at', '<=', now)
              .orderBy('next.run_at')
              .orderBy('next.id')
              .limit(limit + CLAIM_HEADROOM);
          return caps.lateralJoins
            ? qb
                .selectFrom('queues')
                .innerJoinLateral(
                  (eb) =>
                    firstOfQueue(eb)
                      .select(['next.id', 'next.kind', 'next.org_id', 'next.run_at'])
                      .as('first'),
                  (join) => join.onTrue(),
                )
                .select(['first.id', 'first.kind', 'first.org_id', 'first.run_at'])
            : // SQLite has no LATERAL; PostgreSQL would run this correlated subquery once per job.
              qb
                .selectFrom('queues')
                .innerJoin('jobs', (join) =>
                  join.on('jobs.id', 'in', (eb) => firstOfQueue(eb).select('next.id')),
                )
                .select(['jobs.id', 'jobs.kind', 'jobs.org_id', 'jobs.run_at']);
        })
        .with('turns', (qb) =>
          qb
            .selectFrom('queue')
            .leftJoin('held', (join) =>
              join.onRef('held.kind', '=', 'queue.kind').onRef('held.org_id', '=', 'queue.org_id'),
            )
            .select(['queue.id', 'queue.org_id', 'queue.run_at'])
            .select(
              sql<number>`row_number() over (partition by queue.kind, queue.org_id order by queue.run_at, queue.id)
                + coalesce(held.running, 0)`.as('turn'),
            ),
        )
        // With `perOrgLimit`: how many of its organization's jobs this worker would hold if it took
        // each one and every one of the organization's before it in claiming order.
        .with('ranked', (qb) =>
          qb
            .selectFrom('turns')
            .select(['id', 'run_at', 'turn'])
            .select(
              sql<number>`row_number() over (partition by org_id order by turn, run_at, id)
                + coalesce((select sum(held.mine) from held where held.org_id = turns.org_id), 0)`.as('load'),
            ),
        )
        // PostgreSQL: concurrent claimers skip each other's locked rows instead of waiting or
        // double-claiming; a window function cannot share a SELECT with FOR UPDATE, hence the
        // ranking above and the locking here. The rows are picked in a CTE, which PostgreSQL
        // evaluates once: as an `IN (subquery)` the planner may re-run it and lease more than
        // `limit` rows. SQLite: the statement is one write transaction, so claims serialize.
        .with('due', (qb) =>
          qb
            .selectFrom('jobs')
            .innerJoin('ranked', 'ranked.id', 'jobs.id')
            .select('jobs.id')
            .where('jobs.locked_at', 'is', null)
            .$if(perOrgLimit !== undefined, (q) => q.where('ranked.load', '<=', perOrgLimit as number))
            .orderBy('ranked.turn')
            .orderBy('ranked.run_at')
            .orderBy('ranked.id')
            .limit(limit)
            .$if(caps.rowLocks, (q) => q.forUpdate(['jobs']).skipLocked()),
        )
        .updateTable('jobs')
        .from('due')
        .set({ locked_by: workerId, locked_at: now, attempts: sql`jobs.attempts + 1` })
        .whereRef('jobs.id', '=', 'due.id')
        // Named columns: SQLite refuses `jobs.*` in RETURNING.
        .returning([
          'jobs.id',
          'jobs.kind',
          'jobs.key',
          'jobs.payload',
          'jobs.org_id',
          'jobs.run_at',
          'jobs.locked_by',
          'jobs.locked_at',
          'jobs.attempts',
          'jobs.revision',
          'jobs.last_error',
          'jobs.created_at',
        ])
        .execute();
      return rows.map(toJob).sort((a, b) => (a.runAt < b.runAt ? -1 : a.runAt > b.runAt ? 1 : 0));
    },

    async claimJob(key, workerId, now) {
      const row = await db
        .updateTable('jobs')
        .set({ locked_by: workerId, locked_at: now, attempts: sql`attempts + 1` })
        .where('key', '=', key)
        .where('locked_at', 'is', null)
        .returningAll()
        .executeTakeFirst();
      return row && toJob(row);
    },

    async completeJob(job, workerId) {
      const deleted = await db
        .deleteFrom('jobs')
        .where('id', '=', job.id)
        .where('locked_by', '=', workerId)
        .where('revision', '=', job.revision)
        .executeTakeFirst();
      if (Number(deleted.numDeletedRows) > 0) return true;
      // Enqueued again while this run was in progress: keep it, unlocked, for its new run.
      const unlocked = await db
        .updateTable('jobs')
        .set({ locked_by: null, locked_at: null })
        .where('id', '=', job.id)
        .where('locked_by', '=', workerId)
        .executeTakeFirst();
      return Number(unlocked.numUpdatedRows) > 0;
    },

    async rescheduleJob(job, workerId, runAt, error = null) {
      const result = await db
        .updateTable('jobs')
        .set({ run_at: runAt, locked_by: null, locked_at: null, last_error: error })
        .where('id', '=', job.id)
        .where('locked_by', '=', workerId)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) > 0;
    },

    async extendLeases(workerId, jobIds, now) {
      if (jobIds.length === 0) return;
      await db
        .updateTable('jobs')
        .set({ locked_at: now })
        .where('locked_by', '=', workerId)
        .where('id', 'in', jobIds)
        .execute();
    },

    async releaseExpiredLeases(lockedBefore) {
      const result = await db
        .updateTable('jobs')
        .set({ locked_by: null, locked_at: null })
        .where('locked_at', 'is not', null)
        .where('locked_at', '<', lockedBefore)
        .executeTakeFirst();
      return Number(result.numUpdatedRows);
    },

    async releaseLeases(workerId) {
      const result = await db
        .updateTable('jobs')
        .set({ locked_by: null, locked_at: null })
        .where('locked_by', '=', workerId)
        .executeTakeFirst();
      return Number(result.numUpdatedRows);
    },

    async leaseHolders() {
      const rows = await db
        .selectFrom('jobs')
        .select('locked_by')
        .distinct()
        .where('locked_at', 'is not', null)
        .execute();
      return rows.flatMap((row) => (row.locked_by === null ? [] : [row.locked_by]));
    },

    async findJob(key) {
      const row = await db.selectFrom('jobs').selectAll().where('key', '=', key).executeTakeFirst();
      return row && toJob(row);
    },

    async deleteJob(key) {
      await db.deleteFrom('jobs').where('key', '=', key).execute();
    },

    async jobQueueStats(now) {
      const rows = await db
        .selectFrom('jobs')
        .select((eb) => ['kind', eb.fn.countAll().as('n'), eb.fn.min('run_at').as('oldest')])
        .where('locked_at', 'is', null)
        .where('run_at', '<=', now)
        .groupBy('kind')
        .execute();
      return rows.map((row) => ({
        kind: row.kind,
        due: toCount(row.n as number | string),
        oldestRunAt: row.oldest ?? null,
      }));
    },

    async countJobs(kind) {
      const row = await db
        .selectFrom('jobs')
        .select((eb) => eb.fn.countAll().as('n'))
        .$if(kind !== undefined, (q) => q.where('kind', '=', kind as string))
        .executeTakeFirst();
      return toCount(row?.n as number | string | undefined);
    },
  };
}
