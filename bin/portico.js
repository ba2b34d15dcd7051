#!/usr/bin/env -S node --max-semi-space-size=8
// The `portico` command: runs the bundle of Portico's TypeScript sources (bin/bundle.js), built
// on the first start after they change, so a clone needs no build step: `npm install && npm start`,
// or `npx portico …`. The Node option above (also in package.json's start script) bounds V8's young
// generation as src/edge-workers/node-flags.ts explains, for the edge this process may run. Its
// MALLOC_ARENA_MAX, which glibc reads before any script runs, `npm start` and edge workers set;
// started otherwise, an edge in this process does without unless its environment sets it.
import { bundledMain } from './bundle.js';

// Errors logged with their stack point at the TypeScript sources, not at the bundle.
process.setSourceMapsEnabled(true);
const { main } = await import(await bundledMain());
process.exitCode = await main(process.argv.slice(2));
