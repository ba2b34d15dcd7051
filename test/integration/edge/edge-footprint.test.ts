import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { type RunningProcess, startPortico } from '../../helpers/process.js';

/**
 * What an edge process loads: an edge-only node (and every edge worker) serves stored certificates
 * and never orders one, so it must not load the ACME client, which with its dependencies costs an
 * edge process about 40 MB on Node 24 (the RSS target of bench:edge:start is 200 MB per process).
 * Node's module hooks (`module.register`, preloaded through NODE_OPTIONS) write every npm package
 * the process resolves to a file; the worker-only run shows that the same hook sees acme-client when
 * it is loaded, so the edge's check can fail.
 */

/** The hook, run in Node's loader thread: appends the package of each resolved module to PACKAGES_LOG. */
const HOOKS = `
import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  const at = resolved.url.lastIndexOf('/node_modules/');
  if (at >= 0) {
    const name = /^(@[^/]+\\/[^/]+|[^/]+)/.exec(resolved.url.slice(at + '/node_modules/'.length))?.[1];
    if (name && name !== '.cache') appendFileSync(process.env.PACKAGES_LOG, name + '\\n');
  }
  return resolved;
}
`;

describe('the npm packages a node loads, by role', () => {
  let dir: string;
  let portico: RunningProcess | undefined;

  afterEach(async () => {
    await portico?.stop();
    portico = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  async function packagesLoaded(roles: string, ready: RegExp): Promise<Set<string>> {
    dir = mkdtempSync(path.join(tmpdir(), 'portico-footprint-'));
    const hooks = path.join(dir, 'hooks.mjs');
    writeFileSync(hooks, HOOKS);
    const register = path.join(dir, 'register.mjs');
    writeFileSync(
      register,
      `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`,
    );
    const log = path.join(dir, 'packages.log');
    writeFileSync(log, '');
    portico = startPortico(['serve', '--roles', roles], {
      NODE_OPTIONS: `--import ${pathToFileURL(register).href}`,
      PACKAGES_LOG: log,
      PORTICO_DATA_DIR: dir,
      DATABASE_URL: '',
      PORTICO_EDGE_HTTP_PORT: '0',
      PORTICO_EDGE_HTTPS_PORT: '0',
      PORTICO_EDGE_WORKERS: '1',
      // As in production: certificates from an ACME CA (none is asked: nothing is ordered here).
      PORTICO_TLS_ISSUER: 'acme',
      PORTICO_ACME_DIRECTORY: 'https://127.0.0.1:1/dir',
      PORTICO_ACME_EMAIL: 'ops@platform.test',
    });
    await portico.waitFor(ready);
    return new Set(readFileSync(log, 'utf8').split('\n').filter(Boolean));
  }

  it('an edge-only node serves without loading the ACME client', async () => {
    const loaded = await packagesLoaded('edge', /edge listening on/);
    // What the edge does need, so the hook demonstrably saw this process's packages.
    expect(loaded).toContain('undici');
    expect(loaded).not.toContain('acme-client');
  });

  it('a worker, which orders certificates, loads it', async () => {
    const loaded = await packagesLoaded('worker', /Portico worker started/);
    expect(loaded).toContain('acme-client');
  });
});
