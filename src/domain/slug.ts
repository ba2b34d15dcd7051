import { errors } from './errors.js';
import { isValidALabel } from './punycode.js';
import { appsLabelOf } from './serving.js';

/**
 * Which slugs an App may take. Pure, no I/O. A slug is the first label of the App's default
 * hostname, `{slug}.{apps domain}`, and the edge serves that name with a valid certificate to
 * whoever owns the App: so a slug must be a DNS label, and the platform's own names under the apps
 * domain must not be for the taking.
 */

/**
 * Labels under the apps domain that a platform uses or that clients look up by convention, refused
 * as slugs unless `PORTICO_RESERVED_SLUGS` replaces the list (docs/apps.md says why each is here).
 * Slugs have at least 3 characters, so shorter names (`ns`, `mx`) cannot be taken anyway.
 */
export const DEFAULT_RESERVED_SLUGS: readonly string[] = [
  // The platform's own services.
  'www',
  'api',
  'app',
  'apps',
  'admin',
  'dashboard',
  'console',
  'portal',
  'status',
  'docs',
  'help',
  'support',
  'billing',
  'login',
  'auth',
  'oauth',
  'sso',
  'account',
  'accounts',
  'static',
  'assets',
  'cdn',
  'portico',
  // What customers' DNS points at, and the edge and certificate machinery.
  'cname',
  'edge',
  'origin',
  'acme',
  'dns',
  'ns1',
  'ns2',
  'ns3',
  'ns4',
  // Mail: a tenant must not receive the platform's mail or publish its mail policy.
  'mail',
  'email',
  'smtp',
  'imap',
  'pop',
  'pop3',
  'webmail',
  'mta-sts',
  'autoconfig',
  'autodiscover',
  'postmaster',
  'hostmaster',
  'webmaster',
  'abuse',
  'security',
  // Names software on a network looks up on its own (proxy auto-discovery, IPv6 tunnelling, keys).
  'wpad',
  'isatap',
  'openpgpkey',
  'ftp',
  'localhost',
];

export interface SlugPolicy {
  /** The apps domain: default hostnames are `{slug}.{appsDomain}`. */
  appsDomain?: string;
  /** What customers CNAME to; its label is reserved when it sits directly under the apps domain. */
  cnameTarget?: string;
  /** Further reserved slugs (`PORTICO_RESERVED_SLUGS`); DEFAULT_RESERVED_SLUGS when absent. */
  reservedSlugs?: readonly string[];
}

/** The schema's rule, repeated here so the domain logic does not rest on the API's validation. */
const SLUG = /^[a-z0-9][a-z0-9-]{1,58}[a-z0-9]$/;

/**
 * Every reserved slug under `policy`: the configured list, plus the label of the CNAME target (and
 * of any name between it and the apps domain: `edge.cname.apps.example.net` reserves `cname`, whose
 * owner could otherwise set cookies for it).
 */
export function reservedSlugs(policy: SlugPolicy): ReadonlySet<string> {
  const reserved = new Set(policy.reservedSlugs ?? DEFAULT_RESERVED_SLUGS);
  const { appsDomain, cnameTarget } = policy;
  const label = appsDomain && cnameTarget ? appsLabelOf(cnameTarget, appsDomain) : undefined;
  if (label) reserved.add(label);
  return reserved;
}

/**
 * Throws a `PorticoError` (400) when `slug` may not be taken: `slug_invalid` when it is not a DNS
 * label in A-label form (`--` in positions 3 and 4 only for a valid `xn--` label, RFC 5891), and
 * `slug_reserved` for the platform's names.
 */
export function checkSlug(slug: string, reserved: ReadonlySet<string>): void {
  if (!SLUG.test(slug)) throw errors.slugInvalid(slug);
  if (slug.slice(2, 4) === '--' && !isValidALabel(slug)) {
    throw errors.slugInvalid(
      slug,
      slug.startsWith('xn--')
        ? 'A slug starting "xn--" must be a valid punycode A-label (the form DNS uses for an internationalized label).'
        : 'Hyphens in the third and fourth positions are reserved in DNS for encoded labels ("xn--…").',
    );
  }
  if (reserved.has(slug)) throw errors.slugReserved(slug);
}

/** Whether a slug suits `PORTICO_RESERVED_SLUGS`: a lowercase DNS label of letters, digits, hyphens. */
export function isLabel(text: string): boolean {
  return /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(text);
}
