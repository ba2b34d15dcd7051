/** How `portico serve` writes its lines (PORTICO_LOG_FORMAT): JSON records, or lines for a person. */
export type LogFormat = 'json' | 'text';

import { pino } from 'pino';

/**
 * The process logger, on stdout unless told otherwise: JSON lines (`json`), or the same records as
 * lines for people (`text`, PORTICO_LOG_FORMAT). Credentials are redacted wherever they could appear (request
 * headers, key material), so a log line can be shared without leaking a secret.
 */
export function createLogger(
  level: string,
  format: LogFormat = 'json',
  destination: { write(line: string): unknown } = process.stdout,
) {
  const options = {
    level,
    base: { service: 'portico' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: [
        'req.headers.authorization',
        'headers.authorization',
        'key',
        'apiKey',
        'privateKey',
        '*.privateKey',
      ],
      censor: '[redacted]',
    },
  };
  if (format === 'json') return destination === process.stdout ? pino(options) : pino(options, destination);
  // Each record is formatted from pino's own JSON line, after redaction, so the two formats always
  // say the same and neither can show a secret the other hides. process.stdout writes to a pipe or
  // a terminal synchronously (Linux), so these lines keep their order with everything else printed.
  return pino(options, { write: (line: string) => destination.write(formatRecord(line)) });
}
export type Logger = ReturnType<typeof createLogger>;

const LEVEL_NAMES: Readonly<Record<number, string>> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};

/** Fields every record has, shown in a text line's prefix or not at all. */
interface LogRecord {
  level?: number;
  time?: string;
  service?: string;
  role?: string;
  msg?: string;
  err?: { type?: string; message?: string; stack?: string };
  [field: string]: unknown;
}

/**
 * One JSON log record as a line for people: `18:10:15.387Z INFO  [edge] message field=value …`.
 * The time is UTC, as in the JSON. An error shows its message; at ERROR and above its stack follows,
 * indented, since that is where a person debugging looks for it.
 */
export function formatRecord(line: string): string {
  let record: LogRecord;
  try {
    record = JSON.parse(line) as LogRecord;
  } catch {
    return line.endsWith('\n') ? line : `${line}\n`;
  }
  const { level = 30, time = '', service: _service, role, msg, err, ...fields } = record;
  const parts = [time.slice(11), (LEVEL_NAMES[level] ?? String(level)).padEnd(5)];
  if (role) parts.push(`[${role}]`);
  if (msg) parts.push(msg);
  for (const [name, value] of Object.entries(fields)) parts.push(`${name}=${fieldText(value)}`);
  if (err) parts.push(`err=${fieldText(err.message ?? err)}`);
  const stack = level >= 50 && err?.stack ? `\n${err.stack.replace(/^/gm, '    ')}` : '';
  return `${parts.join(' ')}${stack}\n`;
}

/** A value as it reads after `name=`: bare when that is unambiguous, JSON otherwise. */
function fieldText(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  return JSON.stringify(value) ?? String(value);
}
