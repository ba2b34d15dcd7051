/**
 * What one TLS context costs on a runtime, in time and memory: bench/lib/context-cost-process.ts
 * run on that runtime, while nothing else of the benchmark runs.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { ContextCost } from './context-cost-process.js';
import type { Processes } from './processes.js';
import type { Runtime } from './runtimes.js';

export type { ContextCost } from './context-cost-process.js';

const here = path.dirname(new URL(import.meta.url).pathname);

export interface CertificateAndKey {
  certificatePem: string;
  privateKeyPem: string;
}

/** Measures `runtime`'s context cost over `certificates` (distinct ones: the memory figure holds each). */
export async function contextCost(
  processes: Processes,
  runtime: Runtime,
  certificates: CertificateAndKey[],
): Promise<ContextCost> {
  const input = path.join(processes.tempDir('contexts'), 'certificates.json');
  writeFileSync(input, JSON.stringify({ certificates }));
  // From the runtime's own root, where tsx is installed for it.
  const { stdout } = await promisify(execFile)(
    runtime.node,
    ['--expose-gc', '--import', 'tsx', path.join(here, 'context-cost-process.ts'), input],
    { cwd: runtime.root, maxBuffer: 1 << 20 },
  );
  const cost = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as ContextCost;
  if (cost.version !== runtime.version) {
    throw new Error(`context cost measured on ${cost.version}, meant for ${runtime.version}`);
  }
  return cost;
}
