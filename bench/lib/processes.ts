/**
 * Child processes of the benchmarks (nginx, Caddy, Portico, the baseline servers) and what is read
 * about them from /proc: resident memory and CPU time. Every process started through `Processes`
 * is registered, so one `stopAll()` in a `finally` ends them all, whatever failed in between.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Started {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** What it wrote on stdout so far (the last 64 KiB). */
  output(): string;
}

const OUTPUT_LIMIT = 64 * 1024;

export class Processes {
  private readonly running = new Set<Started>();
  private readonly dirs: string[] = [];

  /** A temporary directory removed by `stopAll()`. */
  tempDir(prefix: string): string {
    const dir = mkdtempSync(path.join(tmpdir(), `portico-bench-edge-${prefix}-`));
    this.dirs.push(dir);
    return dir;
  }

  /**
   * Spawns `command`; stdout is kept (and always drained, so a chatty child never blocks), stderr
   * printed, or kept with stdout when `captureStderr`.
   */
  start(
    name: string,
    command: string,
    args: string[],
    env: NodeJS.ProcessEnv = process.env,
    { captureStderr = false } = {},
  ): Started {
    const child = spawn(command, args, {
      env,
      stdio: ['ignore', 'pipe', captureStderr ? 'pipe' : 'inherit'],
    });
    let text = '';
    const keep = (chunk: Buffer) => {
      text += chunk.toString();
      if (text.length > OUTPUT_LIMIT) text = text.slice(-OUTPUT_LIMIT);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    if (child.pid === undefined) throw new Error(`${name}: ${command} could not be started`);
    const started: Started = { name, child, pid: child.pid, output: () => text };
    this.running.add(started);
    child.once('exit', () => this.running.delete(started));
    return started;
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
  async stop(started: Started, graceMs = 5_000): Promise<void> {
    const { child } = started;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
    this.running.delete(started);
  }

  /** Ends every process still running and removes every temporary directory. */
  async stopAll(): Promise<void> {
    await Promise.all([...this.running].map((started) => this.stop(started)));
    for (const dir of this.dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Runs a benchmark script's body with its own `Processes`, and ends them all (and removes their
 * directories) when it returns, throws or is interrupted.
 */
export async function runBench(body: (processes: Processes) => Promise<void>): Promise<void> {
  const processes = new Processes();
  process.once('SIGINT', () => {
    void processes.stopAll().finally(() => process.exit(130));
  });
  try {
    await body(processes);
  } finally {
    await processes.stopAll();
  }
}

/**
 * Whether the module at `moduleUrl` (its `import.meta.url`) is the script node was started with:
 * a figure's script runs its own set-up then, and only lends its figure when bench/edge.ts imports it.
 */
export function isMain(moduleUrl: string): boolean {
  const script = process.argv[1];
  return script !== undefined && realpathSync(script) === realpathSync(fileURLToPath(moduleUrl));
}

/** Resolves with the first match of `pattern` in the process's stdout; rejects if it exits first. */
export function waitForOutput(
  started: Started,
  pattern: RegExp,
  timeoutMs = 30_000,
): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    const { child } = started;
    const check = () => {
      const match = pattern.exec(started.output());
      if (match) {
        done();
        resolve(match);
      }
    };
    const onExit = (code: number | null) => {
      done();
      reject(new Error(`${started.name} exited (${code}) before it was ready:\n${started.output()}`));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`${started.name} not ready after ${timeoutMs} ms:\n${started.output()}`));
    }, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      child.stdout?.off('data', check);
      child.off('exit', onExit);
    };
    // Registered after Processes' own listener, so output() already holds the new chunk.
    child.stdout?.on('data', check);
    child.once('exit', onExit);
    check();
  });
}

/** Resolves once something accepts TCP connections on 127.0.0.1:`port` (nginx and Caddy print nothing). */
export async function waitForPort(started: Started, port: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (started.child.exitCode !== null)
      throw new Error(`${started.name} exited (${started.child.exitCode})`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline)
      throw new Error(`${started.name}: nothing listens on ${port} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A port free on 127.0.0.1 right now (for nginx and Caddy, which cannot be told to pick one). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * VmRSS of one process, in MiB (0 once it is gone); or one of its parts (`RssAnon`: private memory,
 * `RssFile`: pages mapped from files, such as the program's binary, shared with other processes).
 */
export function rssMb(pid: number, field: 'VmRSS' | 'RssAnon' | 'RssFile' = 'VmRSS'): number {
  try {
    const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

let clockTicks: number | undefined;
/** Clock ticks per second, the unit of CPU times in /proc/<pid>/stat. */
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

interface StatLine {
  pid: number;
  ppid: number;
  cpuTicks: number;
}

function readStat(pid: number): StatLine | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name sits in parentheses and may hold spaces: fields are counted after it.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { pid, ppid: Number(fields[1]), cpuTicks: Number(fields[11]) + Number(fields[12]) };
  } catch {
    return undefined;
  }
}

/** `pid` and its descendants (nginx's master and worker, Portico and any helper it spawned). */
export function processTree(pid: number): number[] {
  const stats = readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map((entry) => readStat(Number(entry)))
    .filter((stat): stat is StatLine => stat !== undefined);
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) {
    for (const stat of stats) if (stat.ppid === tree[i] && !tree.includes(stat.pid)) tree.push(stat.pid);
  }
  return tree;
}

/** CPU seconds (user + system) used so far by `pid` alone (0 once it is gone). */
export function processCpuSeconds(pid: number): number {
  return (readStat(pid)?.cpuTicks ?? 0) / ticksPerSecond();
}

/** CPU seconds (user + system) used so far by `pid` and its descendants. */
export function cpuSeconds(pid: number): number {
  let ticks = 0;
  for (const member of processTree(pid)) ticks += readStat(member)?.cpuTicks ?? 0;
  return ticks / ticksPerSecond();
}

/**
 * CPU seconds (user + system) of this process's children that have exited and been waited for
 * (cutime and cstime of /proc/self/stat). Read before and after a child runs to completion (wrk),
 * its difference is that child's CPU time, which /proc no longer shows once it is gone.
 */
export function exitedChildrenCpuSeconds(): number {
  const text = readFileSync('/proc/self/stat', 'utf8');
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[13]) + Number(fields[14])) / ticksPerSecond();
}

/** RSS of a process tree, in MiB. */
export function treeRssMb(pid: number): number {
  return processTree(pid).reduce((sum, member) => sum + rssMb(member), 0);
}

/** Busy and total CPU ticks of the whole machine so far (/proc/stat), to see load from elsewhere. */
export interface MachineTicks {
  busy: number;
  total: number;
}

export function machineTicks(): MachineTicks {
  const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '')
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  const total = fields.slice(0, 8).reduce((sum, n) => sum + n, 0);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  return { busy: total - idle, total };
}

/** Cores the whole machine kept busy since `since`, over `seconds` of wall-clock time. */
export function machineBusyCores(since: MachineTicks, seconds: number): number {
  return (machineTicks().busy - since.busy) / ticksPerSecond() / seconds;
}

/**
 * Runs a node script and resolves with it and the URL it prints: a TypeScript one through tsx, a
 * JavaScript one (`bin/portico.js`, which runs its own bundle) as it is.
 */
export async function startServer(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ url: string; child: ChildProcess }> {
  const loader = args[0]?.endsWith('.ts') ? ['--import', 'tsx'] : [];
  const child = spawn(process.execPath, [...loader, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let text = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const match = /listening on (http:\/\/[\d.:]+)/.exec(text);
      if (match?.[1]) resolve(match[1]);
    });
    child.once('exit', (code) => reject(new Error(`server exited (${code}) before listening:\n${text}`)));
  });
  return { url, child };
}
