// The reference #2 names for bench:api: "a plain insert-per-request", measured here rather than
// quoted. Two POST routes on the baseline server that take add-domain's body and store one row in
// SQLite (WAL, synchronous=NORMAL, Portico's settings) with none of Portico's work (no
// authentication, hostname policy, quota or claim checks):
// - `/insert/plain`: one autocommitted INSERT per request, checkpoints left to SQLite (inline);
// - `/insert/batched`: the two known ways past it, as Portico does them: the requests of one turn
//   of the event loop committed together, and checkpoints run from another thread
//   (src/store/sqlite-checkpointer.ts).
// They show what the target asks of a route that writes: how close to hello-world the
// cheapest such route gets on this machine, in the same run.
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import type { FastifyInstance } from 'fastify';
import { startCheckpointer } from '../../src/store/sqlite-checkpointer.js';

const TABLE = `create table domains (
  id text primary key, app_id text not null, name text not null, verification_token text not null,
  status text not null, created_at text not null, unique (app_id, name))`;

function open(file: string, checkpointsOffThread: boolean) {
  const db = new BetterSqlite3(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  if (checkpointsOffThread) db.pragma('wal_autocheckpoint = 0');
  db.exec(TABLE);
  return db;
}

export function registerInsertReference(app: FastifyInstance, dir: string): void {
  const plain = open(path.join(dir, 'plain.db'), false);
  const batched = open(path.join(dir, 'batched.db'), true);
  const checkpointer = startCheckpointer(path.join(dir, 'batched.db'));
  app.addHook('onClose', async () => {
    await checkpointer.stop();
    plain.close();
    batched.close();
  });

  const sql =
    'insert into domains (id, app_id, name, verification_token, status, created_at) values (?, ?, ?, ?, ?, ?)';
  const insertPlain = plain.prepare(sql);
  const insertBatched = batched.prepare(sql);
  const row = (domain: string) => [
    `dom_${randomBytes(9).toString('base64url')}`,
    'app_reference',
    domain,
    randomBytes(16).toString('hex'),
    'pending',
    new Date().toISOString(),
  ];

  let queue: { values: unknown[]; done: (error?: unknown) => void }[] = [];
  const commitAll = batched.transaction((rows: unknown[][]) => {
    for (const values of rows) insertBatched.run(values);
  });
  const flush = () => {
    const batch = queue;
    queue = [];
    try {
      commitAll(batch.map((entry) => entry.values));
      for (const entry of batch) entry.done();
    } catch (error) {
      for (const entry of batch) entry.done(error);
    }
  };

  const schema = {
    body: {
      type: 'object',
      properties: { domain: { type: 'string', minLength: 1, maxLength: 253 } },
      required: ['domain'],
      additionalProperties: false,
    },
  } as const;
  app.post<{ Body: { domain: string } }>('/insert/plain', { schema }, async (request) => {
    const values = row(request.body.domain);
    insertPlain.run(values);
    return { domain: request.body.domain, status: 'pending', verification_token: values[3] };
  });
  app.post<{ Body: { domain: string } }>('/insert/batched', { schema }, async (request) => {
    const values = row(request.body.domain);
    await new Promise<void>((resolve, reject) => {
      if (queue.length === 0) setImmediate(flush);
      queue.push({ values, done: (error) => (error ? reject(error) : resolve()) });
    });
    return { domain: request.body.domain, status: 'pending', verification_token: values[3] };
  });
}
