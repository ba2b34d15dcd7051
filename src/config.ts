import { getServers } from 'node:dns';
import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { ACME_CHALLENGE_TYPES, type AcmeChallengeType } from './acme/issuer.js';
import { ConfigError } from './config-error.js';
import { type DnsServerAddress, parseServer } from './dns/wire-transport.js';
import { normalizeHostname } from './domain/hostname.js';
import { DEFAULT_RESERVED_SLUGS, isLabel } from './domain/slug.js';
import { CONTEXT_BYTES, DEFAULT_CERT_CACHE_MB } from './edge/sni-cache.js';
import type { LogFormat } from './logger.js';
import { type EdgeAddress, parseEdgeAddress } from './probes/edge-probe.js';
import type { SqliteSynchronous } from './store/sqlite.js';
import { orgConcurrencyFor } from './worker/runner.js';

/**
 * Roles one process can run. `portico serve` runs the first three by default; `dns` (the
 * authoritative server of the ACME challenge zone) runs only where PORTICO_ROLES names it, since
 * it needs a zone and, in production, port 53.
 */
export const ALL_ROLES = ['api', 'worker', 'edge', 'dns'] as const;
export type Role = (typeof ALL_ROLES)[number];
export const DEFAULT_ROLES: readonly Role[] = ['api', 'worker', 'edge'];
export type TlsIssuerKind = 'internal' | 'acme' | 'none';
/** How log lines are written: one JSON object each (for collectors), or a line for people. */
/** pino's levels, from the most to the least verbose, and `silent`. */
const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

/**
 * Everything Portico reads from its environment, read once at start into a frozen object.
 * The variable names are part of the contract (shared/DESIGN.md): operators' scripts rely on them.
 */
export interface Config {
  dataDir: string;
  databaseUrl: string | undefined;
  roles: readonly Role[];
  host: string;
  apiPort: number;
  edgeHttpPort: number;
  edgeHttpsPort: number;
  appsDomain: string;
  cnameTarget: string;
  edgeIpv4: readonly string[];
  edgeIpv6: readonly string[];
  dnsServers: readonly string[];
  verifyRecordName: string;
  verifyValuePrefix: string;
  tlsIssuer: TlsIssuerKind;
  /**
   * The ACME CAs to order from, in order of preference (`PORTICO_ACME_DIRECTORY`, a comma list),
   * each with its external account binding if it needs one (`PORTICO_ACME_EAB_KID` /
   * `PORTICO_ACME_EAB_HMAC_KEY`, comma lists aligned with the directories, an empty entry for none).
   */
  acmeCas: readonly AcmeCaConfig[];
  acmeEmail: string | undefined;
  /**
   * The ACME profile every order asks for (`PORTICO_ACME_PROFILE`, e.g. Let's Encrypt's
   * `tlsserver` or `shortlived`), checked against the directory's `meta.profiles` at start; the
   * CA's default when unset.
   */
  acmeProfile: string | undefined;
  acmeCaFile: string | undefined;
  /**
   * ACME challenge types to answer, in order of preference (`PORTICO_ACME_CHALLENGE`): for each
   * name the first one the CA offers is used. `http-01` needs the edge on port 80 of the name,
   * `tls-alpn-01` on port 443.
   */
  acmeChallengeTypes: readonly AcmeChallengeType[];
  bootstrapKey: string | undefined;
  allowPrivateOrigins: boolean;
  logLevel: (typeof LOG_LEVELS)[number];
  logFormat: LogFormat;
  /**
   * SQLite durability. In WAL mode NORMAL keeps every committed transaction across a crash or
   * `kill -9` of the process (the WAL is written before COMMIT returns); FULL also survives a
   * power loss or kernel crash, at the price of an fsync per commit.
   */
  sqliteSynchronous: SqliteSynchronous;
  /** How long `verifying` keeps polling before the domain is `failed` (seconds). */
  verifyDeadlineSeconds: number;
  /** How often verified and active domains are checked again (seconds). */
  reverifyIntervalSeconds: number;
  /** How long one DNS query waits for its answer. */
  dnsTimeoutMs: number;
  /** Ask the zone's authoritative servers directly for ownership records (no resolver caches). */
  dnsAuthoritative: boolean;
  /** How long a worker holds a job before another may take it (a crashed worker's jobs wait this long). */
  jobLeaseSeconds: number;
  /** Jobs one worker process runs at once. */
  workerConcurrency: number;
  /** Jobs of one organization a worker runs at once; the rest of its slots wait for other organizations' work. */
  workerOrgConcurrency: number;
  /** Key that encrypts private keys at rest; required when several nodes share PostgreSQL. */
  encryptionKey: string | undefined;
  /** Renew a certificate once this fraction of its lifetime is left (1/3: the last third). */
  certRenewFraction: number;
  /** Orders placed with the CA per hour, across all workers (Let's Encrypt allows 300 per 3 h). */
  issuanceRatePerHour: number;
  /** API requests per minute per key, per API node (0: no limit); bursts up to the same number. */
  rateLimitPerMinute: number;
  /** Domains one organization may hold (all its apps together). */
  maxDomainsPerOrg: number;
  /** Apps one organization may have (`PORTICO_MAX_APPS_PER_ORG`). */
  maxAppsPerOrg: number;
  /**
   * Orders one organization's certificates may place per hour (`PORTICO_ISSUANCE_RATE_PER_ORG_PER_HOUR`,
   * default a quarter of `issuanceRatePerHour`), so one organization's burst leaves the rest of the
   * platform-wide limit to the others. Apps' default hostnames count as the platform's own.
   */
  issuanceRatePerOrgPerHour: number;
  /** Slugs no App may take (`PORTICO_RESERVED_SLUGS`), besides the CNAME target's label. */
  reservedSlugs: readonly string[];
  /** Days a deleted or renamed App's slug stays with its organization before another may take it. */
  slugHoldDays: number;
  /**
   * Memory an edge process's ready TLS contexts may take, in bytes (`PORTICO_EDGE_CERT_CACHE_MB`):
   * each certificate counts as its context's cost (sni-cache.ts, `certificateCacheBytes`), the least
   * recently used evicted first. A name evicted pays one context build on its next handshake.
   */
  edgeCertCacheBytes: number;
  /**
   * The oldest snapshot an edge serves from while the store cannot answer, in seconds
   * (`PORTICO_EDGE_SNAPSHOT_MAX_AGE_SECONDS`, default 86,400): past it, the edge serves only what it
   * has cached (src/snapshot/, docs/operations.md "When the store is down").
   */
  edgeSnapshotMaxAgeSeconds: number;
  /**
   * The delegated ACME challenge zone (`PORTICO_ACME_DNS_ZONE`, e.g. `acme.platform.example`),
   * normalized; undefined when DNS-01 delegation is not set up. The `dns` role answers for it.
   */
  acmeDnsZone: string | undefined;
  /** Where the `dns` role answers, UDP and TCP (`PORTICO_DNS_LISTEN`, default 127.0.0.1:5353; port 0: any free one). */
  dnsListen: DnsServerAddress;
  /**
   * The zone's name servers, as its NS records at the apex name them (`PORTICO_DNS_NAMESERVERS`).
   * Empty: one in-zone name, `ns.{zone}`, whose address is PORTICO_DNS_LISTEN's (dns-server/zone.ts).
   */
  dnsNameservers: readonly string[];
  /**
   * How often the worker probes each active domain at every edge address
   * (`PORTICO_PROBE_INTERVAL_SECONDS`, default 300; 0 turns probes off). Each domain gets a fixed
   * slot in the interval (probes/schedule.ts), so probes are spread, never a herd.
   */
  probeIntervalSeconds: number;
  /**
   * The edges a probe asks (`PORTICO_EDGE_PROBE_ADDRESSES`, `host:port,…`): every address visitors
   * may reach. Default: this node's edge HTTPS listener (PORTICO_HOST, an unspecified address read
   * as loopback, and PORTICO_EDGE_HTTPS_PORT); none when that port is 0 (picked at start) or this
   * node runs no edge: then probes are off until addresses are set.
   */
  edgeProbeAddresses: readonly EdgeAddress[];
  /**
   * Edge processes sharing the edge's ports (`PORTICO_EDGE_WORKERS`, default the machine's cores):
   * 1 runs the edge in the `serve` process itself; more fork that many edge workers
   * (src/edge-workers/), each with caches of its own.
   */
  edgeWorkers: number;
}

type Env = Record<string, string | undefined>;

/** One ACME CA of `PORTICO_ACME_DIRECTORY`. */
export interface AcmeCaConfig {
  directoryUrl: string;
  /** External account binding (RFC 8555 section 7.3.4), for CAs that tie accounts to their own customers. */
  eab?: { kid: string; hmacKey: string };
}

const LETS_ENCRYPT_DIRECTORY = 'https://acme-v02.api.letsencrypt.org/directory';

/**
 * `PORTICO_ACME_DIRECTORY` and the EAB lists aligned with it: entry i of `PORTICO_ACME_EAB_KID`
 * and of `PORTICO_ACME_EAB_HMAC_KEY` belong to directory i; an empty entry (or a list shorter
 * than the directories) means none. A kid without its key, or lists longer than the directories,
 * stop the start: a binding given to the wrong CA would fail only at the first order.
 */
function acmeCas(env: Env): AcmeCaConfig[] {
  const raw = optional(env, 'PORTICO_ACME_DIRECTORY') ?? LETS_ENCRYPT_DIRECTORY;
  const directories = raw.split(',').map((item) => item.trim());
  if (directories.some((item) => item === '')) {
    throw new ConfigError(`PORTICO_ACME_DIRECTORY has an empty entry: "${raw}"`);
  }
  for (const directory of directories) {
    let url: URL | undefined;
    try {
      url = new URL(directory);
    } catch {
      url = undefined;
    }
    if (url?.protocol !== 'https:') {
      throw new ConfigError(
        `PORTICO_ACME_DIRECTORY entries must be https: URLs (RFC 8555), got "${directory}"`,
      );
    }
  }
  if (new Set(directories).size !== directories.length) {
    throw new ConfigError(`PORTICO_ACME_DIRECTORY lists the same directory twice: "${raw}"`);
  }
  const aligned = (name: string): string[] => {
    const value = env[name];
    const items =
      value === undefined || value.trim() === '' ? [] : value.split(',').map((item) => item.trim());
    if (items.length > directories.length) {
      throw new ConfigError(
        `${name} has ${items.length} entries for ${directories.length} ACME directories: give one per directory, in the same order (empty for none)`,
      );
    }
    return items;
  };
  const kids = aligned('PORTICO_ACME_EAB_KID');
  const keys = aligned('PORTICO_ACME_EAB_HMAC_KEY');
  return directories.map((directoryUrl, i) => {
    const [kid, hmacKey] = [kids[i] ?? '', keys[i] ?? ''];
    if ((kid === '') !== (hmacKey === '')) {
      throw new ConfigError(
        `ACME directory ${directoryUrl} has ${kid === '' ? 'PORTICO_ACME_EAB_HMAC_KEY but no PORTICO_ACME_EAB_KID' : 'PORTICO_ACME_EAB_KID but no PORTICO_ACME_EAB_HMAC_KEY'} entry: an external account binding needs both`,
      );
    }
    return kid === '' ? { directoryUrl } : { directoryUrl, eab: { kid, hmacKey } };
  });
}

function text(env: Env, name: string, fallback: string): string {
  const value = env[name]?.trim();
  return value ? value : fallback;
}

function optional(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value ? value : undefined;
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = optional(env, name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be an integer from ${min} to ${max}, got "${raw}"`);
  }
  return value;
}

function flag(env: Env, name: string): boolean {
  return ['1', 'true', 'yes', 'on'].includes((optional(env, name) ?? '0').toLowerCase());
}

function list(env: Env, name: string): string[] {
  return (optional(env, name) ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
}

function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const raw = optional(env, name);
  if (raw === undefined) return fallback;
  const match = allowed.find((candidate) => candidate.toLowerCase() === raw.toLowerCase());
  if (!match) throw new ConfigError(`${name} must be one of ${allowed.join(', ')}, got "${raw}"`);
  return match;
}

/**
 * `PORTICO_EDGE_CERT_CACHE_MB`. It replaced `PORTICO_EDGE_CERT_CACHE_SIZE`, a count of certificates
 * whose default (10,000) took about 570 MB on Node 24: a start that still sets the old name stops
 * and names the new one, rather than run with a cache its operator did not size.
 */
function edgeCertCacheMb(env: Env): number {
  const old = optional(env, 'PORTICO_EDGE_CERT_CACHE_SIZE');
  if (old !== undefined) {
    throw new ConfigError(
      `PORTICO_EDGE_CERT_CACHE_SIZE is no longer read: the edge's certificate cache is bounded by memory. ` +
        `Set PORTICO_EDGE_CERT_CACHE_MB instead (MiB per edge process, default ${DEFAULT_CERT_CACHE_MB}; ` +
        `a certificate counts as about ${CONTEXT_BYTES / 1024} KiB), and unset PORTICO_EDGE_CERT_CACHE_SIZE`,
    );
  }
  return integer(env, 'PORTICO_EDGE_CERT_CACHE_MB', DEFAULT_CERT_CACHE_MB, 1, 1_000_000);
}

/** `PORTICO_ACME_CHALLENGE`: a challenge type, or a comma list of them in order of preference. */
function challengeTypes(env: Env, name: string): AcmeChallengeType[] {
  const types = list(env, name).map((item) => item.toLowerCase());
  for (const type of types) {
    if (!(ACME_CHALLENGE_TYPES as readonly string[]).includes(type)) {
      throw new ConfigError(
        `${name}: unknown ACME challenge type "${type}": use ${ACME_CHALLENGE_TYPES.join(', ')}, or several in ` +
          `order of preference ("dns-01,tls-alpn-01,http-01")`,
      );
    }
  }
  return types.length === 0 ? ['http-01'] : [...new Set(types as AcmeChallengeType[])];
}

/**
 * `PORTICO_EDGE_PROBE_ADDRESSES`: a comma list of `host:port`; unset, this node's own edge, asked on
 * loopback when it listens on every address. A node without the edge role has no edge of its own
 * to default to: probing a port nobody listens on would call every domain degraded.
 */
function probeAddresses(env: Env, config: Pick<Config, 'host' | 'edgeHttpsPort' | 'roles'>): EdgeAddress[] {
  const name = 'PORTICO_EDGE_PROBE_ADDRESSES';
  const given = list(env, name);
  if (given.length === 0) {
    if (config.edgeHttpsPort === 0 || !config.roles.includes('edge')) return [];
    const host = config.host === '0.0.0.0' ? '127.0.0.1' : /^[:0]+$/.test(config.host) ? '::1' : config.host;
    const spec = host.includes(':') ? `[${host}]:${config.edgeHttpsPort}` : `${host}:${config.edgeHttpsPort}`;
    return [parseEdgeAddress(spec)];
  }
  return given.map((spec) => {
    try {
      return parseEdgeAddress(spec);
    } catch (error) {
      throw new ConfigError(`${name}: ${(error as Error).message}`);
    }
  });
}

/** `PORTICO_RESERVED_SLUGS`: a comma list of labels that replaces the default list. */
function reservedSlugList(env: Env, name: string): string[] {
  const slugs = list(env, name).map((item) => item.toLowerCase());
  const wrong = slugs.find((slug) => !isLabel(slug));
  if (wrong !== undefined) {
    throw new ConfigError(`${name}: "${wrong}" is not a DNS label (letters, digits and inner hyphens)`);
  }
  return slugs.length === 0 ? [...DEFAULT_RESERVED_SLUGS] : [...new Set(slugs)];
}

/** A host name of letters, digits and inner hyphens, lowercase, without a trailing dot; or a ConfigError. */
function dnsName(name: string, value: string, what: string): string {
  const normalized = normalizeHostname(value);
  const labels = normalized.split('.');
  if (normalized.length > 253 || labels.length < 2 || !labels.every(isLabel)) {
    throw new ConfigError(`${name}: "${value}" is not ${what} (letters, digits and hyphens, with dots)`);
  }
  return normalized;
}

/**
 * `PORTICO_DNS_LISTEN`: an IP address and a port, `127.0.0.1:5353` or `[::]:53` (without a port,
 * DNS's own, 53); port 0 picks a free one.
 */
function listenAddress(env: Env, name: string, fallback: string): DnsServerAddress {
  const raw = text(env, name, fallback);
  try {
    return parseServer(raw, 53, 0);
  } catch {
    throw new ConfigError(
      `${name}: "${raw}" is not an IP address and port (like 127.0.0.1:5353, 0.0.0.0:53 or [::]:53)`,
    );
  }
}

function parseRoles(raw: string): Role[] {
  const roles = raw
    .split(',')
    .map((role) => role.trim())
    .filter(Boolean);
  for (const role of roles) {
    if (!(ALL_ROLES as readonly string[]).includes(role)) {
      throw new ConfigError(`unknown role "${role}": roles are ${ALL_ROLES.join(', ')}`);
    }
  }
  if (roles.length === 0) throw new ConfigError('at least one role is needed');
  return [...new Set(roles)] as Role[];
}

/**
 * `PORTICO_LOG_FORMAT`: `json` (a JSON object a line) or `text` (`pretty` is the same: lines for
 * people). Unset: text on a terminal, JSON anywhere else (a file, a pipe, journald, a container's
 * log driver), so `npm start` reads well and a deployment writes what its collector parses.
 * Exported for `serve`, which needs the format before the rest of the configuration, to report a
 * bad setting in it.
 */
export function readLogFormat(env: Env, terminal = process.stdout.isTTY === true): LogFormat {
  const format = oneOf(
    env,
    'PORTICO_LOG_FORMAT',
    ['json', 'text', 'pretty'] as const,
    terminal ? 'text' : 'json',
  );
  return format === 'pretty' ? 'text' : format;
}

/** Reads the configuration; `overrides` (CLI flags, tests) win over the environment. */
export function loadConfig(env: Env = process.env, overrides: Partial<Config> = {}): Config {
  const appsDomain = normalizeHostname(text(env, 'PORTICO_APPS_DOMAIN', 'apps.localhost'));
  const workerConcurrency = integer(env, 'PORTICO_WORKER_CONCURRENCY', 32, 1, 1000);
  const config: Config = {
    dataDir: path.resolve(text(env, 'PORTICO_DATA_DIR', './data')),
    databaseUrl: optional(env, 'DATABASE_URL'),
    roles: parseRoles(text(env, 'PORTICO_ROLES', DEFAULT_ROLES.join(','))),
    host: text(env, 'PORTICO_HOST', '127.0.0.1'),
    apiPort: integer(env, 'PORTICO_API_PORT', 3000, 0, 65535),
    edgeHttpPort: integer(env, 'PORTICO_EDGE_HTTP_PORT', 8080, 0, 65535),
    edgeHttpsPort: integer(env, 'PORTICO_EDGE_HTTPS_PORT', 8443, 0, 65535),
    appsDomain,
    cnameTarget: normalizeHostname(text(env, 'PORTICO_CNAME_TARGET', `cname.${appsDomain}`)),
    edgeIpv4: list(env, 'PORTICO_EDGE_IPV4'),
    edgeIpv6: list(env, 'PORTICO_EDGE_IPV6'),
    dnsServers: list(env, 'PORTICO_DNS_SERVERS').length ? list(env, 'PORTICO_DNS_SERVERS') : getServers(),
    verifyRecordName: text(env, 'PORTICO_VERIFY_RECORD_NAME', '_mixpeek-verify'),
    verifyValuePrefix: text(env, 'PORTICO_VERIFY_VALUE_PREFIX', 'mixpeek-site-verification='),
    tlsIssuer: oneOf(env, 'PORTICO_TLS_ISSUER', ['internal', 'acme', 'none'] as const, 'internal'),
    acmeCas: acmeCas(env),
    acmeEmail: optional(env, 'PORTICO_ACME_EMAIL'),
    acmeProfile: optional(env, 'PORTICO_ACME_PROFILE'),
    acmeCaFile: optional(env, 'PORTICO_ACME_CA_FILE'),
    acmeChallengeTypes: challengeTypes(env, 'PORTICO_ACME_CHALLENGE'),
    bootstrapKey: optional(env, 'PORTICO_BOOTSTRAP_KEY'),
    allowPrivateOrigins: ['1', 'true', 'yes'].includes(
      text(env, 'PORTICO_ALLOW_PRIVATE_ORIGINS', '0').toLowerCase(),
    ),
    logLevel: oneOf(env, 'PORTICO_LOG_LEVEL', LOG_LEVELS, 'info'),
    logFormat: readLogFormat(env),
    sqliteSynchronous: oneOf(env, 'PORTICO_SQLITE_SYNCHRONOUS', ['NORMAL', 'FULL'] as const, 'NORMAL'),
    verifyDeadlineSeconds: integer(env, 'PORTICO_VERIFY_DEADLINE_SECONDS', 72 * 3600, 60, 365 * 86400),
    reverifyIntervalSeconds: integer(env, 'PORTICO_REVERIFY_INTERVAL_SECONDS', 6 * 3600, 10, 30 * 86400),
    dnsTimeoutMs: integer(env, 'PORTICO_DNS_TIMEOUT_MS', 2000, 50, 60_000),
    dnsAuthoritative: flag(env, 'PORTICO_DNS_AUTHORITATIVE'),
    jobLeaseSeconds: integer(env, 'PORTICO_JOB_LEASE_SECONDS', 300, 1, 86400),
    workerConcurrency,
    workerOrgConcurrency: integer(
      env,
      'PORTICO_WORKER_ORG_CONCURRENCY',
      orgConcurrencyFor(workerConcurrency),
      1,
      1000,
    ),
    encryptionKey: optional(env, 'PORTICO_ENCRYPTION_KEY'),
    certRenewFraction: integer(env, 'PORTICO_CERT_RENEW_PERCENT', 33, 1, 90) / 100,
    issuanceRatePerHour: integer(env, 'PORTICO_ISSUANCE_RATE_PER_HOUR', 100, 1, 100_000),
    rateLimitPerMinute: integer(env, 'PORTICO_RATE_LIMIT_PER_MINUTE', 3000, 0, 10_000_000),
    maxDomainsPerOrg: integer(env, 'PORTICO_MAX_DOMAINS_PER_ORG', 10_000, 1, 100_000_000),
    edgeCertCacheBytes: edgeCertCacheMb(env) * 2 ** 20,
    edgeSnapshotMaxAgeSeconds: integer(env, 'PORTICO_EDGE_SNAPSHOT_MAX_AGE_SECONDS', 86_400, 1, 31_536_000),
    edgeWorkers: integer(env, 'PORTICO_EDGE_WORKERS', availableParallelism(), 1, 1024),
    maxAppsPerOrg: integer(env, 'PORTICO_MAX_APPS_PER_ORG', 100, 1, 10_000_000),
    issuanceRatePerOrgPerHour: 0,
    reservedSlugs: reservedSlugList(env, 'PORTICO_RESERVED_SLUGS'),
    slugHoldDays: integer(env, 'PORTICO_SLUG_HOLD_DAYS', 30, 0, 3650),
    acmeDnsZone: ((zone) => zone && dnsName('PORTICO_ACME_DNS_ZONE', zone, 'a DNS zone name'))(
      optional(env, 'PORTICO_ACME_DNS_ZONE'),
    ),
    dnsListen: listenAddress(env, 'PORTICO_DNS_LISTEN', '127.0.0.1:5353'),
    dnsNameservers: list(env, 'PORTICO_DNS_NAMESERVERS').map((server) =>
      dnsName('PORTICO_DNS_NAMESERVERS', server, 'a host name'),
    ),
    probeIntervalSeconds: integer(env, 'PORTICO_PROBE_INTERVAL_SECONDS', 300, 0, 7 * 86400),
    edgeProbeAddresses: [],
    ...overrides,
  };
  config.edgeProbeAddresses = overrides.edgeProbeAddresses ?? probeAddresses(env, config);
  // Derived from the platform-wide limit unless set: read after it, overrides included.
  config.issuanceRatePerOrgPerHour =
    overrides.issuanceRatePerOrgPerHour ??
    integer(
      env,
      'PORTICO_ISSUANCE_RATE_PER_ORG_PER_HOUR',
      Math.ceil(config.issuanceRatePerHour / 4),
      1,
      100_000,
    );
  for (const server of config.dnsServers) {
    try {
      parseServer(server);
    } catch {
      throw new ConfigError(`PORTICO_DNS_SERVERS: "${server}" is not an IP address with an optional port`);
    }
  }
  checkDnsRole(config);
  if (config.acmeChallengeTypes.includes('dns-01') && config.acmeDnsZone === undefined) {
    throw new ConfigError(
      'PORTICO_ACME_CHALLENGE includes dns-01, which Portico answers in its delegated challenge zone: set PORTICO_ACME_DNS_ZONE (and run the dns role for it)',
    );
  }
  for (const [name, addresses, family] of [
    ['PORTICO_EDGE_IPV4', config.edgeIpv4, 4],
    ['PORTICO_EDGE_IPV6', config.edgeIpv6, 6],
  ] as const) {
    const wrong = addresses.find((address) => isIP(address) !== family);
    if (wrong) throw new ConfigError(`${name}: "${wrong}" is not an IPv${family} address`);
  }
  return Object.freeze(config);
}

/**
 * What the `dns` role needs, checked when the settings are read rather than when it starts: the zone
 * it answers for, and name servers it can name. Its default name server, `ns.{zone}`, is answered
 * with the listen address, which an unspecified address (0.0.0.0, ::) is not; and a name server
 * given inside the zone would need an address Portico does not know.
 */
function checkDnsRole(config: Config): void {
  const zone = config.acmeDnsZone;
  if (zone !== undefined) {
    const inZone = config.dnsNameservers.find((server) => server === zone || server.endsWith(`.${zone}`));
    if (inZone) {
      throw new ConfigError(
        `PORTICO_DNS_NAMESERVERS: "${inZone}" is inside PORTICO_ACME_DNS_ZONE (${zone}), which cannot give its ` +
          'address: name the dns nodes by names outside the zone (ns1.platform.example), or leave it unset ' +
          `for ns.${zone} at PORTICO_DNS_LISTEN's address`,
      );
    }
  }
  if (!config.roles.includes('dns')) return;
  if (zone === undefined) {
    throw new ConfigError(
      'PORTICO_ROLES includes dns: set PORTICO_ACME_DNS_ZONE to the zone it answers for (acme.platform.example)',
    );
  }
  const unspecified = config.dnsListen.host === '0.0.0.0' || /^[:0]+$/.test(config.dnsListen.host);
  if (config.dnsNameservers.length === 0 && unspecified) {
    throw new ConfigError(
      `PORTICO_DNS_LISTEN is ${config.dnsListen.host}, which is no address to give for ns.${zone}: set ` +
        'PORTICO_DNS_NAMESERVERS to the host names of the dns nodes, as the parent zone delegates to them',
    );
  }
}
