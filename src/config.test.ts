import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { loadConfig, readLogFormat } from './config.js';
import { ConfigError } from './config-error.js';
import { DEFAULT_CERT_CACHE_MB } from './edge/sni-cache.js';

describe('PORTICO_ACME_DIRECTORY and the external account bindings aligned with it', () => {
  const cas = (env: Record<string, string>) =>
    loadConfig({ PORTICO_DNS_SERVERS: '127.0.0.1', ...env }).acmeCas;
  const [le, zero, google] = [
    'https://acme-v02.api.letsencrypt.org/directory',
    'https://acme.zerossl.com/v2/DV90',
    'https://dv.acme-v02.api.pki.goog/directory',
  ];

  it("defaults to Let's Encrypt alone, without a binding", () => {
    expect(cas({})).toEqual([{ directoryUrl: le }]);
  });

  it('takes CAs in order of preference, each with its binding or none (an empty entry)', () => {
    expect(
      cas({
        PORTICO_ACME_DIRECTORY: ` ${le}, ${zero} ,${google}`,
        PORTICO_ACME_EAB_KID: ',zero-kid,google-kid',
        PORTICO_ACME_EAB_HMAC_KEY: ',zero-key,google-key',
      }),
    ).toEqual([
      { directoryUrl: le },
      { directoryUrl: zero, eab: { kid: 'zero-kid', hmacKey: 'zero-key' } },
      { directoryUrl: google, eab: { kid: 'google-kid', hmacKey: 'google-key' } },
    ]);
    // Lists shorter than the directories: the rest need none.
    expect(
      cas({
        PORTICO_ACME_DIRECTORY: `${zero},${le}`,
        PORTICO_ACME_EAB_KID: 'k',
        PORTICO_ACME_EAB_HMAC_KEY: 'h',
      }),
    ).toEqual([{ directoryUrl: zero, eab: { kid: 'k', hmacKey: 'h' } }, { directoryUrl: le }]);
  });

  it.each([
    [{ PORTICO_ACME_DIRECTORY: `${le},,${zero}` }, 'PORTICO_ACME_DIRECTORY has an empty entry'],
    [{ PORTICO_ACME_DIRECTORY: 'http://ca.test/dir' }, 'must be https: URLs'],
    [{ PORTICO_ACME_DIRECTORY: `${le},${le}` }, 'lists the same directory twice'],
    [
      { PORTICO_ACME_DIRECTORY: le, PORTICO_ACME_EAB_KID: 'a,b', PORTICO_ACME_EAB_HMAC_KEY: 'a,b' },
      'PORTICO_ACME_EAB_KID has 2 entries for 1 ACME directories',
    ],
    [
      { PORTICO_ACME_DIRECTORY: `${le},${zero}`, PORTICO_ACME_EAB_KID: ',kid' },
      `ACME directory ${zero} has PORTICO_ACME_EAB_KID but no PORTICO_ACME_EAB_HMAC_KEY`,
    ],
  ])('refuses %j with a clear error', (env, message) => {
    expect(() => cas(env)).toThrow(ConfigError);
    expect(() => cas(env)).toThrow(message);
  });
});

describe('PORTICO_ACME_CHALLENGE', () => {
  const challenge = (value: string | undefined) =>
    loadConfig({ PORTICO_ACME_CHALLENGE: value, PORTICO_DNS_SERVERS: '127.0.0.1' }).acmeChallengeTypes;

  it('defaults to http-01', () => {
    expect(challenge(undefined)).toEqual(['http-01']);
    expect(challenge(' ')).toEqual(['http-01']);
  });

  it('takes one type, or a list in order of preference', () => {
    expect(challenge('tls-alpn-01')).toEqual(['tls-alpn-01']);
    expect(challenge('tls-alpn-01,http-01')).toEqual(['tls-alpn-01', 'http-01']);
    expect(challenge(' HTTP-01 , tls-alpn-01 ,http-01')).toEqual(['http-01', 'tls-alpn-01']);
  });

  it.each([
    ['dns-1', 'dns-1'],
    ['http-01,tls-alpn', 'tls-alpn'],
    ['http01', 'http01'],
  ])('rejects %j, naming the wrong type and the ones it takes', (value, wrong) => {
    const load = () => challenge(value);
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(
      `PORTICO_ACME_CHALLENGE: unknown ACME challenge type "${wrong}": use http-01, tls-alpn-01, dns-01, or several ` +
        'in order of preference ("dns-01,tls-alpn-01,http-01")',
    );
  });

  it('takes dns-01 with the delegated challenge zone it is answered in, and only with one', () => {
    const zone = { PORTICO_ACME_DNS_ZONE: 'acme.platform.example', PORTICO_DNS_SERVERS: '127.0.0.1' };
    expect(loadConfig({ ...zone, PORTICO_ACME_CHALLENGE: 'dns-01,http-01' }).acmeChallengeTypes).toEqual([
      'dns-01',
      'http-01',
    ]);
    expect(() => challenge('dns-01')).toThrow(
      /PORTICO_ACME_CHALLENGE includes dns-01.*set PORTICO_ACME_DNS_ZONE/,
    );
  });
});

describe('PORTICO_EDGE_CERT_CACHE_MB', () => {
  const bytes = (env: Record<string, string | undefined>) =>
    loadConfig({ ...env, PORTICO_DNS_SERVERS: '127.0.0.1' }).edgeCertCacheBytes;

  it("defaults to the edge's budget and takes MiB", () => {
    expect(bytes({})).toBe(DEFAULT_CERT_CACHE_MB * 2 ** 20);
    expect(bytes({ PORTICO_EDGE_CERT_CACHE_MB: '256' })).toBe(256 * 2 ** 20);
  });

  it.each(['0', '-1', '2.5', 'lots', '64MB'])('rejects %j with the range it takes', (value) => {
    expect(() => bytes({ PORTICO_EDGE_CERT_CACHE_MB: value })).toThrow(
      new ConfigError(`PORTICO_EDGE_CERT_CACHE_MB must be an integer from 1 to 1000000, got "${value}"`),
    );
  });

  it('stops a start that still sets PORTICO_EDGE_CERT_CACHE_SIZE, naming the setting that replaced it', () => {
    const load = () => bytes({ PORTICO_EDGE_CERT_CACHE_SIZE: '10000' });
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(
      /PORTICO_EDGE_CERT_CACHE_SIZE is no longer read.*Set PORTICO_EDGE_CERT_CACHE_MB instead/,
    );
    // Even beside the new one: the old name would otherwise look as if it still counted.
    expect(() => bytes({ PORTICO_EDGE_CERT_CACHE_SIZE: '500', PORTICO_EDGE_CERT_CACHE_MB: '64' })).toThrow(
      /PORTICO_EDGE_CERT_CACHE_SIZE is no longer read/,
    );
  });
});

describe('PORTICO_EDGE_WORKERS', () => {
  const workers = (value: string | undefined) =>
    loadConfig({ PORTICO_EDGE_WORKERS: value, PORTICO_DNS_SERVERS: '127.0.0.1' }).edgeWorkers;

  it("defaults to the machine's cores and takes a count", () => {
    expect(workers(undefined)).toBe(availableParallelism());
    expect(workers('1')).toBe(1);
    expect(workers('4')).toBe(4);
  });

  it.each(['0', '-2', '1.5', 'all'])('rejects %j with the range it takes', (value) => {
    expect(() => workers(value)).toThrow(
      new ConfigError(`PORTICO_EDGE_WORKERS must be an integer from 1 to 1024, got "${value}"`),
    );
  });
});

describe('tenancy limits', () => {
  const load = (env: Record<string, string> = {}) => loadConfig({ PORTICO_DNS_SERVERS: '127.0.0.1', ...env });

  it('defaults to 100 apps per organization, a 30-day slug hold, and a quarter of the issuance rate per organization', () => {
    const config = load();
    expect(config.maxAppsPerOrg).toBe(100);
    expect(config.slugHoldDays).toBe(30);
    expect(config.issuanceRatePerHour).toBe(100);
    expect(config.issuanceRatePerOrgPerHour).toBe(25);
  });

  it('derives the per-organization issuance rate from the platform one unless set', () => {
    expect(load({ PORTICO_ISSUANCE_RATE_PER_HOUR: '10' }).issuanceRatePerOrgPerHour).toBe(3);
    expect(load({ PORTICO_ISSUANCE_RATE_PER_HOUR: '1' }).issuanceRatePerOrgPerHour).toBe(1);
    expect(
      load({ PORTICO_ISSUANCE_RATE_PER_HOUR: '10', PORTICO_ISSUANCE_RATE_PER_ORG_PER_HOUR: '7' })
        .issuanceRatePerOrgPerHour,
    ).toBe(7);
  });

  it.each([
    ['PORTICO_MAX_APPS_PER_ORG', '0'],
    ['PORTICO_SLUG_HOLD_DAYS', '-1'],
    ['PORTICO_ISSUANCE_RATE_PER_ORG_PER_HOUR', '0'],
    ['PORTICO_RESERVED_SLUGS', 'www,not a label'],
    ['PORTICO_RESERVED_SLUGS', 'www,-x'],
  ])('refuses %s=%j', (name, value) => {
    expect(() => load({ [name]: value })).toThrow(ConfigError);
  });
});

describe('PORTICO_LOG_FORMAT', () => {
  it('is text on a terminal and JSON anywhere else, unless set', () => {
    expect(readLogFormat({}, true)).toBe('text');
    expect(readLogFormat({}, false)).toBe('json');
    expect(readLogFormat({ PORTICO_LOG_FORMAT: 'json' }, true)).toBe('json');
    expect(readLogFormat({ PORTICO_LOG_FORMAT: 'text' }, false)).toBe('text');
    expect(readLogFormat({ PORTICO_LOG_FORMAT: ' Pretty ' }, false)).toBe('text');
  });

  it('rejects another format, naming the ones it takes', () => {
    expect(() => readLogFormat({ PORTICO_LOG_FORMAT: 'yaml' }, true)).toThrow(
      new ConfigError('PORTICO_LOG_FORMAT must be one of json, text, pretty, got "yaml"'),
    );
  });
});

describe('PORTICO_LOG_LEVEL', () => {
  const level = (value: string | undefined) =>
    loadConfig({ PORTICO_LOG_LEVEL: value, PORTICO_DNS_SERVERS: '127.0.0.1' }).logLevel;

  it("takes pino's levels in any case, info by default", () => {
    expect(level(undefined)).toBe('info');
    expect(level('WARN')).toBe('warn');
    expect(level('silent')).toBe('silent');
  });

  it('rejects an unknown level at start, not with a stack trace from the logger', () => {
    expect(() => level('verbose')).toThrow(
      new ConfigError(
        'PORTICO_LOG_LEVEL must be one of trace, debug, info, warn, error, fatal, silent, got "verbose"',
      ),
    );
  });
});

describe('PORTICO_WORKER_ORG_CONCURRENCY', () => {
  const load = (env: Record<string, string>) => loadConfig({ PORTICO_DNS_SERVERS: '127.0.0.1', ...env });

  it('leaves a quarter of a worker’s slots, at least one, to other organizations by default', () => {
    expect(load({}).workerOrgConcurrency).toBe(24);
    expect(load({ PORTICO_WORKER_CONCURRENCY: '8' }).workerOrgConcurrency).toBe(6);
    expect(load({ PORTICO_WORKER_CONCURRENCY: '2' }).workerOrgConcurrency).toBe(1);
    expect(load({ PORTICO_WORKER_CONCURRENCY: '1' }).workerOrgConcurrency).toBe(1);
  });

  it('takes a count, and rejects what is not one', () => {
    expect(load({ PORTICO_WORKER_ORG_CONCURRENCY: '32' }).workerOrgConcurrency).toBe(32);
    expect(() => load({ PORTICO_WORKER_ORG_CONCURRENCY: '0' })).toThrow(
      new ConfigError('PORTICO_WORKER_ORG_CONCURRENCY must be an integer from 1 to 1000, got "0"'),
    );
  });
});

describe('the dns role and its zone', () => {
  const load = (env: Record<string, string> = {}) => loadConfig({ PORTICO_DNS_SERVERS: '127.0.0.1', ...env });

  it('runs api, worker and edge by default, and dns only where named', () => {
    expect(load().roles).toEqual(['api', 'worker', 'edge']);
    expect(load({ PORTICO_ROLES: 'dns', PORTICO_ACME_DNS_ZONE: 'acme.platform.test' }).roles).toEqual([
      'dns',
    ]);
  });

  it('reads the zone normalized, and listens on 127.0.0.1:5353 unless told', () => {
    const config = load({ PORTICO_ROLES: 'dns', PORTICO_ACME_DNS_ZONE: ' Acme.Platform.Test. ' });
    expect(config.acmeDnsZone).toBe('acme.platform.test');
    expect(config.dnsListen).toEqual({ host: '127.0.0.1', port: 5353, family: 4 });
    expect(config.dnsNameservers).toEqual([]);
    expect(load().acmeDnsZone).toBeUndefined();
  });

  it.each([
    ['0.0.0.0:53', { host: '0.0.0.0', port: 53, family: 4 }],
    ['[::]:5353', { host: '::', port: 5353, family: 6 }],
    ['[::1]:0', { host: '::1', port: 0, family: 6 }],
    ['127.0.0.2', { host: '127.0.0.2', port: 53, family: 4 }],
  ])('takes PORTICO_DNS_LISTEN=%j', (value, expected) => {
    expect(load({ PORTICO_DNS_LISTEN: value }).dnsListen).toEqual(expected);
  });

  it.each(['localhost:53', '127.0.0.1:', '127.0.0.1:65536', '127.0.0.1:-1', '::1:53x'])(
    'refuses PORTICO_DNS_LISTEN=%j, saying what it takes',
    (value) => {
      expect(() => load({ PORTICO_DNS_LISTEN: value })).toThrow(
        new ConfigError(
          `PORTICO_DNS_LISTEN: "${value}" is not an IP address and port (like 127.0.0.1:5353, 0.0.0.0:53 or [::]:53)`,
        ),
      );
    },
  );

  it('refuses the dns role without a zone', () => {
    expect(() => load({ PORTICO_ROLES: 'api,dns' })).toThrow(
      new ConfigError(
        'PORTICO_ROLES includes dns: set PORTICO_ACME_DNS_ZONE to the zone it answers for (acme.platform.example)',
      ),
    );
  });

  it.each(['acme', 'acme..test', '-acme.test', 'acme_zone.test', 'a b.test'])(
    'refuses PORTICO_ACME_DNS_ZONE=%j',
    (zone) => {
      expect(() => load({ PORTICO_ACME_DNS_ZONE: zone })).toThrow(ConfigError);
    },
  );

  it('takes name servers outside the zone, and refuses one inside it', () => {
    const zone = { PORTICO_ACME_DNS_ZONE: 'acme.platform.test' };
    expect(
      load({ ...zone, PORTICO_DNS_NAMESERVERS: 'NS1.platform.test, ns2.platform.test' }).dnsNameservers,
    ).toEqual(['ns1.platform.test', 'ns2.platform.test']);
    expect(() =>
      load({ ...zone, PORTICO_DNS_NAMESERVERS: 'ns1.platform.test,ns.acme.platform.test' }),
    ).toThrow(/PORTICO_DNS_NAMESERVERS: "ns.acme.platform.test" is inside PORTICO_ACME_DNS_ZONE/);
  });

  it('needs name servers when it listens on every address, which is no address for ns.{zone}', () => {
    const env = {
      PORTICO_ROLES: 'dns',
      PORTICO_ACME_DNS_ZONE: 'acme.platform.test',
      PORTICO_DNS_LISTEN: '0.0.0.0:53',
    };
    expect(() => load(env)).toThrow(
      /PORTICO_DNS_LISTEN is 0.0.0.0, which is no address to give for ns.acme.platform.test/,
    );
    expect(() => load({ ...env, PORTICO_DNS_LISTEN: '[::]:53' })).toThrow(/PORTICO_DNS_LISTEN is ::/);
    expect(load({ ...env, PORTICO_DNS_NAMESERVERS: 'ns1.platform.test' }).dnsListen.host).toBe('0.0.0.0');
  });
});

describe('serving probes', () => {
  const load = (env: Record<string, string>) => loadConfig({ PORTICO_DNS_SERVERS: '127.0.0.1', ...env });
  const labels = (env: Record<string, string>) => load(env).edgeProbeAddresses.map((a) => a.label);

  it('probes every 5 minutes, at this node’s edge, asked on loopback when it listens everywhere', () => {
    expect(load({}).probeIntervalSeconds).toBe(300);
    expect(labels({})).toEqual(['127.0.0.1:8443']);
    expect(labels({ PORTICO_HOST: '0.0.0.0', PORTICO_EDGE_HTTPS_PORT: '443' })).toEqual(['127.0.0.1:443']);
    expect(labels({ PORTICO_HOST: '::' })).toEqual(['[::1]:8443']);
    // A port picked at start is not known here: no default address.
    expect(labels({ PORTICO_EDGE_HTTPS_PORT: '0' })).toEqual([]);
    // A worker-only node has no edge of its own: probes wait for addresses.
    expect(labels({ PORTICO_ROLES: 'api,worker' })).toEqual([]);
    expect(labels({ PORTICO_ROLES: 'worker', PORTICO_EDGE_PROBE_ADDRESSES: '10.0.0.5:443' })).toEqual([
      '10.0.0.5:443',
    ]);
    expect(load({ PORTICO_PROBE_INTERVAL_SECONDS: '0' }).probeIntervalSeconds).toBe(0);
  });

  it('takes a list of edge addresses, and names a wrong one', () => {
    expect(
      labels({ PORTICO_EDGE_PROBE_ADDRESSES: '10.0.0.5:443, [2001:db8::5]:443,edge-2.internal' }),
    ).toEqual(['10.0.0.5:443', '[2001:db8::5]:443', 'edge-2.internal']);
    const wrong = () => load({ PORTICO_EDGE_PROBE_ADDRESSES: '10.0.0.5:443,https://edge-2/' });
    expect(wrong).toThrow(ConfigError);
    expect(wrong).toThrow('PORTICO_EDGE_PROBE_ADDRESSES: "https://edge-2/" is not an edge address');
    expect(() => load({ PORTICO_PROBE_INTERVAL_SECONDS: '-1' })).toThrow(ConfigError);
  });
});
