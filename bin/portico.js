#!/usr/bin/env node
// The `portico` command. Portico runs its TypeScript sources directly through tsx's loader, so a
// clone needs no build step: `npm install && npm start`, or `npx portico …`.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/main.ts');
process.exitCode = await main(process.argv.slice(2));
