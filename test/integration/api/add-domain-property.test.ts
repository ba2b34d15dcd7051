import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCustomerHostname } from '../../../src/domain/hostname.js';
import { createTestApp, openApiOn, type TestApi } from '../../helpers/api.js';
import { backends } from '../../helpers/stores.js';

/** Hostile and random input to add-domain: never a 500, and nothing stored that the policy refuses. */
const hostileFragments = fc.constantFrom(
  '.',
  '..',
  '-',
  '*',
  '/',
  ':',
  '@',
  '?',
  '#',
  '%',
  '\\',
  ' ',
  '\t',
  '\n',
  '\u0000',
  '\u200b',
  '\ufeff',
  'xn--',
  'xn--zz',
  'http://',
  'https://',
  '[::1]',
  '127.0.0.1',
  'localhost',
  'co.uk',
  'apps.portico.test',
  'ü',
  'ß',
  'ı',
  '。',
  '％',
  'Ａ',
  '\ud800',
  '😀',
  'a'.repeat(64),
  'com',
  'example.com',
  'test',
);
const part = fc.oneof(
  fc.stringMatching(/^[a-z0-9-]{1,12}$/),
  hostileFragments,
  fc.string({ maxLength: 8 }),
  fc.string({ unit: 'grapheme', maxLength: 4 }),
);
// Parts mostly joined by dots, so many inputs look like hostnames and some pass the policy.
const hostnameLike = fc
  .array(fc.tuple(part, fc.constantFrom('.', '.', '')), { minLength: 1, maxLength: 8 })
  .map((pieces) => pieces.map(([text, separator]) => text + separator).join(''));
// Names that should mostly pass, with hostile decoration (case, dots, spaces, Unicode) around them.
const plausible = fc
  .tuple(
    fc.array(fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?$/), { minLength: 1, maxLength: 3 }),
    fc.constantFrom('com', 'net', 'co.uk', 'de', 'test', 'xn--p1ai', 'bücher.de'),
    fc.constantFrom('', '.', ' ', '\t', 'É'),
  )
  .map(
    ([labels, suffix, decoration]) =>
      `${decoration}${[...labels, suffix].join('.')}${decoration.trim() === 'É' ? '' : decoration}`,
  );
const anyBody = fc.oneof(
  plausible.map((domain) => ({ domain })),
  hostnameLike.map((domain) => ({ domain })),
  fc.record({
    domain: hostnameLike,
    is_primary: fc.oneof(fc.boolean(), fc.string(), fc.integer(), fc.constant(null)),
  }),
  fc.anything().map((value) => ({ domain: value })),
  fc.anything(),
);

describe.each(backends)('add-domain under random input on $name', (backend) => {
  let api: TestApi;
  let key: string;
  let appId: string;

  beforeAll(async () => {
    api = await openApiOn(backend);
    key = await api.keyFor('fuzz');
    appId = await createTestApp(api, key);
  });
  afterAll(async () => {
    await api?.close();
  });

  it('answers 200, 400, 409 or 422 (never 500), and every stored name passes the policy unchanged', async () => {
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(anyBody, async (body) => {
        const response = await api.call(
          key,
          'POST',
          `/v1/apps/${appId}/domains`,
          body === undefined ? 'null' : body,
        );
        expect([200, 400, 409, 422]).toContain(response.statusCode);
        if (response.statusCode === 200) {
          accepted++;
          const stored = response.json().domain as string;
          expect(parseCustomerHostname(stored, { appsDomain: api.config.appsDomain })).toBe(stored);
        }
        if (response.statusCode === 400) expect(response.json().error.code).toMatch(/^[a-z_]+$/);
      }),
      { numRuns: 400 },
    );
    // The generator must reach the success path too, or the second half of the property is vacuous.
    expect(accepted).toBeGreaterThan(0);
    const all = await api.store.listDomains(appId, { limit: 1000, offset: 0 });
    for (const domain of all.rows) {
      expect(parseCustomerHostname(domain.name, { appsDomain: api.config.appsDomain })).toBe(domain.name);
      expect(domain.name.length).toBeLessThanOrEqual(253);
    }
  });
});
