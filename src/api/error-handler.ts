import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type ErrorType, errors, PorticoError } from '../domain/errors.js';
import type { ErrorResponse, ValidationError } from './schemas/common.js';
import { LAX_BOOLEAN_KEYWORD, type LaxBooleanError } from './validation.js';

/**
 * The one place errors become responses: `PorticoError` → `ErrorResponse`; schema failures → 422
 * `HTTPValidationError` in FastAPI's shape; anything unexpected → a 500 that reveals nothing (the
 * details go to the log, with the request id).
 */
export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error.validation) {
      return reply.code(422).send({ detail: toValidationDetail(error, request.body) });
    }
    if (
      error.code === 'FST_ERR_CTP_INVALID_JSON_BODY' ||
      error.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' ||
      error instanceof SyntaxError
    ) {
      const detail: ValidationError[] = [{ loc: ['body'], msg: 'JSON decode error', type: 'json_invalid' }];
      return reply.code(422).send({ detail });
    }
    const known = toPorticoError(error);
    if (known.status >= 500) request.log.error({ err: error }, 'request failed');
    if (known.status === 429) reply.header('retry-after', String(known.details?.retry_after ?? 1));
    return reply.code(known.status).send(toErrorResponse(known));
  });

  app.setNotFoundHandler((request, reply) => {
    const error = errors.routeNotFound(request.method, request.url.split('?')[0] ?? '');
    return reply.code(404).send(toErrorResponse(error));
  });
}

export function toErrorResponse(error: PorticoError): ErrorResponse {
  return {
    success: false,
    status: error.status,
    error: { message: error.message, type: error.type, code: error.code, details: error.details ?? null },
  };
}

const TYPE_BY_STATUS: Record<number, ErrorType> = {
  400: 'ValidationError',
  401: 'AuthenticationError',
  403: 'PermissionDeniedError',
  404: 'NotFoundError',
  409: 'ConflictError',
  413: 'PayloadTooLargeError',
  429: 'RateLimitError',
};

/** A client error Fastify or Node found before any route ran, in our shape. */
export function badRequest(status: number, message: string): PorticoError {
  return new PorticoError(status, TYPE_BY_STATUS[status] ?? 'ValidationError', 'bad_request', message);
}

/**
 * U+0000 is valid JSON and a valid percent-encoding, but no name, id or title Portico keeps may
 * hold it, and PostgreSQL refuses it in text: a path parameter with one names nothing (404),
 * anywhere else it is a validation error (422), decided before any query runs.
 */
export async function rejectNulCharacters(request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const params = Object.values((request.params ?? {}) as Record<string, unknown>);
  if (params.some((value) => typeof value === 'string' && value.includes('\u0000'))) {
    throw errors.routeNotFound(request.method, request.routeOptions.url ?? '');
  }
  for (const [part, value] of [
    ['query', request.query],
    ['body', request.body],
  ] as const) {
    const path = pathToNul(value);
    if (path) {
      const detail: ValidationError[] = [
        { loc: [part, ...path], msg: 'String should not contain NUL characters', type: 'string_nul' },
      ];
      await reply.code(422).send({ detail });
      return;
    }
  }
}

/** Where the first string holding U+0000 is, walking without recursion (bodies may nest deeply). */
function pathToNul(root: unknown): (string | number)[] | undefined {
  const stack: [unknown, (string | number)[]][] = [[root, []]];
  while (stack.length > 0) {
    const [value, path] = stack.pop() as [unknown, (string | number)[]];
    if (typeof value === 'string') {
      if (value.includes('\u0000')) return path;
    } else if (Array.isArray(value)) {
      for (const [index, item] of value.entries()) stack.push([item, [...path, index]]);
    } else if (value !== null && typeof value === 'object') {
      for (const [key, item] of Object.entries(value)) {
        if (key.includes('\u0000')) return [...path, key];
        stack.push([item, [...path, key]]);
      }
    }
  }
  return undefined;
}

function toPorticoError(error: FastifyError): PorticoError {
  if (error instanceof PorticoError) return error;
  if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE')
    return errors.payloadTooLarge(Number(error.message.match(/\d+/)?.[0] ?? 0));
  if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return errors.unsupportedMediaType();
  const status = error.statusCode ?? 500;
  const type = TYPE_BY_STATUS[status];
  // Fastify's own client errors (bad URL encoding, malformed headers) keep their status and message.
  if (type && status < 500) return new PorticoError(status, type, 'bad_request', error.message);
  return errors.internal();
}

/** Pydantic v2's error types and messages, so clients written for Mixpeek parse ours the same way. */
function toValidationDetail(error: FastifyError, body: unknown): ValidationError[] {
  const part = { body: 'body', querystring: 'query', params: 'path', headers: 'header' }[
    error.validationContext ?? 'body'
  ] as string;
  // A nullable field that fails reports once per branch of its anyOf; a person wants one line each.
  const seen = new Set<string>();
  const issues = (error.validation ?? []).filter((issue) => {
    if (issue.keyword === 'anyOf') return false;
    const key = `${issue.instancePath}|${issue.keyword}|${(issue.params as { missingProperty?: string }).missingProperty ?? ''}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  return issues.map((issue) => {
    const path = issue.instancePath
      .split('/')
      .filter(Boolean)
      .map((segment) =>
        /^\d+$/.test(segment) ? Number(segment) : segment.replace(/~1/g, '/').replace(/~0/g, '~'),
      );
    const params = issue.params as Record<string, unknown>;
    const loc: (string | number)[] = [part, ...path];
    switch (issue.keyword) {
      case 'required':
        loc.push(String(params.missingProperty));
        return { loc, msg: 'Field required', type: 'missing' };
      case 'type':
        if (
          path.length === 0 &&
          part === 'body' &&
          params.type === 'object' &&
          (body === undefined || body === null)
        ) {
          return { loc, msg: 'Field required', type: 'missing' };
        }
        return typeError(loc, String(params.type), part !== 'body');
      case LAX_BOOLEAN_KEYWORD:
        return (params.error as LaxBooleanError) === 'bool_parsing'
          ? { loc, msg: 'Input should be a valid boolean, unable to interpret input', type: 'bool_parsing' }
          : typeError(loc, 'boolean', part !== 'body');
      case 'minimum':
        return {
          loc,
          msg: `Input should be greater than or equal to ${params.limit}`,
          type: 'greater_than_equal',
        };
      case 'maximum':
        return { loc, msg: `Input should be less than or equal to ${params.limit}`, type: 'less_than_equal' };
      case 'minLength':
        return {
          loc,
          msg: `String should have at least ${params.limit} characters`,
          type: 'string_too_short',
        };
      case 'maxLength':
        return { loc, msg: `String should have at most ${params.limit} characters`, type: 'string_too_long' };
      case 'pattern':
        return {
          loc,
          msg: `String should match pattern '${params.pattern}'`,
          type: 'string_pattern_mismatch',
        };
      default:
        return { loc, msg: issue.message ?? 'Invalid value', type: 'value_error' };
    }
  });
}

function typeError(loc: (string | number)[], expected: string, fromText: boolean): ValidationError {
  switch (expected) {
    case 'string':
      return { loc, msg: 'Input should be a valid string', type: 'string_type' };
    case 'boolean':
      return { loc, msg: 'Input should be a valid boolean', type: 'bool_type' };
    case 'integer':
      return fromText
        ? {
            loc,
            msg: 'Input should be a valid integer, unable to parse string as an integer',
            type: 'int_parsing',
          }
        : { loc, msg: 'Input should be a valid integer', type: 'int_type' };
    case 'array':
      return { loc, msg: 'Input should be a valid list', type: 'list_type' };
    case 'object':
      return {
        loc,
        msg: 'Input should be a valid dictionary or object to extract fields from',
        type: 'model_attributes_type',
      };
    default:
      return { loc, msg: `Input should be of type ${expected}`, type: `${expected}_type` };
  }
}
