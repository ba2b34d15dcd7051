import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createProcessState, PORTICO_BIN, runPortico, startPortico } from '../../helpers/process.js';
import { backends } from '../../helpers/stores.js';
import { waitUntil } from '../../helpers/wait.js';

const scratchDir = () => mkdtempSync(path.join(tmpdir(), 'portico-serve-'));

/** Every role, as `npm start` runs them; the edge on ports of its own so tests can run side by side. */
const EDGE_PORTS = { PORTICO_EDGE_HTTP_PORT: '0', PORTICO_EDGE_HTTPS_PORT: '0' };

/** A port another program holds, as the one an operator's first start collides with. */
async function occupyPort(): Promise<{ port: number; release(): Promise<void> }> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    release: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** Output as a log collector reads it: every line must be one JSON record. */
function records(output: string): Record<string, unknown>[] {
  return output
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      try {
        return JSON.parse(line) as Record<string, unknown>;
      } catch {
        throw new Error(`not a JSON log line: ${line}`);
      }
    });
}

const listApps = (url: string, key: string) =>
  fetch(`${url}/v1/apps`, { headers: { authorization: `Bearer ${key}` } });

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe.each(backends)('the first start of Portico on $name', { timeout: 120_000 }, (backend) => {
  it('fails in one line naming the setting when the API port is taken; the next start prints a key that works', async () => {
    const state = await createProcessState(backend.name, 'portico-serve-');
    cleanups.push(() => state.remove());
    // Nodes on one PostgreSQL must share the key that seals secrets; on SQLite Portico makes its own.
    const env: Record<string, string> = {
      ...state.env,
      ...(backend.name === 'postgres'
        ? { PORTICO_ENCRYPTION_KEY: Buffer.alloc(32, 7).toString('base64') }
        : {}),
    };
    const taken = await occupyPort();
    cleanups.push(() => taken.release().catch(() => undefined));
    const apiPort = String(taken.port);

    // The shipped defaults, off a terminal: JSON lines.
    const failed = await runPortico(['serve'], { ...env, ...EDGE_PORTS, PORTICO_API_PORT: apiPort });
    expect(failed.code, failed.stdout + failed.stderr).toBe(1);
    records(failed.stdout);
    // The failure on stderr, where it is looked for even when stdout goes to a file: one record.
    const [failure, ...more] = records(failed.stderr);
    expect(more).toEqual([]);
    expect(failure).toMatchObject({
      level: 60,
      msg: `port ${apiPort} (PORTICO_API_PORT) on 127.0.0.1 is already in use, by another program or another Portico: stop it, or set PORTICO_API_PORT to a free port`,
    });
    // No key was made: none could have been shown.
    expect(failed.stdout).not.toMatch(/pk_[a-z0-9]{40}/);

    await taken.release();
    const second = startPortico(['serve'], { ...env, ...EDGE_PORTS, PORTICO_API_PORT: apiPort });
    let url: string;
    try {
      url = await second.apiUrl();
      const key = await second.firstApiKey();
      expect(url).toBe(`http://127.0.0.1:${apiPort}`);
      expect((await listApps(url, key)).status).toBe(200);
      const keyRecord = records(second.output()).find((record) => record.first_api_key === key);
      expect(keyRecord?.msg).toBe(
        'No API key existed, so one was created for organization "default". It is shown only this once, in first_api_key.',
      );
    } finally {
      expect(await second.stop(), second.output()).toBe(0);
    }

    // Later starts show no key, and say how to make one, in this server's store.
    const third = startPortico(['serve'], { ...env, ...EDGE_PORTS, PORTICO_API_PORT: '0' });
    try {
      url = await third.apiUrl();
      const [, command = ''] = await third.waitFor(/"command":"([^"]+)"/);
      expect(third.output()).not.toMatch(/pk_[a-z0-9]{40}/);
      expect(command).toBe(
        env.DATABASE_URL
          ? "npx portico keys create --org default (with this server's DATABASE_URL)"
          : `PORTICO_DATA_DIR=${env.PORTICO_DATA_DIR} npx portico keys create --org default`,
      );
      // Run as the hint says, from another directory: the key it prints works on this server.
      const made = await runPortico(['keys', 'create', '--org', 'default'], env, { cwd: tmpdir() });
      expect(made.code, made.stderr).toBe(0);
      expect((await listApps(url, made.stdout.trim())).status).toBe(200);
    } finally {
      expect(await third.stop(), third.output()).toBe(0);
    }
  });
});

describe('start-up failures, for people (PORTICO_LOG_FORMAT=text)', { timeout: 60_000 }, () => {
  const dir = scratchDir();
  const env = { PORTICO_DATA_DIR: dir, DATABASE_URL: '', PORTICO_LOG_FORMAT: 'text', ...EDGE_PORTS };
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** The failure is the whole of stderr, on one line; stdout holds no JSON. */
  const failure = async (extra: Record<string, string>, args = ['serve']) => {
    const run = await runPortico(args, { ...env, ...extra });
    expect(run.stderr.endsWith('\n'), run.stderr).toBe(true);
    expect(run.stderr.trimEnd().split('\n'), run.stderr).toHaveLength(1);
    expect(run.stdout).not.toMatch(/^\{/m);
    return { code: run.code, line: run.stderr.trimEnd() };
  };

  it('names the port setting to change: the API, or either of the edge', async () => {
    const taken = await occupyPort();
    try {
      expect(await failure({ PORTICO_API_PORT: String(taken.port) })).toEqual({
        code: 1,
        line: `portico: port ${taken.port} (PORTICO_API_PORT) on 127.0.0.1 is already in use, by another program or another Portico: stop it, or set PORTICO_API_PORT to a free port`,
      });
      const edge = await failure({ PORTICO_EDGE_HTTPS_PORT: String(taken.port) }, [
        'serve',
        '--roles',
        'edge',
      ]);
      expect(edge.code).toBe(1);
      expect(edge.line).toContain(
        `port ${taken.port} (PORTICO_EDGE_HTTPS_PORT) on 127.0.0.1 is already in use`,
      );
      const same = await failure({ PORTICO_API_PORT: '8089', PORTICO_EDGE_HTTP_PORT: '8089' });
      expect(same).toEqual({
        code: 2,
        line: 'portico: PORTICO_API_PORT and PORTICO_EDGE_HTTP_PORT are both 8089: each listener needs a port of its own',
      });
    } finally {
      await taken.release();
    }
  });

  it('says what is wrong with a setting, an address or the store, and never prints a password', async () => {
    expect(await failure({ PORTICO_LOG_LEVEL: 'loud' })).toEqual({
      code: 2,
      line: 'portico: PORTICO_LOG_LEVEL must be one of trace, debug, info, warn, error, fatal, silent, got "loud"',
    });
    // A documentation address (RFC 5737) that no interface of this machine has.
    const host = await failure({ PORTICO_HOST: '192.0.2.1', PORTICO_API_PORT: '0' }, [
      'serve',
      '--roles',
      'api',
    ]);
    expect(host.code).toBe(1);
    expect(host.line).toContain('cannot listen on 192.0.2.1: it is not an address of this machine');

    const file = path.join(dir, 'not-a-directory');
    writeFileSync(file, '');
    const store = await failure({ PORTICO_DATA_DIR: file });
    expect(store.code).toBe(1);
    expect(store.line).toMatch(
      new RegExp(`^portico: could not open the store \\(SQLite ${file}/portico\\.db\\): \\S`),
    );

    const postgres = await failure({
      DATABASE_URL: 'postgres://portico:s3cret-pw@127.0.0.1:1/portico?password=s3cret-pw',
      PORTICO_ENCRYPTION_KEY: Buffer.alloc(32, 7).toString('base64'),
    });
    expect(postgres.code).toBe(1);
    expect(postgres.line).toContain(
      'portico: could not open the store (PostgreSQL postgres://portico@127.0.0.1:1/portico): ',
    );
    expect(postgres.line).toContain('ECONNREFUSED');
    expect(postgres.line).not.toContain('s3cret');
  });
});

describe('PORTICO_LOG_FORMAT', { timeout: 60_000 }, () => {
  /** `portico serve` on a fresh store, all roles, with `env` added. */
  const serveFresh = (env: Record<string, string>) => {
    const dir = scratchDir();
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    return startPortico(['serve'], {
      PORTICO_DATA_DIR: dir,
      DATABASE_URL: '',
      PORTICO_API_PORT: '0',
      ...EDGE_PORTS,
      ...env,
    });
  };

  it('json: every line a record, and at a quiet level the start-up lines and the first key still shown', async () => {
    const server = serveFresh({ PORTICO_LOG_FORMAT: 'json', PORTICO_LOG_LEVEL: 'error' });
    try {
      const key = await server.firstApiKey();
      const started = records(server.output());
      const api = started.find((record) => String(record.msg).startsWith('Portico API listening on '));
      expect(api).toMatchObject({ level: 30, url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/) });
      expect((await listApps(String(api?.url), key)).status).toBe(200);
      expect(started.map((record) => String(record.msg).split(' (')[0])).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/^Portico edge listening on http:\/\/127\.0\.0\.1:\d+ and https:/),
          'Portico worker started',
        ]),
      );
      // The key is in its own field and nowhere else, not even in the message.
      expect(started.filter((record) => JSON.stringify(record).includes(key))).toEqual([
        expect.objectContaining({ first_api_key: key }),
      ]);
    } finally {
      expect(await server.stop()).toBe(0);
    }
    records(server.output());
  });

  it('text: every line for people, log records included', async () => {
    const server = serveFresh({ PORTICO_LOG_FORMAT: 'pretty', PORTICO_LOG_LEVEL: 'info' });
    try {
      const [, url = ''] = await server.waitFor(/^Portico API listening on (http:\/\/[\d.:]+) \(docs/m);
      const [, key = ''] = await server.waitFor(/It is shown only this once:\n\n {2}(pk_[a-z0-9]{40})\n/);
      expect((await listApps(url, key)).status).toBe(200);
      await server.waitFor(/^Portico worker started \(/m);
      await server.waitFor(
        /^Portico edge listening on http:\/\/127\.0\.0\.1:\d+ and https:\/\/127\.0\.0\.1:\d+$/m,
      );
      // A request's log record, as a line.
      await server.waitFor(
        /^\d\d:\d\d:\d\d\.\d{3}Z INFO {2}request reqId=\S+ method=GET url=\/v1\/apps status=200 ms=\d+$/m,
      );
    } finally {
      expect(await server.stop()).toBe(0);
    }
    expect(server.output()).toMatch(/^\d\d:\d\d:\d\d\.\d{3}Z INFO {2}shutting down signal=SIGTERM$/m);
    expect(server.output()).not.toMatch(/^\{/m);
  });

  it('is text by default on a terminal, and log records read as lines there too', async (context) => {
    if (spawnSync('script', ['--version']).status !== 0) {
      console.warn('skipping the terminal test of the log format: script (util-linux) is not installed');
      context.skip();
    }
    const dir = scratchDir();
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    // script(1) runs the command on a pseudo-terminal of its own and copies what it shows. It runs
    // it through $SHELL -c; `exec` makes Portico the terminal's only process, since a shell that
    // stays as its parent (dash does) is killed by the Ctrl-C and script reports 130 for it.
    const child = spawn(
      'script',
      ['-q', '-e', '-f', '-c', `exec '${process.execPath}' '${PORTICO_BIN}' serve`, '/dev/null'],
      {
        env: {
          ...process.env,
          PORTICO_DATA_DIR: dir,
          DATABASE_URL: '',
          PORTICO_API_PORT: '0',
          ...EDGE_PORTS,
          PORTICO_LOG_FORMAT: '',
          PORTICO_LOG_LEVEL: 'info',
        },
        stdio: ['pipe', 'pipe', 'inherit'],
      },
    );
    let screen = '';
    child.stdout.on('data', (chunk: Buffer) => {
      screen += chunk.toString('utf8').replaceAll('\r\n', '\n');
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    cleanups.push(async () => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    await waitUntil(
      () => /It is shown only this once:\n\n {2}pk_[a-z0-9]{40}\n/.test(screen) || child.exitCode !== null,
    );
    // Ctrl-C, as a person stops it: the terminal sends SIGINT, and Portico stops cleanly.
    child.stdin.write('\u0003');
    expect(await exited, screen).toBe(0);
    expect(screen).toMatch(
      /^Portico API listening on http:\/\/127\.0\.0\.1:\d+ \(docs: \/docs, store: SQLite /m,
    );
    // Each edge worker (PORTICO_EDGE_WORKERS, the machine's cores by default) says it listens, with its number.
    expect(screen).toMatch(
      /^\d\d:\d\d:\d\d\.\d{3}Z INFO {2}\[edge\] edge: listening (worker=\d+ )?host=127\.0\.0\.1 httpPort=\d+/m,
    );
    // The terminal echoes the Ctrl-C as ^C before the line.
    expect(screen).toMatch(/^(\^C)?\d\d:\d\d:\d\d\.\d{3}Z INFO {2}shutting down signal=SIGINT$/m);
    expect(screen).not.toMatch(/^\{/m);
  });
});
