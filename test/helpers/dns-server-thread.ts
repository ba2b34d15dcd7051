/**
 * The test DNS server's thread: runs a DnsResponder and answers the calls that
 * `dns-server.ts` makes from the test's thread. See that file for why.
 */
import { type MessagePort, parentPort, workerData } from 'node:worker_threads';
import { DnsResponder } from './dns-responder.js';

export interface ThreadData {
  /** The calls arrive here; each reply goes back on it before `signal` is raised. */
  port: MessagePort;
  /** Int32 slot 0: set to 1 once a reply has been posted. */
  signal: Int32Array;
}

/** The responder methods the test's thread may call. */
export const CALLABLE = [
  'queryCount',
  'queries',
  'queriesFor',
  'resetQueries',
  'set',
  'add',
  'remove',
  'clear',
  'zone',
  'fault',
  'delegate',
] as const;
export type Callable = (typeof CALLABLE)[number];

export interface Call {
  method: Callable;
  args: unknown[];
}
export type Reply = { value: unknown } | { error: string };

const { port, signal } = workerData as ThreadData;
const responder = new DnsResponder();

port.on('message', ({ method, args }: Call) => {
  let reply: Reply;
  try {
    if (!CALLABLE.includes(method)) throw new Error(`not a DNS server call: ${method}`);
    const member = responder[method];
    reply = {
      value:
        typeof member === 'function'
          ? (member as (...a: unknown[]) => unknown).apply(responder, args)
          : member,
    };
  } catch (error) {
    reply = { error: error instanceof Error ? error.message : String(error) };
  }
  port.postMessage(reply);
  Atomics.store(signal, 0, 1);
  Atomics.notify(signal, 0);
});

responder.listen().then(
  () => parentPort?.postMessage({ listening: responder.port }),
  (error: unknown) =>
    parentPort?.postMessage({ failed: error instanceof Error ? error.message : String(error) }),
);
