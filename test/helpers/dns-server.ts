/**
 * A real DNS server for tests: UDP and TCP on 127.0.0.1, one random port for
 * both, answering from records the test sets and changes while it runs (the
 * answers themselves are described in `dns-responder.ts`).
 *
 * It answers from a thread of its own. On the test's thread it would answer
 * only when that thread's event loop is free, and that loop is busy for
 * seconds at a time on a loaded machine (building a Fastify app compiles its
 * schemas synchronously: 0.4-1.4 s here). Resolvers that time out quickly then
 * fail for reasons no user would meet: Pebble's gives up after 2 s, and a CA
 * that cannot resolve a name fails the challenge.
 *
 * Every call below is synchronous, as it was when the server lived on the test's
 * thread: `set()` has taken effect when it returns, so the next query sees it.
 * The call is posted to the thread, which replies on the same channel and
 * raises a shared flag; this thread sleeps on the flag (Atomics.wait) and then
 * takes the reply off the channel (receiveMessageOnPort).
 */
import { fileURLToPath } from 'node:url';
import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from 'node:worker_threads';
import { buildSync } from 'esbuild';
import type {
  DnsFault,
  ReceivedQuery,
  TestRecordType,
  TestRecordValue,
  ZoneOptions,
} from './dns-responder.js';
import type { Call, Callable, Reply, ThreadData } from './dns-server-thread.js';

// The records' and faults' types are part of this server's interface: callers take them from here.
export type * from './dns-responder.js';

const HOST = '127.0.0.1';
/** Not a test's time limit: how long a call may go unanswered before the thread is taken for dead. */
const CALL_TIMEOUT_MS = 30_000;

/** Starts a server on 127.0.0.1, UDP and TCP on the same random port. */
export async function startDnsServer(): Promise<TestDnsServer> {
  const { port1, port2 } = new MessageChannel();
  const signal = new Int32Array(new SharedArrayBuffer(4));
  const workerData: ThreadData = { port: port2, signal };
  const worker = new Worker(threadCode(), { eval: true, workerData, transferList: [port2] });
  const port = await new Promise<number>((resolve, reject) => {
    worker.once('error', reject);
    worker.once('exit', (code) =>
      reject(new Error(`the DNS server thread exited (${code}) before listening`)),
    );
    worker.once('message', (message: { listening?: number; failed?: string }) => {
      if (message.listening !== undefined) resolve(message.listening);
      else reject(new Error(`the DNS server could not listen: ${message.failed}`));
    });
  });
  worker.removeAllListeners('exit');
  return new TestDnsServer(worker, port1, signal, port);
}

export class TestDnsServer {
  readonly host = HOST;

  constructor(
    private readonly worker: Worker,
    private readonly channel: MessagePort,
    private readonly signal: Int32Array,
    readonly port: number,
  ) {}

  /** `127.0.0.1:{port}`, as resolvers take it. */
  get address(): string {
    return `${HOST}:${this.port}`;
  }

  /** Every query received, in order, faulted ones included (a copy). */
  get queries(): ReceivedQuery[] {
    return this.call('queries') as ReceivedQuery[];
  }

  get queryCount(): number {
    return this.call('queryCount') as number;
  }

  /** Queries received for `name` (and `type`, if given). */
  queriesFor(name: string, type?: string): number {
    return this.call('queriesFor', name, type) as number;
  }

  /** Forgets the queries received so far. */
  resetQueries(): void {
    this.call('resetQueries');
  }

  /** Resolves once `count` queries have been received in all. */
  async waitForQueries(count: number): Promise<void> {
    while (this.queryCount < count) await new Promise((resolve) => setTimeout(resolve, 5));
  }

  /** Replaces the records of `type` at `name`. */
  set(name: string, type: TestRecordType, values: TestRecordValue | readonly TestRecordValue[]): void {
    this.call('set', name, type, values);
  }

  /**
   * Adds records of `type` at `name`. A string[] is a list of values, except
   * when given as the single value of a TXT record: `add(n, 'TXT', [['a', 'b']])`
   * is one record of two strings, `add(n, 'TXT', ['a', 'b'])` two records.
   */
  add(name: string, type: TestRecordType, values: TestRecordValue | readonly TestRecordValue[]): void {
    this.call('add', name, type, values);
  }

  /** Removes the records of `type` at `name`, or all its records. */
  remove(name: string, type?: TestRecordType): void {
    this.call('remove', name, type);
  }

  /** Removes every record and fault; the query log stays. */
  clear(): void {
    this.call('clear');
  }

  /**
   * Makes `name` a zone: an SOA and an NS record at it, and an A record for
   * its name server, so resolvers can find and reach the zone's server.
   */
  zone(name: string, options: ZoneOptions = {}): void {
    this.call('zone', name, options);
  }

  /**
   * Answers names under `zone` by asking the DNS server at `address` (`host:port`), as a recursive
   * resolver follows a delegation, also at the end of a CNAME chain that leads into the zone (the
   * ACME challenge zone delegated to Portico's dns role); null ends it.
   */
  delegate(zone: string, address: string | null): void {
    this.call('delegate', zone, address);
  }

  /**
   * Injects a fault for queries about `name` (of `type` only, if given), or
   * about any name with '*'; null lifts it. The most specific fault applies.
   */
  fault(name: string, fault: DnsFault | null, type?: TestRecordType): void {
    this.call('fault', name, fault, type);
  }

  async close(): Promise<void> {
    this.channel.close();
    await this.worker.terminate();
  }

  private call(method: Callable, ...args: unknown[]): unknown {
    Atomics.store(this.signal, 0, 0);
    this.channel.postMessage({ method, args } satisfies Call);
    // Woken is not answered: the thread raises the flag and then notifies, and a thread paused
    // between the two for the previous call notifies while this one waits. Only the flag says.
    const deadline = Date.now() + CALL_TIMEOUT_MS;
    while (Atomics.load(this.signal, 0) === 0) {
      const left = deadline - Date.now();
      if (left <= 0 || Atomics.wait(this.signal, 0, 0, left) === 'timed-out')
        throw new Error(
          `the DNS server thread did not answer ${method}() within ${CALL_TIMEOUT_MS / 1000} s`,
        );
    }
    const reply = receiveMessageOnPort(this.channel)?.message as Reply | undefined;
    if (reply === undefined)
      throw new Error(`the DNS server thread raised its flag without a reply to ${method}()`);
    if ('error' in reply) throw new Error(reply.error);
    return reply.value;
  }
}

let bundled: string | undefined;

/**
 * The thread's code, bundled once per process with its dependencies: a worker
 * started from a .ts file would bypass the TypeScript loader the tests run under.
 */
function threadCode(): string {
  bundled ??= buildSync({
    entryPoints: [fileURLToPath(new URL('./dns-server-thread.ts', import.meta.url))],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    write: false,
    logLevel: 'silent',
  }).outputFiles[0]?.text;
  if (bundled === undefined) throw new Error('esbuild produced no code for the DNS server thread');
  return bundled;
}
