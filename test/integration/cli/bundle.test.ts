import { execFile } from 'node:child_process';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const repository = path.resolve(import.meta.dirname, '../../..');

/**
 * bin/portico.js runs a bundle of src/ that bin/bundle.js builds on the first start after the
 * sources change. Here both scripts run in a copy of the project whose src/ is one small module, so
 * the test can change the sources and see what the next start runs.
 */
describe('the portico command and its bundle', () => {
  const project = mkdtempSync(path.join(tmpdir(), 'portico-bundle-'));
  afterAll(() => rmSync(project, { recursive: true, force: true }));
  mkdirSync(path.join(project, 'bin'));
  mkdirSync(path.join(project, 'src', 'cli'), { recursive: true });
  for (const file of [
    'bin/portico.js',
    'bin/bundle.js',
    'package.json',
    'package-lock.json',
    'tsconfig.json',
  ]) {
    copyFileSync(path.join(repository, file), path.join(project, file));
  }
  // Dependencies (esbuild among them) from the repository's install; the cache goes inside it, so
  // the bundles are looked for under the copy's own cache folder below.
  mkdirSync(path.join(project, 'node_modules', '.cache'), { recursive: true });
  for (const entry of readdirSync(path.join(repository, 'node_modules'))) {
    if (entry === '.cache') continue;
    symlinkSync(path.join(repository, 'node_modules', entry), path.join(project, 'node_modules', entry));
  }
  const cache = path.join(project, 'node_modules', '.cache', 'portico');

  const writeSources = (answer: string) => {
    // A lazily imported module, as the real commands are: the bundle is split into chunks.
    writeFileSync(
      path.join(project, 'src', 'cli', 'answer.ts'),
      `export const answer = (): string => ${JSON.stringify(answer)};\n`,
    );
    writeFileSync(
      path.join(project, 'src', 'main.ts'),
      `export async function main(argv: string[]): Promise<number> {
  const { answer } = await import('./cli/answer.js');
  console.log(answer(), argv.join(' '));
  return 3;
}\n`,
    );
  };
  const portico = async (...args: string[]) => {
    try {
      await promisify(execFile)(process.execPath, [path.join(project, 'bin', 'portico.js'), ...args]);
      throw new Error('expected exit code 3');
    } catch (error) {
      const { code, stdout } = error as { code: number; stdout: string };
      return { code, stdout: stdout.trim() };
    }
  };

  it('builds the bundle on first start, reuses it, and builds again when a source changes', async () => {
    writeSources('first');
    expect(await portico('a', 'b')).toEqual({ code: 3, stdout: 'first a b' });
    const [firstBuild, ...others] = readdirSync(cache);
    expect(others).toEqual([]);
    expect(readdirSync(path.join(cache, firstBuild as string))).toContain('main.js');

    expect(await portico()).toEqual({ code: 3, stdout: 'first' });
    expect(readdirSync(cache)).toEqual([firstBuild]);

    writeSources('second, longer');
    expect(await portico()).toEqual({ code: 3, stdout: 'second, longer' });
    // The earlier bundle stays a while for processes started from it (its lazy chunks).
    expect(readdirSync(cache)).toHaveLength(2);
    expect(readdirSync(cache)).toContain(firstBuild);
  });

  it('leaves no half-built bundle behind when several start at once', async () => {
    writeSources('together');
    const results = await Promise.all(Array.from({ length: 4 }, () => portico()));
    expect(results).toEqual(Array.from({ length: 4 }, () => ({ code: 3, stdout: 'together' })));
    expect(readdirSync(cache).filter((entry) => entry.endsWith('.tmp'))).toEqual([]);
  });
});
