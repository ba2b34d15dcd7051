/**
 * Every error Portico answers with, by stable code. Clients branch on `code` (and on `type`, which
 * follows Mixpeek's names), so a code never changes meaning once released. Each code is listed in
 * docs/errors.md; a test fails when one is missing there.
 */
export type ErrorType =
  | 'ValidationError'
  | 'AuthenticationError'
  | 'PermissionDeniedError'
  | 'NotFoundError'
  | 'ConflictError'
  | 'PayloadTooLargeError'
  | 'RateLimitError'
  | 'QuotaExceededError'
  | 'InternalServerError';

/**
 * An answer the API gives a client on purpose (400, 404, 409…): expected, not a fault, so it
 * carries no stack trace. Capturing one cost more than the rest of a 4xx answer; a fault's stack is
 * in the original error, which is what the error handler logs.
 */
export class PorticoError extends Error {
  readonly status: number;
  readonly type: ErrorType;
  readonly code: string;
  readonly details?: Record<string, unknown>;

  constructor(
    status: number,
    type: ErrorType,
    code: string,
    message: string,
    details?: Record<string, unknown>,
  ) {
    const stackTraceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message);
    Error.stackTraceLimit = stackTraceLimit;
    this.name = 'PorticoError';
    this.status = status;
    this.type = type;
    this.code = code;
    this.details = details;
  }
}

const invalid = (code: string, message: string, details?: Record<string, unknown>) =>
  new PorticoError(400, 'ValidationError', code, message, details);

export const errors = {
  // Domain names (see domain/hostname.ts for the policy itself).
  domainInvalid: (input: string, reason: string) => invalid('domain_invalid', reason, { domain: input }),
  domainTooLong: (input: string) =>
    invalid('domain_too_long', 'A domain name is at most 253 characters long.', { domain: input }),
  domainLabelInvalid: (input: string, label: string, reason: string) =>
    invalid('domain_label_invalid', `The label "${label}" ${reason}.`, { domain: input, label }),
  domainNotBareHostname: (input: string, hostname: string) =>
    invalid(
      'domain_not_bare_hostname',
      `Send the hostname alone, without scheme, port, path or credentials: "${hostname}".`,
      { domain: input, suggestion: hostname },
    ),
  domainIsIp: (input: string) =>
    invalid('domain_is_ip_address', 'An IP address cannot be added as a domain; send a hostname.', {
      domain: input,
    }),
  domainSingleLabel: (input: string) =>
    invalid('domain_single_label', 'A domain needs at least two labels, such as "shop.example.com".', {
      domain: input,
    }),
  domainIsPublicSuffix: (domain: string) =>
    invalid(
      'domain_is_public_suffix',
      `"${domain}" is a public suffix (anyone can register names under it), so it cannot be added itself.`,
      { domain },
    ),
  domainWildcard: (input: string) =>
    invalid(
      'domain_wildcard_not_supported',
      'Wildcard domains need certificates over DNS-01, which this server does not offer (it needs dns-01 in PORTICO_ACME_CHALLENGE and PORTICO_ACME_DNS_ZONE); add each hostname instead.',
      { domain: input },
    ),
  domainReserved: (domain: string, reason: string) => invalid('domain_reserved', reason, { domain }),
  domainUnderAppsDomain: (domain: string, appsDomain: string) =>
    invalid(
      'domain_under_apps_domain',
      `"${domain}" is under the platform's own domain ${appsDomain}; apps already answer on their default hostname.`,
      { domain },
    ),

  // Apps.
  slugInvalid: (
    slug: string,
    reason = 'A slug is 3 to 60 characters: lowercase letters, digits and hyphens, starting and ending with a letter or digit.',
  ) => invalid('slug_invalid', reason, { slug }),
  slugReserved: (slug: string) =>
    invalid('slug_reserved', `The slug "${slug}" is reserved for the platform's own use; choose another.`, {
      slug,
    }),
  originUrlInvalid: (url: string, reason: string) =>
    invalid('origin_url_invalid', reason, { origin_url: url }),
  originUrlPrivate: (url: string) =>
    invalid(
      'origin_url_private',
      'origin_url points to a loopback, link-local or private address, which this server does not allow.',
      { origin_url: url },
    ),

  // Webhooks.
  webhookUrlInvalid: (url: string, reason: string) =>
    invalid('webhook_url_invalid', `url: ${reason}`, { url }),
  webhookUrlPrivate: (url: string) =>
    invalid('webhook_url_private', 'The webhook URL points to a loopback, link-local or private address.', {
      url,
    }),
  webhookEventUnknown: (unknown: string[], known: readonly string[]) =>
    invalid(
      'webhook_event_unknown',
      `Unknown event types: ${unknown.join(', ')}. Known: ${known.join(', ')}, or *.`,
      {
        unknown,
      },
    ),
  webhookNotFound: (id: string) =>
    new PorticoError(404, 'NotFoundError', 'webhook_not_found', `Webhook ${id} not found`, {
      id,
      resource: 'webhook',
    }),

  // Authentication and permission.
  unauthenticated: (message = 'Send an API key as "Authorization: Bearer <key>".') =>
    new PorticoError(401, 'AuthenticationError', 'unauthenticated', message),
  invalidApiKey: () =>
    new PorticoError(
      401,
      'AuthenticationError',
      'invalid_api_key',
      'The API key is not valid or was revoked.',
    ),
  readOnlyKey: () =>
    new PorticoError(
      403,
      'PermissionDeniedError',
      'insufficient_scope',
      'This API key is read-only; use a key with write scope for this request.',
    ),

  // Not found: another organization's resources answer exactly like missing ones.
  appNotFound: (appId: string) =>
    new PorticoError(404, 'NotFoundError', 'app_not_found', `App ${appId} not found`, {
      id: appId,
      resource: 'app',
    }),
  domainNotFound: (domain: string) =>
    new PorticoError(404, 'NotFoundError', 'domain_not_found', `Domain ${domain} not found on this app`, {
      id: domain,
      resource: 'domain',
    }),
  internalCaDisabled: () =>
    new PorticoError(
      404,
      'NotFoundError',
      'internal_ca_disabled',
      'This server does not issue certificates from a local CA (PORTICO_TLS_ISSUER is not "internal").',
    ),
  hostnameNotServed: (hostname: string) =>
    new PorticoError(404, 'NotFoundError', 'hostname_not_served', `${hostname} is not served here.`, {
      domain: hostname,
    }),
  routeNotFound: (method: string, url: string) =>
    new PorticoError(404, 'NotFoundError', 'route_not_found', `No route for ${method} ${url}`),

  // Conflicts.
  domainAlreadyAdded: (domain: string) =>
    new PorticoError(
      409,
      'ConflictError',
      'domain_already_added',
      `${domain} is already added to this app.`,
      {
        domain,
      },
    ),
  domainInUse: (domain: string) =>
    new PorticoError(
      409,
      'ConflictError',
      'domain_in_use',
      `${domain} is on another app of this organization; remove it there first.`,
      { domain },
    ),
  slugTaken: (slug: string) =>
    new PorticoError(409, 'ConflictError', 'slug_taken', `The slug "${slug}" is taken.`, { slug }),
  slugHeld: (slug: string, availableAt: string) =>
    new PorticoError(
      409,
      'ConflictError',
      'slug_held',
      `The slug "${slug}" belonged to an app that was deleted or renamed recently; it is held for its organization until ${availableAt}.`,
      { slug, available_at: availableAt },
    ),
  concurrentUpdate: () =>
    new PorticoError(
      409,
      'ConflictError',
      'concurrent_update',
      'Another request changed this resource; retry.',
    ),

  // Limits.
  rateLimited: (retryAfterSeconds: number) =>
    new PorticoError(
      429,
      'RateLimitError',
      'rate_limited',
      `Too many requests with this API key; retry in ${retryAfterSeconds} s.`,
      {
        retry_after: retryAfterSeconds,
      },
    ),
  domainQuotaExceeded: (limit: number) =>
    new PorticoError(
      403,
      'QuotaExceededError',
      'domain_quota_exceeded',
      `This organization has reached its limit of ${limit} domains; remove some or ask the operator to raise PORTICO_MAX_DOMAINS_PER_ORG.`,
      { limit },
    ),
  appQuotaExceeded: (limit: number) =>
    new PorticoError(
      403,
      'QuotaExceededError',
      'app_quota_exceeded',
      `This organization has reached its limit of ${limit} apps; delete some or ask the operator to raise PORTICO_MAX_APPS_PER_ORG.`,
      { limit },
    ),
  idempotencyKeyInvalid: () =>
    invalid('idempotency_key_invalid', 'Idempotency-Key must be 1 to 255 visible ASCII characters.'),
  idempotencyKeyReused: () =>
    new PorticoError(
      409,
      'ConflictError',
      'idempotency_key_reused',
      'This Idempotency-Key was used with a different request in the last 24 hours; use a new key.',
    ),
  idempotencyKeyInProgress: () =>
    new PorticoError(
      409,
      'ConflictError',
      'idempotency_key_in_progress',
      'A request with this Idempotency-Key is still being answered; retry in a moment.',
    ),

  // Transport.
  payloadTooLarge: (limit: number) =>
    new PorticoError(
      413,
      'PayloadTooLargeError',
      'payload_too_large',
      `The request body exceeds ${limit} bytes.`,
    ),
  unsupportedMediaType: () =>
    new PorticoError(
      415,
      'ValidationError',
      'unsupported_media_type',
      'Send the request body as application/json.',
    ),
  internal: () =>
    new PorticoError(
      500,
      'InternalServerError',
      'internal_error',
      'Something went wrong on our side; it was logged.',
    ),
} as const;

export type ErrorCode = ReturnType<(typeof errors)[keyof typeof errors]>['code'];
