import { type Static, Type } from '@sinclair/typebox';
import { DOMAIN_STATUSES, type DomainStatus } from '../../store/store.js';
import { Pagination } from './common.js';

const nullable = <T extends ReturnType<typeof Type.String>>(schema: T, title: string) =>
  Type.Union([schema, Type.Null()], { title });

/** Mixpeek's request, word for word (shared/spec/add-domain.openapi.md). */
export const AddDomainRequest = Type.Object(
  {
    domain: Type.String({ title: 'Domain', description: "Customer domain (e.g. 'search.acme.com')" }),
    is_primary: Type.Optional(
      Type.Boolean({ title: 'Is Primary', description: 'Set as primary domain', default: false }),
    ),
  },
  {
    $id: 'AddDomainRequest',
    title: 'AddDomainRequest',
    examples: [{ domain: 'search.acme.com', is_primary: true }],
  },
);
export type AddDomainRequest = Static<typeof AddDomainRequest>;

export const UpdateDomainRequest = Type.Object(
  { is_primary: Type.Boolean({ title: 'Is Primary', description: 'Set as primary domain' }) },
  { $id: 'UpdateDomainRequest', title: 'UpdateDomainRequest', examples: [{ is_primary: true }] },
);
export type UpdateDomainRequest = Static<typeof UpdateDomainRequest>;

export const DnsRecord = Type.Object(
  {
    type: Type.String({ description: 'TXT, CNAME, A or AAAA' }),
    name: Type.String({ description: 'Fully qualified record name' }),
    value: Type.String(),
    purpose: Type.String({
      description:
        'ownership, routing, or certificate (the delegation of _acme-challenge, where the platform answers DNS-01 for the certificate)',
    }),
  },
  { $id: 'DnsRecord', title: 'DnsRecord', description: 'A record the customer must create' },
);

export const VerificationErrorItem = Type.Object(
  {
    code: Type.String(),
    message: Type.String(),
    definitive: Type.Boolean({
      description:
        'True when DNS answered (a missing or wrong record), which counts against the domain; false when it did not (SERVFAIL, timeout), which never does',
    }),
  },
  { $id: 'VerificationError', title: 'VerificationError' },
);

export const Routing = Type.Object(
  {
    configured: Type.Array(Type.String(), { description: 'What the routing record must point to' }),
    observed: Type.Array(Type.String(), { description: 'What DNS answered on the last check' }),
    ok: Type.Boolean({
      description:
        'Whether the last check saw traffic for the domain reach the platform (false before the first check)',
    }),
    via: Type.Union([Type.Literal('dns'), Type.Literal('proxy'), Type.Null()], {
      description:
        'How it reaches the platform: dns (the CNAME or addresses point here), proxy (DNS points at the customer’s own CDN or proxy, and a request through it reached the edge), or null',
    }),
  },
  { $id: 'Routing', title: 'Routing' },
);

export const CertificateInfo = Type.Object(
  {
    status: Type.String(),
    issuer: Type.Union([Type.String(), Type.Null()], {
      description:
        'Which CA issued the certificate served now: the ACME directory URL of the CA (several may be configured, in order of preference), `internal` for the local CA, `acme` for a certificate issued before Portico recorded its CA; null before the first certificate',
    }),
    not_before: Type.Union([Type.String(), Type.Null()]),
    not_after: Type.Union([Type.String(), Type.Null()]),
    last_error: Type.Union([Type.String(), Type.Null()], {
      description:
        'Why the last attempt failed, or why no order was placed yet (a note such as waiting for the hourly order budget), in words the customer can act on',
    }),
    last_error_code: Type.Union([Type.String(), Type.Null()], {
      description:
        'The stable code of the last failed attempt (docs/errors.md, certificate errors), e.g. caa_forbidden: a CAA record of the domain forbids the CA; null after a success or beside a note',
    }),
  },
  { $id: 'CertificateInfo', title: 'CertificateInfo' },
);

export const EdgeServingItem = Type.Object(
  {
    address: Type.String({
      description: 'The edge address probed, host:port (PORTICO_EDGE_PROBE_ADDRESSES)',
    }),
    ok: Type.Boolean({
      description: 'It presented the current certificate and answered through to the origin',
    }),
    certificate_sha256: Type.Union([Type.String(), Type.Null()], {
      description:
        'SHA-256 (hex) of the DER of the certificate the edge presented for the domain; null when no handshake completed',
    }),
    status: Type.Union([Type.Integer(), Type.Null()], {
      description:
        "The HTTP status of one GET / through the edge (the origin's own, or the edge's error page); null when none came back",
    }),
    error: Type.Union([Type.String(), Type.Null()], { description: 'Why it is not ok; null when ok' }),
  },
  { $id: 'EdgeServing', title: 'EdgeServing' },
);

export const Serving = Type.Object(
  {
    checked_at: Type.String({ description: 'When the last serving probe ran' }),
    ok: Type.Boolean({ description: 'Every edge served the domain as it should' }),
    edges: Type.Array(Type.Ref(EdgeServingItem)),
  },
  {
    $id: 'Serving',
    title: 'Serving',
    description:
      'What visitors get from each edge, probed every PORTICO_PROBE_INTERVAL_SECONDS: a TLS handshake with the domain, its certificate compared with the current one, one request through to the origin. An observation only: it never changes the status',
  },
);

/**
 * Mixpeek's response (the first six properties and `required`, word for word) plus Portico's
 * diagnostics; clients ignore fields they do not know. Portico always sends every property, but
 * `required` stays Mixpeek's, so a client generated from either document types them alike.
 */
export const DomainResponse = Type.Object(
  {
    domain: Type.String({ title: 'Domain' }),
    // Mixpeek says only `type: string`; the enum is Portico's addition (docs/architecture.md).
    status: Type.Unsafe<DomainStatus>({ type: 'string', title: 'Status', enum: [...DOMAIN_STATUSES] }),
    verification_token: Type.Optional(nullable(Type.String(), 'Verification Token')),
    cname_target: Type.Optional(nullable(Type.String(), 'Cname Target')),
    is_primary: Type.Boolean({ title: 'Is Primary' }),
    verified_at: Type.Optional(nullable(Type.String(), 'Verified At')),
    app_id: Type.Optional(Type.String({ title: 'App Id' })),
    created_at: Type.Optional(Type.String({ title: 'Created At' })),
    dns_records: Type.Optional(Type.Array(Type.Ref(DnsRecord), { title: 'Dns Records' })),
    last_checked_at: Type.Optional(nullable(Type.String(), 'Last Checked At')),
    next_check_at: Type.Optional(nullable(Type.String(), 'Next Check At')),
    verification_errors: Type.Optional(
      Type.Array(Type.Ref(VerificationErrorItem), { title: 'Verification Errors' }),
    ),
    routing: Type.Optional(Type.Ref(Routing)),
    certificate: Type.Optional(
      Type.Union([Type.Ref(CertificateInfo), Type.Null()], { title: 'Certificate' }),
    ),
    reverify_failures: Type.Optional(
      Type.Union([Type.Integer({ minimum: 0 }), Type.Null()], {
        title: 'Reverify Failures',
        description:
          'Re-checks of a verified or active domain failed definitively in a row; at moved_after_failures it becomes moved and is no longer served. Null in other statuses',
      }),
    ),
    moved_after_failures: Type.Optional(
      Type.Integer({
        title: 'Moved After Failures',
        description: 'Definitive re-check failures in a row that make a verified or active domain moved',
      }),
    ),
    serving: Type.Optional(
      Type.Union([Type.Ref(Serving), Type.Null()], {
        title: 'Serving',
        description:
          'The last serving probe of an active domain (domain.degraded and domain.recovered announce a change); null before the first, and in other statuses',
      }),
    ),
    url: Type.Optional(
      Type.String({
        title: 'Url',
        description:
          "Where the edge serves the domain once it is active: https://{domain}/, with the edge's HTTPS port when it is not 443; absent for a wildcard, served at each name one label under it",
      }),
    ),
  },
  {
    $id: 'DomainResponse',
    title: 'DomainResponse',
    examples: [
      {
        domain: 'search.acme.com',
        status: 'active',
        verification_token: '6jndkzh7bbeoupsa0nyfjn4171np1snn',
        cname_target: 'cname.apps.example.net',
        is_primary: true,
        verified_at: '2026-05-04T09:12:31.448Z',
        app_id: 'app_ytzvdbb02b63',
        created_at: '2026-05-04T09:10:02.917Z',
        dns_records: [
          {
            type: 'TXT',
            name: '_mixpeek-verify.search.acme.com',
            value: 'mixpeek-site-verification=6jndkzh7bbeoupsa0nyfjn4171np1snn',
            purpose: 'ownership',
          },
          { type: 'CNAME', name: 'search.acme.com', value: 'cname.apps.example.net', purpose: 'routing' },
        ],
        last_checked_at: '2026-05-04T09:12:31.448Z',
        next_check_at: '2026-05-05T09:12:31.448Z',
        verification_errors: [],
        routing: {
          configured: ['cname.apps.example.net'],
          observed: ['cname.apps.example.net'],
          ok: true,
          via: 'dns',
        },
        certificate: {
          status: 'issued',
          issuer: 'https://acme-v02.api.letsencrypt.org/directory',
          not_before: '2026-05-04T08:13:40.000Z',
          not_after: '2026-08-02T08:13:39.000Z',
          last_error: null,
          last_error_code: null,
        },
      },
    ],
  },
);
export type DomainResponse = Static<typeof DomainResponse>;

export const DomainListResponse = Type.Object(
  { results: Type.Array(Type.Ref(DomainResponse)), pagination: Type.Ref(Pagination) },
  { $id: 'DomainListResponse', title: 'DomainListResponse' },
);

export const DomainParam = Type.String({
  title: 'Domain',
  description: 'The domain, in any case, with or without a trailing dot (e.g. search.acme.com)',
});

export const domainSchemas = [
  AddDomainRequest,
  UpdateDomainRequest,
  DnsRecord,
  VerificationErrorItem,
  Routing,
  CertificateInfo,
  EdgeServingItem,
  Serving,
  DomainResponse,
  DomainListResponse,
];
