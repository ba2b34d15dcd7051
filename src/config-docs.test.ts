import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';
import { PROJECT_ROOT } from './project-root.js';

/**
 * The README's configuration table is the complete list of settings (shared/DESIGN.md): every
 * variable `loadConfig` reads has a row there. The names are collected by reading the configuration
 * through an environment that records each name asked for, so a setting added in any way, by any
 * helper, is seen, without parsing config.ts.
 */
function variablesReadByLoadConfig(): string[] {
  const asked = new Set<string>();
  const env = new Proxy({ PORTICO_DNS_SERVERS: '127.0.0.1' } as Record<string, string | undefined>, {
    get(target, name) {
      if (typeof name === 'string') asked.add(name);
      return target[name as string];
    },
  });
  loadConfig(env);
  return [...asked].sort();
}

/** The variable names in the first column of README.md's configuration table. */
function variablesInReadmeTable(): Set<string> {
  const readme = readFileSync(path.join(PROJECT_ROOT, 'README.md'), 'utf8');
  const names = new Set<string>();
  for (const line of readme.split('\n')) {
    const firstCell = /^\|\s*([^|]+)\|/.exec(line)?.[1] ?? '';
    for (const match of firstCell.matchAll(/`([A-Z][A-Z0-9_]+)`/g)) if (match[1]) names.add(match[1]);
  }
  return names;
}

describe("README's configuration table", () => {
  it('has a row for every variable the configuration reads', () => {
    const read = variablesReadByLoadConfig();
    // The proxy must have seen the well-known ones, or this test would pass on an empty list.
    expect(read).toEqual(expect.arrayContaining(['PORTICO_DATA_DIR', 'DATABASE_URL', 'PORTICO_ROLES']));
    const documented = variablesInReadmeTable();
    expect(read.filter((name) => !documented.has(name))).toEqual([]);
  });

  it('names no variable the configuration does not read', () => {
    const read = new Set(variablesReadByLoadConfig());
    // The CLI's own settings are documented with the CLI, not in this table.
    expect([...variablesInReadmeTable()].filter((name) => !read.has(name))).toEqual([]);
  });
});
