import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createScratchDatabase } from './databases.js';
import type { Backend } from './stores.js';

export const PORTICO_BIN = path.resolve(import.meta.dirname, '../../bin/portico.js');

export interface RunningProcess {
  child: ChildProcess;
  /** Everything printed so far, stdout and stderr interleaved. */
  output(): string;
  /** Resolves with the first match of `pattern` in the output; rejects if the process exits first. */
  waitFor(pattern: RegExp): Promise<RegExpMatchArray>;
  /** The API's address, once its "Portico API listening on" line is out. */
  apiUrl(): Promise<string>;
  /** The edge's HTTPS port, once its "Portico edge listening on" line is out. */
  edgeHttpsPort(): Promise<number>;
  /** The edge's HTTP port, likewise. */
  edgeHttpPort(): Promise<number>;
  /**
   * The key the first start of an API on an empty store prints, read from the JSON start-up record
   * (`"first_api_key"`): what a log collector sees off a terminal.
   */
  firstApiKey(): Promise<string>;
  /** Stops the process (SIGTERM, then SIGKILL if it lingers) and resolves with its exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Starts `portico …` as a real process, as an operator would, with this process's environment and
 * `env` over it; a variable given as `undefined` is removed, so the process gets its default.
 */
export function startPortico(args: string[], env: Record<string, string | undefined>): RunningProcess {
  const merged = Object.entries({ ...process.env, PORTICO_LOG_LEVEL: 'info', ...env });
  const child = spawn(process.execPath, [PORTICO_BIN, ...args], {
    env: Object.fromEntries(merged.filter(([, value]) => value !== undefined)),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  const listeners = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    text += chunk.toString('utf8');
    for (const listener of listeners) listener();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  const waitFor = (pattern: RegExp) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const check = () => {
        const match = pattern.exec(text);
        if (match) {
          listeners.delete(check);
          resolve(match);
        }
      };
      listeners.add(check);
      check();
      exited.then((code) => {
        if (listeners.delete(check))
          reject(new Error(`portico exited (${code}) before printing ${pattern}:\n${text}`));
      });
    });

  return {
    child,
    output: () => text,
    waitFor,
    // PORTICO_HOST is 127.0.0.1 but where a test binds to its network namespace's address.
    apiUrl: async () => (await waitFor(/Portico API listening on (http:\/\/[\d.]+:\d+)/))[1] as string,
    edgeHttpsPort: async () =>
      Number((await waitFor(/edge listening on http:\/\/\S+ and https:\/\/[\d.]+:(\d+)/))[1]),
    edgeHttpPort: async () => Number((await waitFor(/edge listening on http:\/\/[\d.]+:(\d+) and/))[1]),
    firstApiKey: async () => (await waitFor(/"first_api_key":"(pk_[a-z0-9]{40})"/))[1] as string,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(signal);
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        const code = await exited;
        clearTimeout(timer);
        return code;
      }
      return child.exitCode;
    },
  };
}

/** Runs `portico …` to completion (in `cwd`, by default the tests' own). */
export async function runPortico(
  args: string[],
  env: Record<string, string>,
  { cwd }: { cwd?: string } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [PORTICO_BIN, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd,
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => {
    stdout += chunk;
  });
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { code, stdout, stderr };
}

/**
 * Where the Portico processes of a test keep their state, as a deployment's would: a fresh data
 * directory and, on PostgreSQL, a fresh database of its own. `env` points a process at both (on
 * SQLite it clears a DATABASE_URL the tests' environment may set); `remove()` drops them.
 */
export interface ProcessState {
  dataDir: string;
  env: { PORTICO_DATA_DIR: string; DATABASE_URL: string };
  remove(): Promise<void>;
}

export async function createProcessState(
  backend: Backend['name'],
  prefix = 'portico-',
): Promise<ProcessState> {
  const dataDir = mkdtempSync(path.join(tmpdir(), prefix));
  const database =
    backend === 'postgres' ? await createScratchDatabase(process.env.DATABASE_URL as string) : undefined;
  return {
    dataDir,
    env: { PORTICO_DATA_DIR: dataDir, DATABASE_URL: database?.url ?? '' },
    async remove() {
      await database?.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** `portico serve` started by `servePortico`, its API listening. */
export interface ServedPortico {
  process: RunningProcess;
  /** The API's address. */
  url: string;
  /**
   * A JSON request to the API as a client sends it, with `key` as the bearer: the status and the
   * parsed body.
   */
  // The body is JSON read back from the wire; tests check its shape.
  // biome-ignore lint/suspicious/noExplicitAny: see above
  call(key: string, method: string, pathname: string, body?: unknown): Promise<{ status: number; body: any }>;
  /** Stops the process, and removes the data directory if `servePortico` made it. */
  close(): Promise<void>;
}

/**
 * `portico serve` (every role, unless `args` or `env` say otherwise) as an operator starts it, on
 * SQLite in a fresh data directory unless `env` names one, with the API and the edge on free ports;
 * resolves once the API listens.
 */
export async function servePortico(
  env: Record<string, string | undefined>,
  args: string[] = ['serve'],
): Promise<ServedPortico> {
  const ownDir =
    env.PORTICO_DATA_DIR === undefined ? mkdtempSync(path.join(tmpdir(), 'portico-')) : undefined;
  const running = startPortico(args, {
    PORTICO_API_PORT: '0',
    PORTICO_EDGE_HTTP_PORT: '0',
    PORTICO_EDGE_HTTPS_PORT: '0',
    DATABASE_URL: '',
    ...(ownDir ? { PORTICO_DATA_DIR: ownDir } : {}),
    ...env,
  });
  const close = async () => {
    await running.stop();
    if (ownDir) rmSync(ownDir, { recursive: true, force: true });
  };
  let url: string;
  try {
    url = await running.apiUrl();
  } catch (error) {
    await close();
    throw error;
  }
  return {
    process: running,
    url,
    call: async (key, method, pathname, body) => {
      const response = await fetch(`${url}${pathname}`, {
        method,
        headers: {
          authorization: `Bearer ${key}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: response.status, body: await response.json() };
    },
    close,
  };
}
