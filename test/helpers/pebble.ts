/**
 * Pebble, Let's Encrypt's test CA, as a real process for one test file.
 *
 * Debian's `pebble` package ships the binary only: no configuration and no
 * certificate for its own HTTPS listener. So each instance gets a temporary
 * directory with a throwaway CA and a `localhost` certificate made by
 * `openssl`, and a configuration listening on free loopback ports, so test
 * files running in parallel never share a Pebble.
 *
 * Pebble validates HTTP-01 and TLS-ALPN-01 challenges by resolving the name
 * through the DNS server given (the test's loopback server) and connecting to
 * `httpPort` (HTTP-01) or `tlsPort` (TLS-ALPN-01) of the address it gets.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';

const run = promisify(execFile);
const HOST = '127.0.0.1';

export interface PebbleOptions {
  /** `host:port` of the DNS server Pebble's validation authority asks. */
  dnsServer: string;
  /**
   * Port Pebble connects to for HTTP-01. Pass the port of a responder already listening, so no other
   * process can take it in between; a free port is picked when omitted.
   */
  httpPort?: number;
  /**
   * Port Pebble connects to for TLS-ALPN-01: an HTTPS listener already listening (the edge's), as
   * for `httpPort`; a free port is picked when omitted.
   */
  tlsPort?: number;
  /**
   * Percentage of valid nonces Pebble rejects as `badNonce` (`PEBBLE_WFE_NONCEREJECT`). Left
   * unset, Pebble's own default applies: 5%, a real fault every client must survive.
   */
  nonceRejectPercent?: number;
  /**
   * Makes Pebble require external account binding (RFC 8555 section 7.3.4) with this key id and
   * HMAC key (base64url), as CAs that tie accounts to their customers do.
   */
  externalAccountBinding?: { kid: string; hmacKey: string };
}

export interface Pebble {
  /** The ACME directory, over HTTPS signed by `caPem`. */
  directoryUrl: string;
  /** The throwaway CA of Pebble's own HTTPS listeners (not the CA that issues certificates). */
  caPem: string;
  /** The same CA as a file, as `PORTICO_ACME_CA_FILE` takes it. */
  caFile: string;
  httpPort: number;
  tlsPort: number;
  /** The root that issued certificates chain to; Pebble makes a new one at each start. */
  rootPem(): Promise<string>;
  /**
   * What Pebble's management interface says of the certificate with this serial (hex, as
   * `X509Certificate.serialNumber` gives it): `Valid` or `Revoked`, and the reason it was revoked with.
   */
  certificateStatus(serialHex: string): Promise<{ status: string; reason?: number }>;
  /** Everything Pebble printed so far (for failure messages). */
  output(): string;
  /** Stops Pebble without cleaning up, as a CA outage: `resume()` starts it again on the same ports. */
  pause(): Promise<void>;
  resume(): Promise<void>;
  stop(): Promise<void>;
}

/** A throwaway CA and a certificate for `localhost`, `127.0.0.1` and `::1` signed by it, as PEM files. */
export interface LocalhostTls {
  caFile: string;
  certFile: string;
  keyFile: string;
}

/** Makes a CA and a `localhost` server certificate with `openssl` in `dir`. */
export async function createLocalhostTls(dir: string): Promise<LocalhostTls> {
  const file = (name: string) => path.join(dir, name);
  const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  await run('openssl', [
    'req',
    '-x509',
    ...ecKey,
    '-keyout',
    file('ca.key'),
    '-out',
    file('ca.pem'),
    '-days',
    '2',
    '-subj',
    '/CN=Portico tests throwaway HTTPS CA',
  ]);
  await run('openssl', [
    'req',
    ...ecKey,
    '-keyout',
    file('key.pem'),
    '-out',
    file('cert.csr'),
    '-subj',
    '/CN=localhost',
  ]);
  await writeFile(
    file('cert.ext'),
    'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n',
  );
  await run('openssl', [
    'x509',
    '-req',
    '-in',
    file('cert.csr'),
    '-CA',
    file('ca.pem'),
    '-CAkey',
    file('ca.key'),
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    file('cert.ext'),
    '-out',
    file('cert.pem'),
  ]);
  return { caFile: file('ca.pem'), certFile: file('cert.pem'), keyFile: file('key.pem') };
}

/** A port nothing listens on right now; another process may still take it before it is used. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, HOST);
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

export async function startPebble(options: PebbleOptions): Promise<Pebble> {
  const dir = await mkdtemp(path.join(tmpdir(), 'portico-pebble-'));
  try {
    const tls = await createLocalhostTls(dir);
    const caPem = await readFile(tls.caFile, 'utf8');
    // The listeners' ports are picked free but only taken when Pebble binds them: when another
    // process got there first, start over with new ones.
    for (let attempt = 1; ; attempt++) {
      try {
        return await launch(dir, tls, caPem, options);
      } catch (error) {
        if (!(error instanceof PortTakenError) || attempt === 5) throw error;
      }
    }
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

class PortTakenError extends Error {}

async function launch(
  dir: string,
  tls: LocalhostTls,
  caPem: string,
  options: PebbleOptions,
): Promise<Pebble> {
  const [listenPort, managementPort, tlsPort, httpPort] = await Promise.all([
    freePort(),
    freePort(),
    options.tlsPort ?? freePort(),
    options.httpPort ?? freePort(),
  ]);
  const configFile = path.join(dir, 'pebble-config.json');
  await writeFile(
    configFile,
    JSON.stringify({
      pebble: {
        listenAddress: `${HOST}:${listenPort}`,
        managementListenAddress: `${HOST}:${managementPort}`,
        certificate: tls.certFile,
        privateKey: tls.keyFile,
        httpPort,
        tlsPort,
        ocspResponderURL: '',
        externalAccountBindingRequired: options.externalAccountBinding !== undefined,
        ...(options.externalAccountBinding && {
          externalAccountMACKeys: {
            [options.externalAccountBinding.kid]: options.externalAccountBinding.hmacKey,
          },
        }),
      },
    }),
  );

  const env: NodeJS.ProcessEnv = { ...process.env, PEBBLE_VA_NOSLEEP: '1', PEBBLE_AUTHZREUSE: '0' };
  delete env.PEBBLE_WFE_NONCEREJECT;
  if (options.nonceRejectPercent !== undefined)
    env.PEBBLE_WFE_NONCEREJECT = String(options.nonceRejectPercent);
  let text = '';
  const spawnPebble = () => {
    const started = spawn('pebble', ['-config', configFile, '-dnsserver', options.dnsServer], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const collect = (chunk: Buffer) => {
      text += chunk.toString('utf8');
    };
    started.stdout?.on('data', collect);
    started.stderr?.on('data', collect);
    return started;
  };
  let child = spawnPebble();
  const halt = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    }
  };

  const directoryUrl = `https://${HOST}:${listenPort}/dir`;
  const rootUrl = `https://${HOST}:${managementPort}/roots/0`;
  const management = new Agent({ connect: { ca: caPem } });
  try {
    await serving(child, [directoryUrl, rootUrl], management, () => text);
  } catch (error) {
    child.kill('SIGKILL');
    await management.close();
    throw error;
  }

  return {
    directoryUrl,
    caPem,
    caFile: tls.caFile,
    httpPort,
    tlsPort,
    output: () => text,
    rootPem: async () => {
      const response = await request(rootUrl, { dispatcher: management });
      const body = await response.body.text();
      if (response.statusCode !== 200)
        throw new Error(`pebble /roots/0 answered ${response.statusCode}: ${body}`);
      return body;
    },
    certificateStatus: async (serialHex) => {
      const url = `https://${HOST}:${managementPort}/cert-status-by-serial/${serialHex.toLowerCase()}`;
      const response = await request(url, { dispatcher: management });
      const body = await response.body.text();
      if (response.statusCode !== 200) {
        throw new Error(`pebble /cert-status-by-serial answered ${response.statusCode}: ${body}`);
      }
      const parsed = JSON.parse(body) as { Status: string; Reason?: number };
      return { status: parsed.Status, reason: parsed.Reason };
    },
    pause: halt,
    resume: async () => {
      child = spawnPebble();
      await serving(child, [directoryUrl, rootUrl], management, () => text);
    },
    stop: async () => {
      await halt();
      await management.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Resolves once every URL answers 200. Pebble logs its directory's address a moment before binding
 * the port, so the log cannot tell; asking can. Rejects when Pebble exits first (a port taken in
 * the meantime becomes PortTakenError) or cannot start at all.
 */
async function serving(
  child: ChildProcess,
  urls: readonly string[],
  dispatcher: Agent,
  output: () => string,
): Promise<void> {
  const failed = new Promise<never>((_, reject) => {
    child.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        error.code === 'ENOENT'
          ? new Error('pebble is not installed: `apt-get install pebble` (Debian 12 and later package it)')
          : error,
      ),
    );
    child.once('exit', (code) => {
      const text = output();
      const message = `pebble exited (${code}) before serving its directory:\n${text}`;
      reject(/address already in use/.test(text) ? new PortTakenError(message) : new Error(message));
    });
  });
  // Rejections surface through the races below; this keeps one that comes later from going unhandled.
  failed.catch(() => {});
  for (let wait = 10; ; wait = Math.min(wait * 2, 200)) {
    const answers = await Promise.race([Promise.all(urls.map((url) => answers200(url, dispatcher))), failed]);
    if (answers.every(Boolean)) return;
    await Promise.race([sleep(wait), failed]);
  }
}

/** Whether `url` answers 200; false while nothing listens there yet. */
async function answers200(url: string, dispatcher: Agent): Promise<boolean> {
  try {
    const response = await request(url, { dispatcher });
    await response.body.dump();
    return response.statusCode === 200;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ECONNREFUSED') return false;
    throw error;
  }
}
