/**
 * What Linux's /proc tells a test about Portico's processes, without asking Portico: the edge
 * workers a `portico serve` forked, and which process holds the server side of a TCP connection
 * (so a test knows which edge worker answered, and nothing of it shows to a client).
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** Pids of the processes whose parent is `parent` and whose command line has `argument`. */
export function childPids(parent: number, argument: string): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The command name sits in parentheses and may hold spaces: fields are counted after it.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== parent) continue;
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (argv.includes(argument)) children.push(Number(entry));
    } catch {
      // Gone between the listing and the read.
    }
  }
  return children.sort((a, b) => a - b);
}

/** The edge workers `portico serve` (pid `primary`) runs now. */
export const edgeWorkerPids = (primary: number): number[] => childPids(primary, '--edge-worker');

/** `127.0.0.1:port` as /proc/net/tcp writes it (address little-endian, port big-endian, in hex). */
const loopback = (port: number) => `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;

/**
 * The socket inode of the server's end of the loopback connection from `clientPort` to
 * `serverPort`, or undefined when there is none (closed, or not accepted yet).
 */
function serverSocketInode(serverPort: number, clientPort: number): string | undefined {
  const local = loopback(serverPort);
  const remote = loopback(clientPort);
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields[1] === local && fields[2] === remote) return fields[9];
  }
  return undefined;
}

/**
 * Which of `pids` holds the server's end of the loopback connection from `clientPort` to
 * `serverPort`; undefined if none does, or more than one (a connection Node's cluster is handing
 * from the primary to a worker is briefly held by both).
 */
export function connectionOwner(serverPort: number, clientPort: number, pids: number[]): number | undefined {
  const inode = serverSocketInode(serverPort, clientPort);
  if (inode === undefined || inode === '0') return undefined;
  const target = `socket:[${inode}]`;
  const owners = pids.filter((pid) => {
    try {
      return readdirSync(`/proc/${pid}/fd`).some((fd) => {
        try {
          return readlinkSync(`/proc/${pid}/fd/${fd}`) === target;
        } catch {
          return false;
        }
      });
    } catch {
      return false;
    }
  });
  return owners.length === 1 ? owners[0] : undefined;
}
