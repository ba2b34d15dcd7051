import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * A Linux network namespace joined to this one by a veth pair, for tests that need Portico to
 * reach a public-looking address: loopback and private addresses are what Portico refuses by
 * default, so a test of the defaults needs an origin somewhere else. The pair is numbered in
 * 203.0.113.0/24 (TEST-NET-3, RFC 5737): routed nowhere on the internet, and not private to the
 * guard. Each namespace takes a random /30 of it, so two runs at once, or the leftover of a run
 * that was killed before cleaning up, do not share a route.
 */
export interface NetworkNamespace {
  readonly name: string;
  /** This side of the pair (the address Portico's connections come from). */
  readonly hostAddress: string;
  /** The namespace's side: where servers started with `spawnNode` are reached. */
  readonly address: string;
  /** Runs `node args…` inside the namespace (`ip netns exec`), stdout piped, stdin piped. */
  spawnNode(args: string[]): ChildProcess;
  /** Deletes the namespace and the pair; safe to call twice or after a failed creation. */
  close(): Promise<void>;
}

/** Why namespaces cannot be made here (not root, no `ip`), or undefined when they can. */
export function namespaceUnsupported(): string | undefined {
  if (process.platform !== 'linux') return `the platform is ${process.platform}, not Linux`;
  if (process.getuid?.() !== 0) return 'the tests do not run as root';
  const ip = spawnSync('ip', ['-V']);
  if (ip.error !== undefined) return `\`ip\` (iproute2) cannot run: ${ip.error.message}`;
  return undefined;
}

/**
 * Says loudly that `file` is skipped when namespaces cannot be made here, and fails under CI, which
 * runs as root with iproute2: there a skip would hide that what it tests went untested. Answers why
 * it is skipped (for `describe.skipIf`), or undefined when it runs.
 */
export function namespaceTestGuard(file: string, what: string): string | undefined {
  const unsupported = namespaceUnsupported();
  if (unsupported === undefined) return undefined;
  const line = '!'.repeat(100);
  console.warn(
    `\n${line}\n!!! ${file} SKIPPED: ${unsupported}.\n!!! It makes a network namespace (root and iproute2 needed) ${what}.\n${line}\n`,
  );
  if (process.env.CI) throw new Error(`CI must run ${file}: ${unsupported}`);
  return unsupported;
}

export async function createNetworkNamespace(): Promise<NetworkNamespace> {
  const id = randomBytes(4).toString('hex');
  const name = `portico-${id}`;
  // Interface names have at most 15 characters.
  const hostLink = `pt${id}h`;
  const namespaceLink = `pt${id}n`;
  const base = 4 * randomInt(64);
  const hostAddress = `203.0.113.${base + 1}`;
  const address = `203.0.113.${base + 2}`;
  const children = new Set<ChildProcess>();

  const close = async () => {
    await Promise.all(
      [...children].map(async (child) => {
        if (child.exitCode === null && child.signalCode === null) {
          const exited = new Promise((resolve) => child.once('exit', resolve));
          child.kill('SIGKILL');
          await exited;
        }
      }),
    );
    // Deleting the namespace deletes its end of the pair and, some time later, this end: delete this
    // end at once too. Either may already be gone.
    await run('ip', ['netns', 'delete', name]).catch(() => undefined);
    await run('ip', ['link', 'delete', hostLink]).catch(() => undefined);
  };

  try {
    await run('ip', ['netns', 'add', name]);
    await run('ip', ['link', 'add', hostLink, 'type', 'veth', 'peer', 'name', namespaceLink]);
    await run('ip', ['link', 'set', namespaceLink, 'netns', name]);
    await run('ip', ['addr', 'add', `${hostAddress}/30`, 'dev', hostLink]);
    await run('ip', ['link', 'set', hostLink, 'up']);
    await run('ip', ['-n', name, 'addr', 'add', `${address}/30`, 'dev', namespaceLink]);
    await run('ip', ['-n', name, 'link', 'set', namespaceLink, 'up']);
    await run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  } catch (error) {
    await close();
    throw error;
  }

  return {
    name,
    hostAddress,
    address,
    spawnNode(args) {
      const child = spawn('ip', ['netns', 'exec', name, process.execPath, ...args], {
        stdio: ['pipe', 'pipe', 'inherit'],
      });
      children.add(child);
      return child;
    },
    close,
  };
}
