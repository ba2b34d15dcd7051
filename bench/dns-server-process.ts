// The loopback DNS server of the tests, in a process of its own so that answering queries does not
// share an event loop with the worker being measured. Driven over the IPC channel by the bench.
import { type DnsFault, startDnsServer, type TestRecordType } from '../test/helpers/dns-server.js';

type Command =
  | { op: 'set'; records: [name: string, type: TestRecordType, value: string][] }
  | { op: 'fault'; names: string[]; fault: DnsFault }
  | { op: 'delegate'; zone: string; address: string }
  | { op: 'count' }
  | { op: 'reset' };

const dns = await startDnsServer();
process.on('message', (command: Command) => {
  if (command.op === 'set') for (const [name, type, value] of command.records) dns.add(name, type, value);
  if (command.op === 'fault') for (const name of command.names) dns.fault(name, command.fault);
  if (command.op === 'delegate') dns.delegate(command.zone, command.address);
  if (command.op === 'reset') dns.resetQueries();
  process.send?.({ op: command.op, port: dns.port, count: dns.queryCount });
});
process.send?.({ op: 'ready', port: dns.port, count: 0 });
