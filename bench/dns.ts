/**
 * npm run bench:dns — queries per second of the dns role (`portico serve --roles dns`, reading each
 * answer from the store) against the loopback DNS server of the tests (bench/dns-server-process.ts,
 * answering from memory on a thread of its own), both asked for the same 100 challenge TXT names
 * under one zone by dnsperf (Debian's package) over UDP, 100 queries outstanding. Each server runs
 * in a process of its own; each is measured twice, alternating, and the mean is kept. The role is
 * measured on SQLite and, with DATABASE_URL, on PostgreSQL. Target: at least 0.5 of the baseline.
 */
import { execFile, fork, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { createStore } from '../src/store/index.js';
import { createScratchDatabase } from '../test/helpers/databases.js';
import { decode, dnsQuery, txtValues, udpExchange } from '../test/helpers/dns-client.js';
import { type Processes, runBench, waitForOutput } from './lib/processes.js';
import { fixed, ratio, verdict } from './lib/report.js';

const ZONE = 'acme.bench.test';
const NAMES = 100;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const OUTSTANDING = 100;
const TARGET = 0.5;
const here = path.dirname(new URL(import.meta.url).pathname);
const execFileAsync = promisify(execFile);

if (spawnSync('dnsperf', ['-h']).error) {
  console.error('bench:dns needs dnsperf: apt-get install dnsperf');
  process.exit(1);
}

const labels = Array.from({ length: NAMES }, (_, i) => `l${String(i).padStart(3, '0')}`);
/** A DNS-01 value's shape: the base64url SHA-256 of a key authorization, 43 characters. */
const challengeValue = (label: string) => `${label}-${'k'.repeat(39)}`.slice(0, 43);

/** The tests' DNS server in its own process, holding the zone and the same TXT records. */
async function startBaseline(): Promise<{ port: number; stop: () => void }> {
  const child = fork(path.join(here, 'dns-server-process.ts'), [], { execArgv: ['--import', 'tsx'] });
  const replies: ((reply: { port: number }) => void)[] = [];
  child.on('message', (reply: { port: number }) => replies.shift()?.(reply));
  const ask = (command?: object) =>
    new Promise<{ port: number }>((resolve) => {
      replies.push(resolve);
      if (command) child.send(command);
    });
  const { port } = await ask();
  await ask({
    op: 'set',
    records: [
      [ZONE, 'SOA', `ns.${ZONE} hostmaster.${ZONE}`],
      [ZONE, 'NS', `ns.${ZONE}`],
      ...labels.map((label) => [`${label}.${ZONE}`, 'TXT', challengeValue(label)]),
    ],
  });
  return { port, stop: () => child.kill() };
}

/** The dns role on a store (SQLite in its data directory, or `databaseUrl`), holding the same records. */
async function startRole(processes: Processes, databaseUrl?: string): Promise<number> {
  const dataDir = processes.tempDir('dns');
  const env = {
    ...process.env,
    PORTICO_DATA_DIR: dataDir,
    DATABASE_URL: databaseUrl ?? '',
    PORTICO_ROLES: 'dns',
    PORTICO_ACME_DNS_ZONE: ZONE,
    PORTICO_DNS_LISTEN: '127.0.0.1:0',
    PORTICO_LOG_FORMAT: 'text',
    PORTICO_LOG_LEVEL: 'warn',
  };
  const role = processes.start(
    databaseUrl ? 'dns role (PostgreSQL)' : 'dns role (SQLite)',
    process.execPath,
    [path.join(here, '..', 'bin', 'portico.js'), 'serve'],
    env,
  );
  const port = Number((await waitForOutput(role, /Portico dns listening on 127\.0\.0\.1:(\d+)/))[1]);
  const store = await createStore({ dataDir, databaseUrl });
  const now = new Date();
  for (const label of labels) {
    await store.putDnsChallenge({
      label,
      value: challengeValue(label),
      domainId: null,
      createdAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + 3600_000).toISOString(),
    });
  }
  await store.close();
  return port;
}

interface Run {
  qps: number;
  lost: number;
  sent: number;
  /** dnsperf's "Response codes" line: NOERROR for every answer, or what else came. */
  codes: string;
}

/** Refuses to measure a server that does not give the right answer: a wrong one can be fast. */
async function checkAnswers(name: string, port: number): Promise<void> {
  for (const label of [labels[0], labels.at(-1)] as string[]) {
    const answer = decode(
      await udpExchange(port, dnsQuery(`${label}.${ZONE}`, 'TXT'), '127.0.0.1', { resendEveryMs: 500 }),
    );
    const values = txtValues(answer);
    if (values.length !== 1 || values[0] !== challengeValue(label)) {
      throw new Error(
        `${name} answered ${label}.${ZONE} TXT with ${JSON.stringify(values)}, not ${challengeValue(label)}`,
      );
    }
  }
}

/** dnsperf against 127.0.0.1:`port` for SECONDS, cycling through the names. */
async function dnsperf(port: number, dataFile: string): Promise<Run> {
  const { stdout } = await execFileAsync('dnsperf', [
    ...['-s', '127.0.0.1', '-p', String(port), '-d', dataFile],
    ...['-l', String(SECONDS), '-q', String(OUTSTANDING), '-t', '2'],
  ]);
  const number = (pattern: RegExp) => Number(pattern.exec(stdout)?.[1] ?? Number.NaN);
  const completed = number(/Queries completed:\s+(\d+)/);
  return {
    qps: number(/Queries per second:\s+([\d.]+)/),
    lost: number(/Queries lost:\s+(\d+)/),
    sent: number(/Queries sent:\s+(\d+)/) || completed,
    codes: /Response codes:\s+(.*)/.exec(stdout)?.[1]?.trim() ?? '?',
  };
}

await runBench(async (processes) => {
  const dataFile = path.join(processes.tempDir('dnsperf'), 'queries.txt');
  writeFileSync(dataFile, labels.map((label) => `${label}.${ZONE} TXT\n`).join(''));

  const baseline = await startBaseline();
  const scratch = process.env.DATABASE_URL
    ? await createScratchDatabase(process.env.DATABASE_URL)
    : undefined;
  try {
    const servers: { name: string; port: number }[] = [
      { name: 'test DNS server (baseline, from memory)', port: baseline.port },
      { name: 'dns role, SQLite', port: await startRole(processes) },
    ];
    if (scratch)
      servers.push({ name: 'dns role, PostgreSQL', port: await startRole(processes, scratch.url) });
    else console.warn('DATABASE_URL is not set: the dns role is measured on SQLite only');

    for (const server of servers) await checkAnswers(server.name, server.port);
    const runs = new Map<string, Run[]>(servers.map((server) => [server.name, []]));
    for (let round = 0; round < 2; round++) {
      for (const server of servers) runs.get(server.name)?.push(await dnsperf(server.port, dataFile));
    }

    const mean = (name: string) => {
      const list = runs.get(name) ?? [];
      return {
        qps: list.reduce((sum, run) => sum + run.qps, 0) / list.length,
        lost: list.reduce((sum, run) => sum + run.lost, 0),
        sent: list.reduce((sum, run) => sum + run.sent, 0),
        codes: [...new Set(list.map((run) => run.codes))].join('; '),
      };
    };
    const base = mean(servers[0]?.name ?? '').qps;
    console.log(
      `\nDNS queries per second: ${NAMES} TXT names, UDP, ${OUTSTANDING} outstanding, ${SECONDS} s × 2 each (dnsperf)`,
    );
    console.log('| server | queries/s | ÷ baseline | lost | response codes | target |');
    console.log('|---|---:|---:|---:|---|---|');
    for (const [index, server] of servers.entries()) {
      const figure = mean(server.name);
      const target = index === 0 ? '' : `≥ ${TARGET}: ${verdict(figure.qps / base >= TARGET)}`;
      console.log(
        `| ${server.name} | ${fixed(figure.qps, 0)} | ${ratio(figure.qps, base)} | ${figure.lost} of ${figure.sent} | ${figure.codes} | ${target} |`,
      );
    }
  } finally {
    baseline.stop();
    // The roles are stopped by runBench; the scratch database goes once they are.
    await processes.stopAll();
    await scratch?.drop();
  }
});
