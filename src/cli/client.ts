import type { Static } from '@sinclair/typebox';
import type { AppListResponse, AppResponse, CreateAppRequest } from '../api/schemas/apps.js';
import type { AddDomainRequest, DomainListResponse, DomainResponse } from '../api/schemas/domains.js';
import { CliError, EXIT, UsageError } from './errors.js';

/*
 * The CLI speaks to Portico over its public API only, like any other client. The types come from
 * the API's own schemas (type imports: nothing of the server is loaded), so a change of contract
 * breaks the build here rather than a user's command.
 */
export type App = AppResponse;
export type AppList = Static<typeof AppListResponse>;
export type Domain = DomainResponse;
export type DomainList = Static<typeof DomainListResponse>;
export type DnsRecord = NonNullable<Domain['dns_records']>[number];
export type NewApp = CreateAppRequest;
export type NewDomain = AddDomainRequest;

export interface Deleted {
  success: boolean;
  message: string;
}

export interface Page {
  limit?: number;
  offset?: number;
}

export interface ClientOptions {
  /** Where Portico's API listens, e.g. `http://127.0.0.1:3000`; a path prefix is kept. */
  baseUrl: string;
  apiKey: string;
  /** How long one request may take. Default 30 s. */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

interface RequestOptions {
  body?: unknown;
  query?: Record<string, number | undefined>;
  signal?: AbortSignal;
}

/** A small typed client of Portico's API; every failure becomes a CliError a person can read. */
export class PorticoClient {
  readonly baseUrl: string;
  private readonly apiKey: string;
  private readonly timeoutMs: number;
  private readonly fetch: typeof fetch;

  constructor(options: ClientOptions) {
    this.baseUrl = normalizeBaseUrl(options.baseUrl);
    this.apiKey = options.apiKey;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.fetch = options.fetch ?? globalThis.fetch;
  }

  createApp(body: NewApp): Promise<App> {
    return this.request('POST', '/v1/apps', { body });
  }

  listApps(page: Page = {}): Promise<AppList> {
    return this.request('GET', '/v1/apps', { query: { ...page } });
  }

  getApp(appId: string): Promise<App> {
    return this.request('GET', `/v1/apps/${segment(appId)}`);
  }

  deleteApp(appId: string): Promise<Deleted> {
    return this.request('DELETE', `/v1/apps/${segment(appId)}`);
  }

  addDomain(appId: string, body: NewDomain): Promise<Domain> {
    return this.request('POST', `/v1/apps/${segment(appId)}/domains`, { body });
  }

  listDomains(appId: string, page: Page = {}): Promise<DomainList> {
    return this.request('GET', `/v1/apps/${segment(appId)}/domains`, { query: { ...page } });
  }

  getDomain(appId: string, domain: string, signal?: AbortSignal): Promise<Domain> {
    return this.request('GET', domainPath(appId, domain), { signal });
  }

  removeDomain(appId: string, domain: string): Promise<Deleted> {
    return this.request('DELETE', domainPath(appId, domain));
  }

  verifyDomain(appId: string, domain: string, signal?: AbortSignal): Promise<Domain> {
    return this.request('POST', `${domainPath(appId, domain)}/verify`, { signal });
  }

  private async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const url = new URL(this.baseUrl + path);
    for (const [name, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(name, String(value));
    }
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
    const headers: Record<string, string> = {
      accept: 'application/json',
      authorization: `Bearer ${this.apiKey}`,
      'user-agent': 'portico-cli',
    };
    if (options.body !== undefined) headers['content-type'] = 'application/json';

    let response: Response;
    let text: string;
    try {
      response = await this.fetch(url, {
        method,
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        signal,
      });
      text = await response.text();
    } catch (error) {
      // The caller's own abort (Ctrl-C) is not a failure to report: let it through as is.
      if (options.signal?.aborted) throw options.signal.reason;
      throw this.unreachable(error, timeout.aborted);
    }
    const body = parseJson(text);
    if (!response.ok) throw apiError(response, body, text);
    if (body === undefined) {
      throw new CliError(
        `${this.baseUrl} answered ${method} ${path} with something other than JSON: is --url pointing at Portico's API?`,
        EXIT.api,
        { status: response.status },
      );
    }
    return body as T;
  }

  private unreachable(error: unknown, timedOut: boolean): CliError {
    if (timedOut) {
      return new CliError(
        `Portico at ${this.baseUrl} did not answer within ${this.timeoutMs / 1000} s`,
        EXIT.api,
      );
    }
    // undici reports "fetch failed" and keeps the reason (ECONNREFUSED, ENOTFOUND…) in `cause`.
    const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
    const reason =
      cause instanceof Error ? ('code' in cause && String(cause.code)) || cause.message : String(cause);
    return new CliError(
      `could not reach Portico at ${this.baseUrl} (${reason}): is it running? Set --url or PORTICO_URL to its API address`,
      EXIT.api,
    );
  }
}

function normalizeBaseUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`the API URL "${raw}" is not a URL (e.g. http://127.0.0.1:3000)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`the API URL "${raw}" must start with http:// or https://`);
  }
  if (url.username || url.password) {
    throw new UsageError(
      'the API URL must not hold credentials: pass the API key with --key or PORTICO_API_KEY',
    );
  }
  url.search = '';
  url.hash = '';
  return url.href.replace(/\/+$/, '');
}

const segment = (value: string) => encodeURIComponent(value);
const domainPath = (appId: string, domain: string) => `/v1/apps/${segment(appId)}/domains/${segment(domain)}`;

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

interface ErrorBody {
  error?: { message?: unknown; code?: unknown; type?: unknown };
  detail?: unknown;
}

/** The API's error shapes (docs/errors.md) as one readable message, keeping the stable code. */
function apiError(response: Response, body: unknown, text: string): CliError {
  const status = response.status;
  const { error, detail } = (typeof body === 'object' && body !== null ? body : {}) as ErrorBody;
  if (error && typeof error.message === 'string') {
    const code = typeof error.code === 'string' ? error.code : undefined;
    const retry = response.headers.get('retry-after');
    const message = status === 429 && retry ? `${error.message} (retry in ${retry} s)` : error.message;
    return new CliError(message, EXIT.api, { code, status });
  }
  if (Array.isArray(detail)) {
    // FastAPI's HTTPValidationError: one line per problem, located as the API names it.
    const problems = detail.map((item: { loc?: unknown; msg?: unknown }) => {
      const loc = Array.isArray(item.loc) ? item.loc.join('.') : '?';
      return `  ${loc}: ${String(item.msg)}`;
    });
    return new CliError(`the API rejected the request:\n${problems.join('\n')}`, EXIT.api, {
      code: 'validation_error',
      status,
    });
  }
  const snippet = text.trim().slice(0, 200);
  return new CliError(`HTTP ${status} ${response.statusText}${snippet ? `: ${snippet}` : ''}`, EXIT.api, {
    status,
  });
}
