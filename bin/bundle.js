// Portico's TypeScript sources, as the `portico` command runs them: one esbuild bundle, built into
// node_modules/.cache/portico the first time Portico starts after a change to its sources, and
// reused by every start after that (a clone still needs no build step: `npm install && npm start`).
//
// Why not a TypeScript loader (tsx) at run time: its hooks run in a loader thread of their own and
// transform every module at every start. That thread alone held about 50 MB of each process's RSS
// (an idle edge: 173 MB through tsx, 124 MB from the bundle), and every node of a cluster paid it.
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const root = path.resolve(import.meta.dirname, '..');
const cacheDir = path.join(root, 'node_modules', '.cache', 'portico');
/** Bundles of older sources are removed once this old: a process started from one may still load its chunks. */
const STALE_AFTER_MS = 24 * 3600_000;

/**
 * The URL of the bundled `src/main.ts`, building it first if the sources changed since the last
 * build. When the cache cannot be written (a read-only install), the sources run through tsx.
 */
export async function bundledMain() {
  const version = sourceVersion();
  const outdir = path.join(cacheDir, version);
  const entry = path.join(outdir, 'main.js');
  try {
    statSync(entry);
  } catch {
    try {
      await build(outdir);
    } catch (error) {
      if (!['EACCES', 'EROFS', 'EPERM'].includes(error?.code)) throw error;
      const { register } = await import('tsx/esm/api');
      register();
      return pathToFileURL(path.join(root, 'src', 'main.ts')).href;
    }
  }
  return pathToFileURL(entry).href;
}

/** A digest of every file the bundle is made from (path, size, mtime), and of the tools making it. */
function sourceVersion() {
  const hash = createHash('sha256');
  const files = [
    ...walk(path.join(root, 'src')),
    path.join(root, 'package-lock.json'),
    path.join(root, 'tsconfig.json'),
    import.meta.filename,
  ];
  for (const file of files) {
    const { size, mtimeMs } = statSync(file);
    hash.update(`${path.relative(root, file)}\0${size}\0${mtimeMs}\n`);
  }
  hash.update(process.version);
  return hash.digest('hex').slice(0, 16);
}

function* walk(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) yield* walk(file);
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts')) yield file;
  }
}

async function build(outdir) {
  // Built aside, then renamed into place: processes starting together (a cluster, a test run) may
  // each build, and whichever renames first wins; nobody ever loads a half-written bundle.
  const scratch = `${outdir}.${process.pid}.tmp`;
  mkdirSync(cacheDir, { recursive: true });
  const esbuild = await import('esbuild');
  await esbuild.build({
    absWorkingDir: root,
    entryPoints: { main: 'src/main.ts' },
    outdir: scratch,
    bundle: true,
    // Each role and command is imported lazily (src/main.ts): a chunk each, so an edge-only process
    // still loads no API code.
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    // Dependencies stay in node_modules, loaded by Node as usual (native addons among them).
    packages: 'external',
    // Stack traces in logs point at the TypeScript sources (`portico` enables source maps).
    sourcemap: 'linked',
    sourcesContent: false,
    logLevel: 'warning',
  });
  try {
    renameSync(scratch, outdir);
  } catch (error) {
    rmSync(scratch, { recursive: true, force: true });
    // Another process finished the same build first.
    if (error?.code !== 'ENOTEMPTY' && error?.code !== 'EEXIST') throw error;
  }
  removeStale(path.basename(outdir));
}

function removeStale(current) {
  for (const entry of readdirSync(cacheDir)) {
    if (entry === current) continue;
    const dir = path.join(cacheDir, entry);
    if (Date.now() - statSync(dir).mtimeMs > STALE_AFTER_MS) rmSync(dir, { recursive: true, force: true });
  }
}
