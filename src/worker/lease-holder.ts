import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';

/**
 * Who holds a job's lease (`jobs.locked_by`): `{role}:{node}:{pid}:{incarnation}`.
 *
 * - `node` is this machine and data directory: the host name and an id kept in
 *   `{dataDir}/node-id`, so it stays the same when the process restarts (a supervisor, a container
 *   restarted on its volume) and differs between two containers that share a host name (host
 *   networking) but not a data directory.
 * - `pid` and `incarnation` (random per process, then a counter per holder in it) name the process.
 *
 * A worker that starts, and every sweep after, frees the leases of holders of its own node whose
 * process is gone (`isGoneFromThisNode`), so a restarted node takes its dead predecessor's jobs at
 * once instead of a lease time (PORTICO_JOB_LEASE_SECONDS) later. Holders of other nodes are only
 * ever freed by their lease expiring: their processes cannot be seen from here.
 */
export interface LeaseHolder {
  role: string;
  node: string;
  pid: number;
  incarnation: string;
}

/** This process among every process that ever held a lease on this node. */
const PROCESS_INCARNATION = randomBytes(6).toString('hex');
let holdersInProcess = 0;

const NODE_ID_FILE = 'node-id';

/**
 * This node's name in lease holders: the host name and the data directory's node id (made on first
 * use). When the data directory cannot be written (a read-only file system), a random id stands
 * in: leases are then recovered only by expiring, as before node ids existed.
 */
export function nodeId(dataDir: string): string {
  const host = hostname().replace(/[^A-Za-z0-9.-]/g, '-') || 'host';
  return `${host}~${dataDirId(dataDir) ?? `transient-${PROCESS_INCARNATION}`}`;
}

function dataDirId(dataDir: string): string | undefined {
  const file = path.join(dataDir, NODE_ID_FILE);
  const read = () => {
    const id = readFileSync(file, 'utf8').trim();
    return /^[0-9a-f]{16}$/.test(id) ? id : undefined;
  };
  try {
    return read();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') return undefined;
  }
  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    // 'wx': when two processes start together, one creates the file and the other reads it.
    writeFileSync(file, randomBytes(8).toString('hex'), { flag: 'wx', mode: 0o600 });
    chmodSync(file, 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') return undefined;
  }
  try {
    return read();
  } catch {
    return undefined;
  }
}

/** A new holder name for this process (each worker, and the API's inline checks, get their own). */
export function holderId(role: string, node: string): string {
  return `${role}:${node}:${process.pid}:${PROCESS_INCARNATION}.${++holdersInProcess}`;
}

export function parseHolder(id: string): LeaseHolder | undefined {
  const parts = id.split(':');
  if (parts.length !== 4) return undefined;
  const [role, node, pid, incarnation] = parts as [string, string, string, string];
  if (!/^[1-9][0-9]*$/.test(pid) || !incarnation) return undefined;
  return { role, node, pid: Number(pid), incarnation };
}

/**
 * True when `holder` was a process of `node` that no longer runs:
 * - its pid is this process's but it was another process (a container's Node is pid 1 after every
 *   restart), or
 * - no process has its pid (`kill(pid, 0)` answers ESRCH).
 * A live process with its pid (EPERM, or success), even an unrelated one that reused the pid, keeps
 * the lease until it expires: never free the lease of a process that may be alive.
 */
export function isGoneFromThisNode(holder: LeaseHolder, node: string): boolean {
  if (holder.node !== node) return false;
  if (holder.pid === process.pid) return holder.incarnation.split('.')[0] !== PROCESS_INCARNATION;
  try {
    process.kill(holder.pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
