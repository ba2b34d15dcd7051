import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * Portico's own directory, where its package.json and `web/` are. Found upwards from this module
 * rather than by a fixed relative path: the module runs from `src/` in tests and from the bundle in
 * `node_modules/.cache/portico/` otherwise (bin/bundle.js).
 */
export const PROJECT_ROOT = findProjectRoot(import.meta.dirname);

function findProjectRoot(from: string): string {
  for (let dir = from; ; ) {
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest) && JSON.parse(readFileSync(manifest, 'utf8')).name === 'portico') return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`Portico's package.json is not above ${from}`);
    dir = parent;
  }
}
