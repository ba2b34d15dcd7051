import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';

export const PORTICO_BIN = path.resolve(import.meta.dirname, '../../bin/portico.js');

export interface RunningProcess {
  child: ChildProcess;
  /** Everything printed so far, stdout and stderr interleaved. */
  output(): string;
  /** Resolves with the first match of `pattern` in the output; rejects if the process exits first. */
  waitFor(pattern: RegExp): Promise<RegExpMatchArray>;
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

  return {
    child,
    output: () => text,
    waitFor: (pattern) =>
      new Promise((resolve, reject) => {
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
      }),
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
