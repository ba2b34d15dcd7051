import { pino } from 'pino';

/**
 * The process logger: JSON lines on stdout. Credentials are redacted wherever they could appear
 * (request headers, key material), so a log line can be shared without leaking a secret.
 */
export function createLogger(level: string) {
  return pino({
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
  });
}
export type Logger = ReturnType<typeof createLogger>;
