import { getServers } from 'node:dns';
import { caaRefusal } from '../acme/caa.js';
import { findRelevantCaa, formatCaa } from '../dns/caa.js';
import { checkDelegation, checkOwnership, checkRouting } from '../dns/checks.js';
import { WireResolver } from '../dns/wire-resolver.js';
import { parseServer } from '../dns/wire-transport.js';
import { ownershipRecordName, routingCheckName } from '../domain/dns-records.js';
import { claimBase, isWildcard, normalizeHostname } from '../domain/hostname.js';
import { resolveAppId } from './app-ref.js';
import type { Domain } from './client.js';
import { connect, parseCommand } from './command.js';
import { formatProblem, paintStatus } from './domain-view.js';
import { CliError, EXIT, UsageError } from './errors.js';
import type { Output } from './output.js';

/** Mixpeek's defaults (shared/spec/API.md), for `--token` checks that do not ask the API. */
const DEFAULT_RECORD_NAME = '_mixpeek-verify';
const DEFAULT_VALUE_PREFIX = 'mixpeek-site-verification=';

/** What DNS should say for one domain: the part of the server's settings a check needs. */
interface Expectation {
  domain: string;
  recordName: string;
  valuePrefix: string;
  token: string;
  /** Undefined when checking by `--token` without `--cname-target`: routing is then not checked. */
  cnameTarget: string | undefined;
  edgeIPv4: string[];
  edgeIPv6: string[];
  /** The certificate delegation (`_acme-challenge` CNAME), when Portico answers DNS-01 for the domain. */
  delegation?: { name: string; target: string };
  /** What Portico itself last saw, when the expectation came from the API. */
  portico?: Domain;
  /**
   * The CA's names in CAA records (`--ca letsencrypt.org`), to judge the CAA records against;
   * undefined when not given: then only records that forbid every CA fail.
   */
  caIdentities: string[] | undefined;
}

interface RecordCheck {
  purpose: 'ownership' | 'routing' | 'certificate' | 'caa';
  name: string;
  expected: string[];
  found: string[];
  ok: boolean;
  /** False when DNS did not answer (timeout, SERVFAIL…): the record may well be right. */
  definitive: boolean;
  errors: { code: string; message: string }[];
}

/**
 * `portico domains check APP DOMAIN` or `portico domains check DOMAIN --token TOKEN`: asks DNS
 * now, with the same checks as Portico's worker, and shows found against expected, like
 * `vercel domains verify`. The expected records are read from the domain's `dns_records`, so the
 * CLI needs none of the server's settings.
 */
export async function checkDomain(args: string[], out: Output): Promise<number> {
  const { values, positionals } = parseCommand(args, {
    token: { type: 'string' },
    'cname-target': { type: 'string' },
    'record-name': { type: 'string' },
    'value-prefix': { type: 'string' },
    dns: { type: 'string', multiple: true },
    ca: { type: 'string', multiple: true },
  });
  const servers = dnsServers(values.dns);
  const caIdentities = values.ca ? commaList(values.ca).map((ca) => ca.toLowerCase()) : undefined;
  let expectation: Expectation;
  if (positionals.length === 2) {
    if (values.token !== undefined) {
      throw new UsageError(
        '--token is for checking without the API: give either APP DOMAIN or DOMAIN --token',
      );
    }
    const [appRef = '', name = ''] = positionals;
    const client = connect(values);
    expectation = {
      ...fromApi(await client.getDomain(await resolveAppId(client, appRef), name)),
      caIdentities,
    };
  } else if (positionals.length === 1 && values.token !== undefined) {
    expectation = {
      domain: normalizeDomain(positionals[0] ?? ''),
      recordName: values['record-name'] ?? DEFAULT_RECORD_NAME,
      valuePrefix: values['value-prefix'] ?? DEFAULT_VALUE_PREFIX,
      token: values.token,
      cnameTarget:
        values['cname-target'] === undefined ? undefined : normalizeHostname(values['cname-target']),
      edgeIPv4: [],
      edgeIPv6: [],
      caIdentities,
    };
  } else {
    throw new UsageError(
      'give APP DOMAIN to read the expected records from Portico, or DOMAIN --token TOKEN to check without it',
    );
  }

  const checks = await runChecks(new WireResolver({ servers }), expectation);
  const ok = checks.every((check) => check.ok);
  const exitCode = ok ? EXIT.ok : checks.some((c) => !c.ok && c.definitive) ? EXIT.failed : EXIT.api;
  if (out.json) {
    out.printJson({ domain: expectation.domain, ok, servers: servers ?? getServers(), records: checks });
  } else {
    printReport(out, expectation, checks, servers ?? getServers());
  }
  return exitCode;
}

/** The items of flags given repeated or comma-separated (`--dns a,b --dns c`). */
function commaList(flags: readonly string[]): string[] {
  return flags.flatMap((text) =>
    text
      .split(',')
      .map((item) => item.trim())
      .filter(Boolean),
  );
}

/** Servers from `--dns` (repeated or comma-separated), else PORTICO_DNS_SERVERS, else the system's. */
function dnsServers(flags: string[] | undefined): string[] | undefined {
  const servers = commaList(flags ?? [process.env.PORTICO_DNS_SERVERS ?? '']);
  for (const server of servers) {
    try {
      parseServer(server);
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
  }
  return servers.length > 0 ? servers : undefined;
}

function normalizeDomain(name: string): string {
  // The API stores names in their normal form (ASCII, lowercase, without the root's dot): so does DNS.
  const normal = normalizeHostname(name);
  if (!/^(\*\.)?[a-z0-9_.-]+$/.test(normal)) throw new UsageError(`"${name}" is not a domain name`);
  return normal;
}

/** Reads the record name, value prefix and routing target back out of the records the API lists. */
function fromApi(domain: Domain): Omit<Expectation, 'caIdentities'> {
  const records = domain.dns_records ?? [];
  const txt = records.find((record) => record.type === 'TXT' && record.purpose === 'ownership');
  const token = domain.verification_token;
  // A wildcard's ownership record is at its base (`_mixpeek-verify.acme.com` for `*.acme.com`).
  const suffix = `.${claimBase(domain.domain)}`;
  if (!txt || !token || !txt.name.endsWith(suffix) || !txt.value.endsWith(token)) {
    throw new CliError(
      `the API did not list the ownership TXT record of ${domain.domain}; is this Portico up to date?`,
      EXIT.api,
    );
  }
  const routing = (type: string) =>
    records.filter((record) => record.purpose === 'routing' && record.type === type).map((r) => r.value);
  const delegation = records.find((record) => record.purpose === 'certificate' && record.type === 'CNAME');
  return {
    ...(delegation ? { delegation: { name: delegation.name, target: delegation.value } } : {}),
    domain: domain.domain,
    recordName: txt.name.slice(0, -suffix.length),
    valuePrefix: txt.value.slice(0, -token.length),
    token,
    cnameTarget: routing('CNAME')[0] ?? domain.cname_target ?? undefined,
    // Edge addresses are listed only where the domain must use them (an apex), so a subdomain
    // that uses A records is judged as the records say it should be set: with a CNAME.
    edgeIPv4: routing('A'),
    edgeIPv6: routing('AAAA'),
    portico: domain,
  };
}

async function runChecks(resolver: WireResolver, want: Expectation): Promise<RecordCheck[]> {
  const txtName = ownershipRecordName(want.recordName, want.domain);
  const [ownership, routing, delegation, caa] = await Promise.all([
    checkOwnership(resolver, {
      name: txtName,
      valuePrefix: want.valuePrefix,
      token: want.token,
    }),
    want.cnameTarget === undefined
      ? undefined
      : checkRouting(resolver, {
          // A wildcard's routing is asked at a random name under it, as the worker asks it.
          domain: routingCheckName(want.domain),
          ...(isWildcard(want.domain) ? { recordName: want.domain } : {}),
          cnameTarget: want.cnameTarget,
          edgeIPv4: want.edgeIPv4,
          edgeIPv6: want.edgeIPv6,
        }),
    want.delegation &&
      checkDelegation(resolver, { name: want.delegation.name, target: want.delegation.target }),
    checkCaaRecords(resolver, want),
  ]);
  const checks: RecordCheck[] = [
    {
      purpose: 'ownership',
      name: txtName,
      expected: [`TXT ${want.valuePrefix}${want.token}`],
      found: ownership.observed.map((value) => `TXT ${value}`),
      ok: ownership.ok,
      definitive: ownership.definitive,
      errors: ownership.errors,
    },
  ];
  if (routing) {
    // An apex routed by address lists its A/AAAA records; otherwise the CNAME is what to create.
    const byAddress = want.edgeIPv4.length + want.edgeIPv6.length > 0;
    checks.push({
      purpose: 'routing',
      name: want.domain,
      expected: byAddress
        ? routing.configured.filter((r) => !r.startsWith('CNAME '))
        : [`CNAME ${want.cnameTarget}`],
      found: routing.observed,
      ok: routing.ok,
      definitive: routing.definitive,
      errors: routing.errors,
    });
  }
  if (delegation && want.delegation) {
    checks.push({
      purpose: 'certificate',
      name: want.delegation.name,
      expected: [`CNAME ${want.delegation.target}`],
      found: delegation.observed,
      ok: delegation.ok,
      definitive: delegation.definitive,
      errors: delegation.errors,
    });
  }
  checks.push(caa);
  return checks;
}

/**
 * The CAA records the CA will read for the domain (RFC 8659: its own, else its closest parent's,
 * through CNAMEs), judged as the worker judges them before ordering (src/acme/caa.ts): against the
 * CA's names given with `--ca`, else only for what forbids every CA.
 */
async function checkCaaRecords(resolver: WireResolver, want: Expectation): Promise<RecordCheck> {
  const search = await findRelevantCaa(resolver, want.domain);
  const refusal = caaRefusal(search, want.domain, { identities: want.caIdentities });
  const allowing = want.caIdentities?.map((identity) => `CAA 0 issue "${identity}"`).join(' or ');
  const expected = [`no CAA record, or ${allowing ?? 'one allowing the CA (--ca NAME to check yours)'}`];
  if (!search.ok) {
    return {
      purpose: 'caa',
      name: search.at,
      expected,
      found: [],
      ok: false,
      definitive: false,
      errors: [{ code: search.failure, message: refusal?.message ?? '' }],
    };
  }
  const via = search.cnameChain.at(-1);
  return {
    purpose: 'caa',
    name: search.at ?? want.domain,
    expected,
    found: search.records.map((record) => `CAA ${formatCaa(record)}${via ? ` (at ${via})` : ''}`),
    ok: refusal === undefined,
    definitive: true,
    errors: refusal === undefined ? [] : [{ code: refusal.code, message: refusal.message }],
  };
}

/** What a check found when DNS showed no record, in a few words for the FOUND column. */
const NOTHING: Record<string, string> = {
  txt_not_found: 'no TXT record',
  caa: 'no CAA record: any CA may issue',
  routing_not_found: 'no CNAME, A or AAAA record',
  nxdomain: 'nothing: the name does not exist',
  cname_loop: 'a CNAME loop',
  delegation_not_found: 'no CNAME record',
  servfail: 'no answer (SERVFAIL)',
  refused: 'no answer (REFUSED)',
  timeout: 'no answer (timed out)',
  unreachable: 'no answer (server unreachable)',
  dnssec_bogus: 'no answer (DNSSEC does not validate)',
  dns_extended_error: 'no answer (an Extended DNS Error)',
};

function printReport(
  out: Output,
  want: Expectation,
  checks: RecordCheck[],
  servers: readonly string[],
): void {
  const { style } = out;
  out.line(`DNS for ${style.bold(want.domain)} now, asking ${servers.join(', ')}:`);
  out.line();
  out.table(
    ['RECORD', 'EXPECTED', 'FOUND', 'OK'],
    checks.map((check) => [
      check.name,
      check.expected,
      check.found.length > 0
        ? check.found
        : [style.dim(NOTHING[check.errors[0]?.code ?? (check.purpose === 'caa' ? 'caa' : '')] ?? 'nothing')],
      check.ok ? style.green('yes') : check.definitive ? style.red('no') : style.yellow('unknown'),
    ]),
  );
  if (want.cnameTarget === undefined) {
    out.line(
      style.dim('Routing not checked: pass --cname-target HOST, or give APP DOMAIN to read it from Portico.'),
    );
  }

  const failures = checks.filter((check) => !check.ok);
  const printProblems = (heading: string, group: RecordCheck[]) => {
    if (group.length === 0) return;
    out.line();
    out.line(heading);
    for (const check of group) {
      for (const problem of check.errors) out.line(`  ${formatProblem(style, problem)}`);
    }
  };
  printProblems(
    'To fix:',
    failures.filter((check) => check.definitive),
  );
  printProblems(
    'No answer from DNS:',
    failures.filter((check) => !check.definitive),
  );
  out.line();
  if (failures.length === 0) {
    out.line(`${style.green('✓')} DNS is set up right for ${want.domain}.`);
  } else if (failures.every((check) => !check.definitive)) {
    out.line('DNS did not answer every question: the records may be right. Try again, or pass --dns HOST.');
  } else {
    out.line('DNS changes can take a few minutes to show everywhere.');
  }
  const portico = want.portico;
  if (portico) {
    const checked = portico.last_checked_at
      ? `, last checked ${portico.last_checked_at}`
      : ', not checked yet';
    out.line(`Portico's own view: ${paintStatus(style, portico.status)}${checked}.`);
  }
}
