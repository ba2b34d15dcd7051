import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../project-root.js';
import { EDGE_ENVIRONMENT, EDGE_NODE_FLAGS, withEdgeEnvironment, withEdgeNodeFlags } from './node-flags.js';

describe('the Node options of edge processes', () => {
  it('adds the young generation bound to what the process was started with', () => {
    expect(withEdgeNodeFlags(['--enable-source-maps'], '')).toEqual([
      '--enable-source-maps',
      '--max-semi-space-size=8',
    ]);
  });

  it("keeps an operator's own bound, on the command line or in NODE_OPTIONS, in either spelling", () => {
    expect(withEdgeNodeFlags(['--max-semi-space-size=64'], '')).toEqual(['--max-semi-space-size=64']);
    expect(withEdgeNodeFlags([], '--max-old-space-size=512 --max-semi-space-size=32')).toEqual([]);
    expect(withEdgeNodeFlags([], '--max_semi_space_size=32')).toEqual([]);
    // A longer flag that merely starts alike is not the same one.
    expect(withEdgeNodeFlags(['--max-semi-space-size-extra'], '')).toEqual([
      '--max-semi-space-size-extra',
      '--max-semi-space-size=8',
    ]);
  });

  it("sets glibc's arena bound in an edge's environment, unless the operator's own or the inherited one sets it", () => {
    expect(withEdgeEnvironment({ PORTICO_ROLES: 'edge' }, {})).toEqual({
      PORTICO_ROLES: 'edge',
      MALLOC_ARENA_MAX: '2',
    });
    expect(withEdgeEnvironment({ MALLOC_ARENA_MAX: '4' }, {})).toEqual({ MALLOC_ARENA_MAX: '4' });
    // cluster.fork merges the primary's environment under the one given: an operator's value there stands.
    expect(withEdgeEnvironment({}, { MALLOC_ARENA_MAX: '8' })).toEqual({});
  });

  it('are what `portico` and `npm start` run with, so an edge in the serve process has them too', () => {
    const shebang = readFileSync(path.join(PROJECT_ROOT, 'bin', 'portico.js'), 'utf8').split('\n')[0];
    const start = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')).scripts.start;
    for (const flag of EDGE_NODE_FLAGS) {
      expect(shebang?.split(' ')).toContain(flag);
      expect(start.split(' ')).toContain(flag);
    }
    // npm runs the script with sh: an operator's own value wins over the default.
    for (const [name, value] of Object.entries(EDGE_ENVIRONMENT))
      expect(start.split(' ')).toContain(`${name}=\${${name}:-${value}}`);
  });
});
