import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * Moves SQLite's WAL checkpoints off the request path. By default the connection that commits
 * the transaction crossing 1,000 WAL pages copies them back into the database file, fsyncs, and
 * so stalls whichever request happened to commit it. Portico turns automatic checkpoints off on its
 * connection and runs PASSIVE checkpoints from a worker thread with a connection of its own:
 * PASSIVE never blocks the writer, and once a checkpoint has caught up the next write starts the
 * WAL over from its beginning (and `journal_size_limit` trims the file).
 *
 * The worker's code is plain CommonJS evaluated in the thread, so it runs the same whether Portico
 * is started from TypeScript sources or from a build.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file);
db.pragma('busy_timeout = 5000');
const timer = setInterval(() => {
  try { db.pragma('wal_checkpoint(PASSIVE)'); } catch (error) { parentPort.postMessage(String(error)); }
}, workerData.intervalMs);
parentPort.on('message', () => { clearInterval(timer); db.close(); parentPort.close(); });
`;

export interface Checkpointer {
  stop(): Promise<void>;
}

export function startCheckpointer(
  file: string,
  intervalMs = 250,
  onError?: (message: string) => void,
): Checkpointer {
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { driver, file, intervalMs } });
  worker.on('message', (message: string) => onError?.(message));
  // The thread must never keep a stopping process alive.
  worker.unref();
  return {
    stop: async () => {
      const exited = new Promise((resolve) => worker.once('exit', resolve));
      // Held while it closes its connection, so the process waits for that and no longer.
      worker.ref();
      worker.postMessage('stop');
      await exited;
    },
  };
}
