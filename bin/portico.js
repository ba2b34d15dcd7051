#!/usr/bin/env node
// The `portico` command: runs the bundle of Portico's TypeScript sources (bin/bundle.js), built
// on the first start after they change, so a clone needs no build step: `npm install && npm start`,
// or `npx portico …`.
import { bundledMain } from './bundle.js';

// Errors logged with their stack point at the TypeScript sources, not at the bundle.
process.setSourceMapsEnabled(true);
const { main } = await import(await bundledMain());
process.exitCode = await main(process.argv.slice(2));
