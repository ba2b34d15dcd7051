import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createScratchDatabase } from '../../helpers/databases.js';
import { PORTICO_BIN, runPortico, startPortico } from '../../helpers/process.js';
import { waitUntil } from '../../helpers/wait.js';

const databaseUrl = process.env.DATABASE_URL;

/** `portico serve` and `portico keys` as an operator runs them, on the embedded SQLite default. */
describe('portico command', () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'portico-cli-'));
  const env = { PORTICO_DATA_DIR: dataDir, PORTICO_API_PORT: '0', PORTICO_ROLES: 'api', DATABASE_URL: '' };
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('serve prints where it listens and, on an empty store only, a working API key once', async () => {
    // A process without the API role does not mint the key (it would land in an edge's or a
    // worker's log): the first API process does.
    const edgeOnly = startPortico(['serve', '--roles', 'edge'], {
      ...env,
      PORTICO_EDGE_HTTP_PORT: '0',
      PORTICO_EDGE_HTTPS_PORT: '0',
    });
    try {
      await edgeOnly.waitFor(/edge listening on http/);
    } finally {
      expect(await edgeOnly.stop()).toBe(0);
    }
    expect(edgeOnly.output()).not.toMatch(/pk_[a-z0-9]{40}/);

    const first = startPortico(['serve'], env);
    try {
      const url = await first.apiUrl();
      // Off a terminal, start-up lines are JSON records (PORTICO_LOG_FORMAT), the key a field of one.
      const key = await first.firstApiKey();
      expect(readdirSync(dataDir)).toContain('portico.db');
      const apps = await fetch(`${url}/v1/apps`, { headers: { authorization: `Bearer ${key}` } });
      expect(apps.status).toBe(200);
      expect((await apps.json()).results).toEqual([]);
      const health = await fetch(`${url}/healthz`);
      expect(health.status).toBe(200);
    } finally {
      expect(await first.stop()).toBe(0);
    }

    const second = startPortico(['serve', '--roles', 'api'], env);
    try {
      await second.apiUrl();
      expect(second.output()).not.toMatch(/pk_[a-z0-9]{40}/);
    } finally {
      await second.stop();
    }
  });

  it('keys create prints a new key with the scope asked for', async () => {
    const writer = await runPortico(['keys', 'create', '--org', 'cli-org'], env);
    expect(writer.code).toBe(0);
    const writeKey = writer.stdout.trim();
    expect(writeKey).toMatch(/^pk_[a-z0-9]{40}$/);
    expect(writer.stderr).toContain('cli-org');
    expect(writer.stderr).not.toContain(writeKey);

    const reader = await runPortico(['keys', 'create', '--org', 'cli-org', '--read-only'], env);
    const readKey = reader.stdout.trim();
    expect(readKey).toMatch(/^pk_[a-z0-9]{40}$/);

    const server = startPortico(['serve'], env);
    try {
      const url = await server.apiUrl();
      const create = (key: string) =>
        fetch(`${url}/v1/apps`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify({ slug: `cli-${key.slice(3, 9)}`, meta: { title: 'CLI' } }),
        });
      expect((await create(writeKey)).status).toBe(200);
      expect((await create(readKey)).status).toBe(403);
      const list = await fetch(`${url}/v1/apps`, { headers: { authorization: `Bearer ${readKey}` } });
      expect((await list.json()).results).toHaveLength(1);
    } finally {
      await server.stop();
    }
  });

  it('keys list shows ids and scopes but no secret, and keys revoke stops a key on a running node', async () => {
    const created = await runPortico(['keys', 'create', '--org', 'revoking-org', '--name', 'ci'], env);
    const key = created.stdout.trim();
    const listed = await runPortico(['keys', 'list', '--org', 'revoking-org', '--json'], env);
    expect(listed.code).toBe(0);
    const [entry, ...others] = JSON.parse(listed.stdout) as Record<string, string>[];
    expect(others).toEqual([]);
    expect(entry).toMatchObject({ organization: 'revoking-org', scope: 'write', name: 'ci' });
    expect(entry?.id).toMatch(/^key_/);
    const table = await runPortico(['keys', 'list'], env);
    expect(table.stdout).toMatch(new RegExp(`${entry?.id}\\s+revoking-org\\s+write\\s+ci`));
    for (const output of [listed.stdout, table.stdout]) expect(output).not.toContain(key.slice(3));

    const server = startPortico(['serve'], env);
    try {
      const url = await server.apiUrl();
      const call = () => fetch(`${url}/v1/apps`, { headers: { authorization: `Bearer ${key}` } });
      // The node has checked the key and keeps it in memory for a few seconds.
      expect((await call()).status).toBe(200);
      const revoked = await runPortico(['keys', 'revoke', entry?.id ?? ''], env);
      expect(revoked.code).toBe(0);
      expect(revoked.stderr).toContain(`revoked write key ${entry?.id} of organization revoking-org`);
      await waitUntil(async () => (await call()).status === 401, 200);
      expect((await runPortico(['keys', 'list', '--org', 'revoking-org', '--json'], env)).stdout.trim()).toBe(
        '[]',
      );
    } finally {
      await server.stop();
    }

    const again = await runPortico(['keys', 'revoke', entry?.id ?? ''], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`no API key ${entry?.id}`);
  });

  it('PORTICO_BOOTSTRAP_KEY works for organization default and is not duplicated on restart', async () => {
    const bootstrapEnv = { ...env, PORTICO_BOOTSTRAP_KEY: 'ci-bootstrap-key-0123456789abcdef' };
    for (let run = 0; run < 2; run++) {
      const server = startPortico(['serve'], bootstrapEnv);
      try {
        const url = await server.apiUrl();
        const response = await fetch(`${url}/v1/apps`, {
          headers: { authorization: 'Bearer ci-bootstrap-key-0123456789abcdef' },
        });
        expect(response.status).toBe(200);
        expect(server.output()).not.toContain('ci-bootstrap-key-0123456789abcdef');
      } finally {
        await server.stop();
      }
    }
  });

  it('keys commands refuse a store that is not there rather than make an empty one, and name the store they open', async () => {
    // An operator in another directory, without the server's PORTICO_DATA_DIR: ./data is not there.
    const elsewhere = mkdtempSync(path.join(tmpdir(), 'portico-elsewhere-'));
    try {
      const missing = path.join(elsewhere, 'data', 'portico.db');
      for (const args of [
        ['keys', 'list'],
        ['keys', 'create', '--org', 'lost'],
        ['keys', 'revoke', 'key_abcdefghijkl'],
      ]) {
        const run = await runPortico(args, { PORTICO_DATA_DIR: '', DATABASE_URL: '' }, { cwd: elsewhere });
        expect(run.code, args.join(' ')).toBe(1);
        expect(run.stdout).toBe('');
        expect(run.stderr).toBe(
          `portico: there is no Portico store at ${missing}: run this where \`portico serve\` runs, with its ` +
            'PORTICO_DATA_DIR (default ./data) or DATABASE_URL; `portico serve` or `portico migrate` makes a new store\n',
        );
      }
      expect(readdirSync(elsewhere)).toEqual([]);
    } finally {
      rmSync(elsewhere, { recursive: true, force: true });
    }
    // Which store, on stderr: stdout stays what scripts read (the key, the list).
    const listed = await runPortico(['keys', 'list', '--json'], env);
    expect(listed.code).toBe(0);
    expect(listed.stderr).toBe(`portico: store: SQLite ${path.join(dataDir, 'portico.db')}\n`);
    expect(JSON.parse(listed.stdout)).toEqual(expect.any(Array));
  });

  it.skipIf(!databaseUrl)(
    'keys create makes the first key of a new PostgreSQL database, naming the database without its password',
    async () => {
      const database = await createScratchDatabase(databaseUrl as string);
      try {
        const withPassword = new URL(database.url);
        withPassword.password = 's3cret-pw';
        const pgEnv = { DATABASE_URL: withPassword.href, PORTICO_DATA_DIR: dataDir };
        const created = await runPortico(['keys', 'create', '--org', 'pg-first'], pgEnv);
        expect(created.code, created.stderr).toBe(0);
        expect(created.stdout.trim()).toMatch(/^pk_[a-z0-9]{40}$/);
        const shown = new URL(database.url);
        shown.password = '';
        expect(created.stderr).toContain(`portico: store: PostgreSQL ${shown.href}\n`);
        expect(created.stderr).not.toContain('s3cret');
        const listed = await runPortico(['keys', 'list', '--json'], pgEnv);
        expect(JSON.parse(listed.stdout)).toEqual([expect.objectContaining({ organization: 'pg-first' })]);
      } finally {
        await database.drop();
      }
    },
  );

  it('ends quietly, with exit code 0, when the reader of its output goes away (`portico … | head -1`)', async () => {
    for (const [args, stderr] of [
      [['keys', 'list'], `portico: store: SQLite ${path.join(dataDir, 'portico.db')}\n`],
      [['apps', '--help'], ''],
    ] as const) {
      const child = spawn(process.execPath, [PORTICO_BIN, ...args], {
        env: { ...process.env, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      // The reader is gone before Portico writes a byte: its first write meets a closed pipe (EPIPE).
      child.stdout.destroy();
      let written = '';
      child.stderr.on('data', (chunk) => {
        written += chunk;
      });
      const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
      expect({ args, code, stderr: written }).toEqual({ args, code: 0, stderr });
    }
  });

  it('refuses bad usage and bad configuration with exit code 2 and a message', async () => {
    const unknown = await runPortico(['frobnicate'], env);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown command');
    const badRole = await runPortico(['serve', '--roles', 'api,teapot'], env);
    expect(badRole.code).toBe(2);
    // Off a terminal, serve's output is JSON records (PORTICO_LOG_FORMAT), a failure to start included.
    expect(JSON.parse(badRole.stderr)).toMatchObject({
      level: 60,
      msg: 'unknown role "teapot": roles are api, worker, edge, dns',
    });
    const missingOrg = await runPortico(['keys', 'create'], env);
    expect(missingOrg.code).toBe(2);
    const missingId = await runPortico(['keys', 'revoke'], env);
    expect(missingId.code).toBe(2);
    expect(missingId.stderr).toContain('portico keys revoke KEY_ID');
  });
});
