/**
 * What every answer of the API must satisfy, whatever it was sent: a status below 500, JSON where it
 * says JSON, an error in one of the two documented shapes (Mixpeek's ErrorResponse, or FastAPI's
 * HTTPValidationError for 422), and no stack, SQL, path or database error in the body.
 */

/** One answer, from `inject()` or read off a socket, with the method it answers. */
export interface Seen {
  status: number;
  headers: Record<string, string | string[] | number | undefined>;
  body: string;
  method: string;
}

const LEAKS: [string, RegExp][] = [
  ['a stack trace', /\n\s*at [^\n]*[/\\][^\n]*:\d+/],
  ['a stack trace', /\bat (async )?[\w.<>]+ \((file:\/\/|\/)/],
  ['SQL', /\bSELECT\s|\bINSERT INTO\b|\bUPDATE \w+ SET\b|\bDELETE FROM\b/i],
  ['a file path', /\/work\/|node_modules|\/src\/[\w/-]+\.ts/],
  ['a database error', /SQLITE_|\bsqlite3?\b|\bpg_\w|relation "|violates (unique|foreign)/i],
];

const headerText = (value: Seen['headers'][string]) =>
  Array.isArray(value) ? value.join(', ') : value === undefined ? '' : String(value);

/**
 * Fastify's own error bodies (`{error, message, statusCode}`), sent before Portico's error handler
 * sees the request: malformed HTTP (the default `clientErrorHandler`), a bad percent-encoding in
 * the path or a path parameter over 100 characters (no `frameworkErrors`). Neither documented
 * shape: the fuzzer found all three, and the regressions in fuzz.test.ts keep each fixed; named here
 * so that a failure says which it is.
 */
function fastifyNative(body: unknown): string | undefined {
  const b = body as { error?: unknown; message?: unknown; statusCode?: unknown; code?: unknown } | null;
  if (
    typeof b === 'object' &&
    b !== null &&
    typeof b.error === 'string' &&
    typeof b.message === 'string' &&
    typeof b.statusCode === 'number' &&
    !('success' in b)
  )
    return `${b.statusCode} ${typeof b.code === 'string' ? b.code : b.message}`;
  return undefined;
}

/** Everything wrong with one answer (none when it is acceptable). */
export function judge(seen: Seen): string[] {
  const problems: string[] = [];
  if (!(seen.status >= 100 && seen.status < 500)) problems.push(`status ${seen.status}`);
  const type = headerText(seen.headers['content-type']).toLowerCase();
  const hasBody = seen.method !== 'HEAD' && seen.body.length > 0;
  let json: unknown;
  if (hasBody && type.includes('json')) {
    try {
      json = JSON.parse(seen.body);
    } catch {
      problems.push(`a ${type} body that does not parse`);
    }
  }
  if (seen.status >= 400 && hasBody) {
    if (!type.includes('json')) problems.push(`an error body of type "${type}"`);
    else if (
      json !== undefined &&
      !isErrorResponse(json, seen.status) &&
      !isValidationError(json, seen.status)
    ) {
      const native = fastifyNative(json);
      problems.push(
        native
          ? `a Fastify-native error body (${native})`
          : 'an error body in neither ErrorResponse nor HTTPValidationError shape',
      );
    }
  }
  if (seen.status >= 400 || type.includes('json')) {
    for (const [what, pattern] of LEAKS) if (pattern.test(seen.body)) problems.push(`a body with ${what}`);
  }
  return problems;
}

export function isErrorResponse(body: unknown, status: number): boolean {
  const b = body as { success?: unknown; status?: unknown; error?: { message?: unknown; type?: unknown } };
  return (
    typeof b === 'object' &&
    b !== null &&
    b.success === false &&
    b.status === status &&
    typeof b.error === 'object' &&
    b.error !== null &&
    typeof b.error.message === 'string' &&
    typeof b.error.type === 'string'
  );
}

function isValidationError(body: unknown, status: number): boolean {
  const detail = (body as { detail?: unknown } | null)?.detail;
  return (
    status === 422 &&
    Array.isArray(detail) &&
    detail.length > 0 &&
    detail.every(
      (d: { loc?: unknown; msg?: unknown; type?: unknown }) =>
        Array.isArray(d.loc) && typeof d.msg === 'string' && typeof d.type === 'string',
    )
  );
}

/** An answer in a line, for a failure message. */
export const describeSeen = (seen: Seen) =>
  `${seen.method} → ${seen.status} ${headerText(seen.headers['content-type'])} ${seen.body.slice(0, 300)}`;
