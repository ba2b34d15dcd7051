import { type Selectable, sql } from 'kysely';
import type { JobsTable } from '../schema.js';
import type { Job, JobStore } from '../store.js';
import { type SqlContext, toCount } from './context.js';

const toJob = (row: Selectable<JobsTable>): Job => ({
  id: row.id,
  kind: row.kind,
  key: row.key,
  payload: JSON.parse(row.payload),
  runAt: row.run_at,
  lockedBy: row.locked_by,
  lockedAt: row.locked_at,
  attempts: row.attempts,
  revision: row.revision,
  lastError: row.last_error,
  createdAt: row.created_at,
});

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
          run_at: job.runAt,
          created_at: now,
        })
        .onConflict((oc) =>
          oc.column('key').doUpdateSet({
            run_at: (eb) => eb.ref('excluded.run_at'),
            payload: (eb) => eb.ref('excluded.payload'),
            attempts: 0,
            last_error: null,
            revision: sql`jobs.revision + 1`,
          }),
        )
        .execute();
    },

    async claimJobs(workerId, kinds, limit, now) {
      if (kinds.length === 0 || limit <= 0) return [];
      // PostgreSQL: concurrent claimers skip each other's locked rows instead of waiting or
      // double-claiming. The candidates are picked in a CTE, which PostgreSQL evaluates once: as an
      // `IN (subquery)` the planner may re-run the subquery and lease more than `limit` rows.
      // SQLite: the statement is one write transaction, so claims serialize.
      const rows = await db
        .with('due', (qb) =>
          qb
            .selectFrom('jobs')
            .select('id')
            .where('locked_at', 'is', null)
            .where('run_at', '<=', now)
            .where('kind', 'in', kinds)
            .orderBy('run_at')
            .orderBy('id')
            .limit(limit)
            .$if(caps.rowLocks, (q) => q.forUpdate().skipLocked()),
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
