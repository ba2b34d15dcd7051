import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { newId } from '../../../src/domain/ids.js';
import { createStore } from '../../../src/store/index.js';
import { startPortico } from '../../helpers/process.js';

/**
 * What Portico keeps in its data directory (the SQLite database with its -wal and -shm, the
 * generated secret.key, the local CA's key) is readable by its owner only: directories Portico
 * creates are 0700 and every file 0600, whatever SQLite's own default (0644). A directory that
 * already existed keeps the mode its operator gave it (docs/operations.md).
 */
describe('modes of the data directory and its files', () => {
  const base = mkdtempSync(path.join(tmpdir(), 'portico-modes-'));
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  const modeOf = (file: string) => statSync(file).mode & 0o777;
  /** Every directory and file under `root` (itself included), with its mode in octal. */
  const modesUnder = (root: string): Record<string, string> => {
    const modes: Record<string, string> = { '.': modeOf(root).toString(8) };
    for (const entry of readdirSync(root, { recursive: true, encoding: 'utf8' })) {
      modes[entry] = modeOf(path.join(root, entry)).toString(8);
    }
    return modes;
  };
  /** Runs `start` with the umask most systems give a service (022), as a real start would have. */
  const withUsualUmask = <T>(start: () => T): T => {
    const previous = process.umask(0o022);
    try {
      return start();
    } finally {
      process.umask(previous);
    }
  };

  it('portico serve on a fresh data directory creates every directory 0700 and every file 0600', async () => {
    // Two levels Portico has to create, as with PORTICO_DATA_DIR=/var/lib/portico/data.
    const dataDir = path.join(base, 'fresh', 'data');
    const server = withUsualUmask(() =>
      startPortico(['serve'], {
        PORTICO_DATA_DIR: dataDir,
        DATABASE_URL: '',
        PORTICO_ENCRYPTION_KEY: '',
        PORTICO_TLS_ISSUER: 'internal',
        PORTICO_API_PORT: '0',
        PORTICO_EDGE_HTTP_PORT: '0',
        PORTICO_EDGE_HTTPS_PORT: '0',
      }),
    );
    try {
      const url = await server.apiUrl();
      const key = await server.firstApiKey();
      // A write through the API, so the WAL and its index hold something while the process runs.
      const created = await fetch(`${url}/v1/apps`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ slug: 'modes', meta: { title: 'Modes' } }),
      });
      expect(created.status).toBe(200);

      const modes = modesUnder(path.join(base, 'fresh'));
      for (const file of [
        'data/portico.db',
        'data/portico.db-wal',
        'data/portico.db-shm',
        'data/secret.key',
      ]) {
        expect(modes).toHaveProperty([file]);
      }
      expect(modes).toHaveProperty(['data/ca/root.key']);
      const expected = Object.fromEntries(
        Object.keys(modes).map((entry) => {
          const isDir = statSync(path.join(base, 'fresh', entry)).isDirectory();
          return [entry, isDir ? '700' : '600'];
        }),
      );
      expect(modes).toEqual(expected);
    } finally {
      expect(await server.stop()).toBe(0);
    }
  });

  /** Opens a store on `dataDir` as Portico does, writes once and answers the modes while it is open. */
  const modesAfterAWrite = async (dataDir: string) => {
    const store = withUsualUmask(() => createStore({ dataDir }));
    try {
      await (await store).ensureOrganization('modes', newId('org'), new Date().toISOString());
      return modesUnder(dataDir);
    } finally {
      await (await store).close();
    }
  };

  it('an existing directory keeps its mode; the database, -wal and -shm created in it are 0600', async () => {
    const dataDir = path.join(base, 'operators');
    mkdirSync(dataDir);
    chmodSync(dataDir, 0o750);
    expect(await modesAfterAWrite(dataDir)).toEqual({
      '.': '750',
      'portico.db': '600',
      'portico.db-wal': '600',
      'portico.db-shm': '600',
    });
  });

  it('files an earlier version left readable (0644) are made 0600 when the store opens', async () => {
    const dataDir = path.join(base, 'earlier');
    mkdirSync(dataDir, { mode: 0o755 });
    chmodSync(dataDir, 0o755);
    // An earlier Portico's database, still open (as after a crash): its -wal and -shm exist, 0644.
    const earlier = withUsualUmask(() => new BetterSqlite3(path.join(dataDir, 'portico.db')));
    try {
      earlier.pragma('journal_mode = WAL');
      earlier.exec('create table earlier (x integer)');
      expect(modesUnder(dataDir)).toMatchObject({
        'portico.db': '644',
        'portico.db-wal': '644',
        'portico.db-shm': '644',
      });
      expect(await modesAfterAWrite(dataDir)).toEqual({
        '.': '755',
        'portico.db': '600',
        'portico.db-wal': '600',
        'portico.db-shm': '600',
      });
    } finally {
      earlier.close();
    }
  });
});
