/**
 * A customer's own reverse proxy in front of the edge, played by nginx (Debian's package), for tests
 * of a domain whose DNS points at something that is not the platform (issue 15): the proxy listens
 * for plain HTTP on an address of its own in 127.0.0.0/8 (every one of them is loopback on Linux),
 * passes ACME and routing-proof paths (`/.well-known/`) to the edge's HTTP port, and everything else
 * to the edge's HTTPS port with the name as SNI, verifying the edge's certificate for that name
 * against `trustedCaPem`, as a CDN in Cloudflare's "full (strict)" mode does. A request through it
 * that succeeds is one the edge answered with a certificate valid for the name.
 *
 * It terminates TLS (a layer 7 proxy, as CDNs are): Debian's nginx builds its stream module (TLS
 * passthrough) as a separate package, libnginx-mod-stream, which the machines do not have. So what
 * certificate the edge presents is read on a handshake of its own; the proxy shows it verifies.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const NGINX = '/usr/sbin/nginx';

export interface StandInProxyOptions {
  /** The proxy's own loopback address, not 127.0.0.1 where the edge listens (delegated-dns01.ts `loopbackAddress`). */
  address: string;
  edgeHttpPort: number;
  edgeHttpsPort: number;
  /** The CA the proxy trusts for the edge's certificates (Pebble's root, or Portico's local CA). */
  trustedCaPem: string;
}

export interface StandInProxy {
  readonly address: string;
  readonly port: number;
  /** GET `pathname` through the proxy for `hostname`, as a visitor whose DNS gives the proxy's address. */
  get(hostname: string, pathname?: string): Promise<{ status: number; body: string }>;
  /** nginx's error log so far (for failure messages). */
  errors(): string;
  close(): Promise<void>;
}

export async function startStandInProxy(options: StandInProxyOptions): Promise<StandInProxy> {
  const dir = mkdtempSync(path.join(tmpdir(), 'portico-proxy-'));
  const file = (name: string) => path.join(dir, name);
  writeFileSync(file('trusted.pem'), options.trustedCaPem);
  const port = await freePortOn(options.address);
  writeFileSync(
    file('nginx.conf'),
    // One process in the foreground (no master, no workers): stopped with one signal to its pid.
    `daemon off;
master_process off;
pid ${file('nginx.pid')};
error_log ${file('error.log')} warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${file('client_body')};
  proxy_temp_path ${file('proxy')};
  fastcgi_temp_path ${file('fastcgi')};
  uwsgi_temp_path ${file('uwsgi')};
  scgi_temp_path ${file('scgi')};
  server {
    listen ${options.address}:${port};
    proxy_set_header Host $host;
    location /.well-known/ {
      proxy_pass http://127.0.0.1:${options.edgeHttpPort};
    }
    location / {
      proxy_pass https://127.0.0.1:${options.edgeHttpsPort};
      proxy_ssl_server_name on;
      proxy_ssl_name $host;
      proxy_ssl_verify on;
      proxy_ssl_trusted_certificate ${file('trusted.pem')};
      # A full handshake for every request: each one checks the certificate the edge serves now.
      proxy_ssl_session_reuse off;
    }
  }
}
`,
  );
  const child = spawn(NGINX, ['-p', dir, '-c', file('nginx.conf'), '-e', file('error.log')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const errors = () =>
    stderr + (existsSync(file('error.log')) ? readFileSync(file('error.log'), 'utf8') : '');
  const close = async () => {
    await stop(child);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await listening(child, options.address, port, errors);
  } catch (error) {
    await close();
    throw error;
  }
  return {
    address: options.address,
    port,
    get: (hostname, pathname = '/') =>
      new Promise((resolve, reject) => {
        http
          .get(
            { host: options.address, port, path: pathname, headers: { host: hostname }, agent: false },
            (res) => {
              let body = '';
              res.on('data', (chunk) => {
                body += chunk;
              });
              res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
            },
          )
          .on('error', reject);
      }),
    errors,
    close,
  };
}

/** A port nothing listens on at `address` right now (nginx binds it a moment later). */
async function freePortOn(address: string): Promise<number> {
  const server = net.createServer();
  server.listen(0, address);
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

/** Resolves once nginx accepts connections; rejects when it exits first (a bad config, a port taken). */
async function listening(child: ChildProcess, host: string, port: number, errors: () => string) {
  let failed: string | undefined;
  child.once('exit', (code) => {
    failed = `nginx exited (${code}) before listening`;
  });
  child.once('error', (error) => {
    failed = `nginx (${NGINX}) could not start: ${error.message}`;
  });
  for (let wait = 10; ; wait = Math.min(wait * 2, 200)) {
    if (failed !== undefined) throw new Error(`${failed}:\n${errors()}`);
    const connected = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host, port }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (connected) return;
    await sleep(wait);
  }
}

async function stop(child: ChildProcess): Promise<void> {
  // No pid: it never started (the 'error' event said why), so there is nothing to stop.
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  await exited;
}
