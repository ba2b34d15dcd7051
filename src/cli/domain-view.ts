import { getDomain as registrableDomain } from 'tldts';
import { traitsOf } from '../domain/lifecycle.js';
import type { DnsRecord, Domain } from './client.js';
import type { Output, Palette } from './output.js';

/** How people read a domain: its status in color, the records to create, what went wrong. */

/**
 * Green when served, cyan when proven but not served yet, yellow while being verified, red where
 * a verification ended unserved (the exit code 1 of `verify --wait`), dim otherwise.
 */
export function paintStatus(style: Palette, status: string): string {
  const traits = traitsOf(status);
  if (traits?.served) return style.green(status);
  if (traits?.live) return style.cyan(status);
  if (traits?.polled) return style.yellow(status);
  if (traits?.settled) return style.red(status);
  return style.dim(status);
}

/** What each status means for the person waiting on it. */
export const STATUS_MEANING: Record<string, string> = {
  pending: 'not checked yet: run `portico domains verify` once the records exist',
  verifying: 'looking for the ownership TXT record',
  verified: 'ownership proven; waiting for routing (or the certificate delegation) and a certificate',
  active: 'served over HTTPS',
  failed: 'the TXT record was not found before the deadline',
  moved: 'the ownership record was gone on three checks, or another claim proved ownership since',
};

/**
 * The records as a table a person copies into a DNS provider's form, and the host-only names
 * for the many providers whose form wants the name relative to the zone.
 */
export function printDnsRecords(out: Output, domain: string, records: readonly DnsRecord[]): void {
  out.table(
    ['TYPE', 'NAME', 'VALUE'],
    records.map((record) => [record.type, record.name, record.value]),
    '  ',
  );
  const zone = registrableDomain(domain);
  if (zone && records.every((record) => record.name === zone || record.name.endsWith(`.${zone}`))) {
    const hosts = records.map((record) =>
      record.name === zone ? '@' : record.name.slice(0, -(zone.length + 1)),
    );
    out.line();
    out.line(
      out.style.dim(
        `  If your provider asks for the host only (zone ${zone}): ${[...new Set(hosts)].join(', ')}`,
      ),
    );
  }
}

export function describeCertificate(style: Palette, certificate: Domain['certificate']): string {
  if (!certificate) return style.dim('none yet');
  switch (certificate.status) {
    case 'issued': {
      const until = certificate.not_after ? `, valid until ${certificate.not_after}` : '';
      return `${style.green('issued')}${certificate.issuer ? ` by ${certificate.issuer}` : ''}${until}`;
    }
    case 'failed':
      return `${style.red('failed')}${certificate.last_error ? `: ${certificate.last_error}` : ''}`;
    case 'pending':
      return certificate.last_error
        ? `being issued (last attempt: ${certificate.last_error})`
        : 'being issued';
    default:
      return certificate.status;
  }
}

/** One problem of the last DNS check: its code, then the API's sentence naming the record and the fix. */
export function formatProblem(style: Palette, problem: { code: string; message: string }): string {
  return `${style.red('✗')} ${style.bold(problem.code)}: ${problem.message}`;
}

/** Everything the API knows about one domain. */
export function printDomain(out: Output, domain: Domain): void {
  const { style } = out;
  const primary = domain.is_primary ? `  ${style.dim('(primary)')}` : '';
  out.line(`${style.bold(domain.domain)}  ${paintStatus(style, domain.status)}${primary}`);
  const meaning = STATUS_MEANING[domain.status];
  if (meaning) out.line(`  ${style.dim(meaning)}`);
  out.line();
  const fields: [string, string][] = [];
  if (domain.app_id) fields.push(['app', domain.app_id]);
  if (domain.created_at) fields.push(['added', domain.created_at]);
  if (domain.verified_at) fields.push(['verified', domain.verified_at]);
  if (domain.last_checked_at) fields.push(['last check', domain.last_checked_at]);
  if (domain.next_check_at) fields.push(['next check', domain.next_check_at]);
  if (domain.routing && domain.routing.observed.length > 0) {
    fields.push(['DNS answered', domain.routing.observed.join(', ')]);
  }
  if (domain.routing && domain.last_checked_at) fields.push(['traffic', describeRouting(domain.routing)]);
  fields.push(['certificate', describeCertificate(style, domain.certificate)]);
  if (domain.serving) fields.push(['serving', describeServing(style, domain.serving)]);
  out.fields(fields);
  if (domain.serving) {
    for (const edge of domain.serving.edges) out.line(`    ${formatEdge(style, edge)}`);
  }

  if (domain.dns_records && domain.dns_records.length > 0) {
    out.line();
    out.line('DNS records:');
    printDnsRecords(out, domain.domain, domain.dns_records);
  }
  const problems = domain.verification_errors ?? [];
  if (problems.length > 0) {
    out.line();
    out.line('Problems found by the last check:');
    for (const problem of problems) out.line(`  ${formatProblem(style, problem)}`);
  }
}

type Serving = NonNullable<Domain['serving']>;

/** The last serving probe in a line: whether visitors get the site, and when that was seen. */
export function describeServing(style: Palette, serving: Serving): string {
  const failing = serving.edges.filter((edge) => !edge.ok).length;
  const verdict = serving.ok
    ? style.green(`ok at ${serving.edges.length} edge${serving.edges.length === 1 ? '' : 's'}`)
    : style.red(
        `failing at ${failing} of ${serving.edges.length} edge${serving.edges.length === 1 ? '' : 's'}`,
      );
  return `${verdict} ${style.dim(`(probed ${serving.checked_at})`)}`;
}

/** One edge of a probe: its address, then what it answered or why it failed. */
export function formatEdge(style: Palette, edge: Serving['edges'][number]): string {
  if (edge.ok) {
    const certificate = edge.certificate_sha256
      ? `, certificate ${edge.certificate_sha256.slice(0, 12)}…`
      : '';
    return `${style.green('✓')} ${edge.address}: HTTP ${edge.status ?? '?'}${certificate}`;
  }
  return `${style.red('✗')} ${edge.address}: ${edge.error ?? 'failed'}`;
}

/** How the last check saw traffic reach the platform, in words. */
function describeRouting(routing: NonNullable<Domain['routing']>): string {
  if (routing.via === 'dns') return 'reaches the platform (DNS points here)';
  if (routing.via === 'proxy') return 'reaches the platform through your own proxy or CDN';
  return 'does not reach the platform';
}
