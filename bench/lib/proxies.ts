/**
 * The reference servers of the edge benchmark, each run as a child process from a generated
 * config in a temporary directory: nginx as the origin (the baseline), nginx as a Host-routing TLS
 * reverse proxy, and Caddy's `reverse_proxy`.
 *
 * Every one of them gets one core's worth of workers, as Portico's edge (one Node.js process, one
 * JavaScript thread) has: nginx `worker_processes 1`, Caddy `GOMAXPROCS=1`. The machine has two
 * cores and wrk needs the other one; more workers would only make them fight wrk for it.
 *
 * Limits that would make one proxy look different for reasons other than its speed are aligned:
 * keep-alive connections are never closed after N requests (nginx closes them after 1,000 by
 * default, which would add full TLS handshakes to its figures only), and both proxies keep up to
 * 64 idle connections to the origin (as many as wrk's connections), as Portico's undici pool does.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { freePort, type Processes, type Started, waitForPort } from './processes.js';

export interface Certificate {
  certFile: string;
  keyFile: string;
}

export interface Server {
  readonly started: Started;
  readonly port: number;
}

const ORIGIN_BODY = 'hello';

/** Lines every nginx config shares: foreground, one worker, everything inside `dir`. */
function nginxMain(dir: string, http: string): string {
  return `daemon off;
worker_processes 1;
pid ${path.join(dir, 'nginx.pid')};
error_log ${path.join(dir, 'error.log')} warn;
${process.getuid?.() === 0 ? 'user root;' : ''}
events { worker_connections 4096; }
http {
  access_log off;
  default_type text/plain;
  keepalive_requests 10000000;
  # nginx 1.22 leaves TLS 1.3 out by default (1.23.4 added it); Portico and Caddy offer it.
  ssl_protocols TLSv1.2 TLSv1.3;
  client_body_temp_path ${path.join(dir, 'client_body')};
  proxy_temp_path ${path.join(dir, 'proxy')};
  fastcgi_temp_path ${path.join(dir, 'fastcgi')};
  uwsgi_temp_path ${path.join(dir, 'uwsgi')};
  scgi_temp_path ${path.join(dir, 'scgi')};
${http}
}
`;
}

async function startNginx(processes: Processes, name: string, port: number, http: string): Promise<Server> {
  const dir = processes.tempDir('nginx');
  const conf = path.join(dir, 'nginx.conf');
  writeFileSync(conf, nginxMain(dir, http));
  // -e: the error log before the config is read (the default, /var/log/nginx, may not be writable).
  const started = processes.start(name, 'nginx', ['-p', dir, '-c', conf, '-e', path.join(dir, 'error.log')]);
  await waitForPort(started, port);
  return { started, port };
}

/** The origin: a fixed small body, so that it is never what limits a proxy in front of it. */
export async function startOrigin(processes: Processes): Promise<Server> {
  const port = await freePort();
  return startNginx(
    processes,
    'nginx origin',
    port,
    `  server {
    listen 127.0.0.1:${port} backlog=4096;
    location / { return 200 "${ORIGIN_BODY}"; }
  }`,
  );
}

/**
 * nginx routing by Host over HTTPS: `serverName` is proxied to the origin over kept-alive
 * connections with the headers Portico's edge sets too; any other SNI name is refused during the
 * handshake (`ssl_reject_handshake`), as Portico refuses names it does not serve.
 */
export async function startNginxProxy(
  processes: Processes,
  serverName: string,
  cert: Certificate,
  originPort: number,
): Promise<Server> {
  const port = await freePort();
  return startNginx(
    processes,
    'nginx proxy',
    port,
    `  upstream origin {
    server 127.0.0.1:${originPort};
    keepalive 64;
    keepalive_requests 10000000;
  }
  server {
    listen 127.0.0.1:${port} ssl default_server backlog=4096;
    ssl_reject_handshake on;
  }
  server {
    listen 127.0.0.1:${port} ssl;
    server_name ${serverName};
    ssl_certificate ${cert.certFile};
    ssl_certificate_key ${cert.keyFile};
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto https;
      proxy_set_header X-Forwarded-Host $host;
    }
  }`,
  );
}

/**
 * Caddy 2.6 `reverse_proxy` with the given certificate: no admin endpoint, no automatic HTTPS (no
 * redirects, no certificate management), and its storage, home and autosaved config in a temporary
 * directory. Its stderr (start-up lines at info level, printed before the config is read) is kept
 * with its output rather than printed.
 */
export async function startCaddy(
  processes: Processes,
  serverName: string,
  cert: Certificate,
  originPort: number,
): Promise<Server> {
  const dir = processes.tempDir('caddy');
  const port = await freePort();
  const caddyfile = path.join(dir, 'Caddyfile');
  writeFileSync(
    caddyfile,
    `{
	admin off
	auto_https off
	storage file_system ${path.join(dir, 'storage')}
	log {
		level ERROR
	}
}

https://${serverName}:${port} {
	bind 127.0.0.1
	tls ${cert.certFile} ${cert.keyFile}
	reverse_proxy 127.0.0.1:${originPort} {
		transport http {
			keepalive_idle_conns_per_host 64
		}
	}
}
`,
  );
  const started = processes.start(
    'caddy',
    'caddy',
    ['run', '--config', caddyfile, '--adapter', 'caddyfile'],
    {
      ...process.env,
      GOMAXPROCS: '1',
      HOME: dir,
      XDG_CONFIG_HOME: path.join(dir, 'config'),
      XDG_DATA_HOME: path.join(dir, 'data'),
    },
    { captureStderr: true },
  );
  await waitForPort(started, port);
  return { started, port };
}
