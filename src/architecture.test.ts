import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from './project-root.js';

/**
 * Each part of `src/` may import only the parts docs/architecture.md's table allows: the table is
 * the rule, and this test reads both the table and every import line of `src/`, so a forbidden
 * import fails here and a changed rule is a changed document.
 *
 * A part is a folder of `src/` (`domain`, `store`, …) or a file at its top (`config`, `services`,
 * …). Imports within a part, of npm packages and of Node's modules are always allowed; type-only
 * imports count like any other (a type belongs to the part that owns it).
 */
const SRC = path.join(PROJECT_ROOT, 'src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return /\.ts$/.test(entry.name) && !/\.(test|d)\.ts$/.test(entry.name) ? [full] : [];
  });
}

/** The part a file of `src/` belongs to. */
function partOf(file: string): string {
  const [first = '', ...rest] = path.relative(SRC, file).split(path.sep);
  return rest.length > 0 ? first : first.replace(/\.[jt]s$/, '');
}

/** Relative module specifiers of a source file: static imports and exports, and dynamic imports. */
function relativeImports(text: string): string[] {
  const found: string[] = [];
  for (const match of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^;'"]*?\bfrom\s*['"](\.[^'"]+)['"]/g)) {
    if (match[1]) found.push(match[1]);
  }
  for (const match of text.matchAll(/\bimport\(\s*['"](\.[^'"]+)['"]\s*\)/g))
    if (match[1]) found.push(match[1]);
  return found;
}

/** docs/architecture.md's table: part → the parts it may import (`*`: any). */
function allowedImports(): Map<string, Set<string>> {
  const doc = readFileSync(path.join(PROJECT_ROOT, 'docs', 'architecture.md'), 'utf8');
  const start = doc.indexOf('| part | ');
  if (start < 0) throw new Error('docs/architecture.md has no "| part |" table');
  const rules = new Map<string, Set<string>>();
  for (const line of doc.slice(start).split('\n').slice(2)) {
    if (!line.startsWith('|')) break;
    const cells = line.split('|').map((cell) => cell.trim());
    const names = (cell: string | undefined) =>
      [...(cell ?? '').matchAll(/`([^`]+)`/g)].map((m) => m[1] ?? '');
    const allowed = new Set(
      names(cells[3]).map((name) => name.replace(/^src\//, '').replace(/(\/|\.ts)$/, '')),
    );
    if ((cells[3] ?? '').includes('everything')) allowed.add('*');
    for (const part of names(cells[1]))
      rules.set(part.replace(/^src\//, '').replace(/(\/|\.ts)$/, ''), allowed);
  }
  return rules;
}

/** Every import of `sources` that the rules do not allow, as `file imports specifier (from → to)`. */
function forbiddenImports(
  sources: { file: string; text: string }[],
  rules: Map<string, Set<string>>,
): string[] {
  const forbidden: string[] = [];
  for (const { file, text } of sources) {
    const from = partOf(file);
    const allowed = rules.get(from) ?? new Set();
    for (const specifier of relativeImports(text)) {
      const target = partOf(path.resolve(path.dirname(file), specifier));
      if (target === from || allowed.has('*') || allowed.has(target)) continue;
      forbidden.push(`${path.relative(SRC, file)} imports ${specifier} (${from} → ${target})`);
    }
  }
  return forbidden;
}

describe('imports between the parts of src/', () => {
  const rules = allowedImports();
  const files = sourceFiles(SRC);

  it('names every part of src/ in the table', () => {
    const parts = new Set(files.map(partOf));
    expect([...parts].filter((part) => !rules.has(part)).sort()).toEqual([]);
  });

  it('has no import the table does not allow', () => {
    const sources = files.map((file) => ({ file, text: readFileSync(file, 'utf8') }));
    expect(forbiddenImports(sources, rules)).toEqual([]);
  });

  it('finds an import the table does not allow, static, type-only or dynamic', () => {
    const at = (relative: string) => path.join(SRC, relative);
    const sources = [
      { file: at('store/sql/example.ts'), text: "import type { Config } from '../../config.js';" },
      { file: at('dns/example.ts'), text: "const lifecycle = await import('../domain/lifecycle.js');" },
      { file: at('api/example.ts'), text: "export { routeOf } from '../edge/router.js';" },
      { file: at('domain/example.ts'), text: "import { Store } from '../store/store.js';" },
    ];
    expect(forbiddenImports(sources, rules)).toEqual([
      'store/sql/example.ts imports ../../config.js (store → config)',
      'dns/example.ts imports ../domain/lifecycle.js (dns → domain)',
      'api/example.ts imports ../edge/router.js (api → edge)',
    ]);
  });
});
