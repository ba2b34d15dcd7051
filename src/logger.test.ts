import { describe, expect, it, vi } from 'vitest';
import { createLogger, formatRecord } from './logger.js';

/** A logger whose lines are collected, as `serve` writes them to stdout. */
function capture(format: 'json' | 'text') {
  const lines: string[] = [];
  const logger = createLogger('info', format, { write: (line: string) => lines.push(line) });
  return { logger, lines };
}

describe('log lines', () => {
  it('text: time, level, role and message, then the fields, from the same record as JSON', () => {
    const json = capture('json');
    const text = capture('text');
    // One clock reading for both records: written a millisecond apart, their times would differ.
    vi.useFakeTimers({ now: new Date('2026-05-01T18:10:15.387Z'), toFake: ['Date'] });
    try {
      for (const { logger } of [json, text]) {
        logger
          .child({ role: 'edge' })
          .warn({ hostname: 'shop.acme.com', note: 'two words', n: 3 }, 'edge: slow');
      }
    } finally {
      vi.useRealTimers();
    }
    const record = JSON.parse(json.lines[0] ?? '');
    expect(record).toMatchObject({ level: 40, role: 'edge', hostname: 'shop.acme.com', msg: 'edge: slow' });
    expect(record.time).toBe('2026-05-01T18:10:15.387Z');
    expect(text.lines).toEqual([
      `18:10:15.387Z WARN  [edge] edge: slow hostname=shop.acme.com note="two words" n=3\n`,
    ]);
  });

  it('text: redacts what JSON redacts', () => {
    const { logger, lines } = capture('text');
    logger.info({ key: 'pk_secret', headers: { authorization: 'Bearer pk_secret' } }, 'request');
    expect(lines.join('')).not.toContain('pk_secret');
    expect(lines.join('')).toContain('key=[redacted]');
  });

  it("text: an error's message, and below an ERROR its stack, indented", () => {
    const { logger, lines } = capture('text');
    logger.warn({ err: new Error('lease lost') }, 'worker: renewing leases failed');
    logger.error({ err: new Error('disk full') }, 'worker: claiming jobs failed');
    expect(lines[0]).toMatch(/ WARN {2}worker: renewing leases failed err="lease lost"\n$/);
    expect(lines[1]).toMatch(
      / ERROR worker: claiming jobs failed err="disk full"\n {4}Error: disk full\n {8}at /,
    );
  });

  it('passes a line that is not JSON through unchanged', () => {
    expect(formatRecord('plain words')).toBe('plain words\n');
  });
});
