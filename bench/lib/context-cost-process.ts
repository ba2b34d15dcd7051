/**
 * A child process of the edge benchmark, run on each runtime measured (node --expose-gc --import
 * tsx): what one TLS context costs there, as the edge builds one per certificate it keeps ready
 * (src/edge/sni-cache.ts: Node's createSecureContext on the certificate chain and key).
 *
 * - Memory: the growth of this process's RSS while it holds a context for each certificate given
 *   (distinct ones, as the edge's cache holds), after garbage collection, divided by their count.
 * - Time: the median of 500 builds of the first certificate, after 50 not counted.
 *
 * Reads `{ certificates: [{ certificatePem, privateKeyPem }] }` from the JSON file named by its
 * argument, and prints one JSON line: `ContextCost`.
 */
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContext } from 'node:tls';

export interface ContextCost {
  version: string;
  openssl: string;
  /** Median µs of one createSecureContext. */
  buildMicros: number;
  /** RSS growth per context held, in KiB. */
  kibPerContext: number;
  /** Contexts held for the memory figure. */
  contexts: number;
}

interface Input {
  certificates: { certificatePem: string; privateKeyPem: string }[];
}

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');

const rss = (): number => {
  // Twice: a first collection may leave finalizers whose memory a second one frees.
  gc();
  gc();
  return process.memoryUsage().rss;
};

const { certificates } = JSON.parse(readFileSync(process.argv[2] as string, 'utf8')) as Input;
const [first] = certificates;
if (!first) throw new Error('no certificate given');
const build = (certificate: { certificatePem: string; privateKeyPem: string }) =>
  createSecureContext({ cert: certificate.certificatePem, key: certificate.privateKeyPem });

// Memory first, before any context has been freed: malloc would hand a freed one's memory to the
// next, and RSS would not grow. A few held first, so one-off allocations (OpenSSL's tables, the
// JIT) are not counted.
const held: SecureContext[] = [];
for (let i = 0; i < 20; i++) held.push(build(first));
const before = rss();
for (const certificate of certificates) held.push(build(certificate));
const after = rss();
const counted = held.length - 20;

for (let i = 0; i < 50; i++) build(first);
const micros: number[] = [];
for (let i = 0; i < 500; i++) {
  const started = process.hrtime.bigint();
  build(first);
  micros.push(Number(process.hrtime.bigint() - started) / 1000);
}
micros.sort((a, b) => a - b);

const cost: ContextCost = {
  version: process.version,
  openssl: process.versions.openssl,
  buildMicros: micros[Math.floor(micros.length / 2)] as number,
  kibPerContext: (after - before) / 1024 / counted,
  contexts: counted,
};
console.log(JSON.stringify(cost));
