import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config.js';
import { PorticoError } from './errors.js';
import { checkSlug, DEFAULT_RESERVED_SLUGS, reservedSlugs } from './slug.js';

const codeOf = (slug: string, reserved: ReadonlySet<string>) => {
  try {
    checkSlug(slug, reserved);
    return 'ok';
  } catch (error) {
    if (error instanceof PorticoError) return error.code;
    throw error;
  }
};

describe('checkSlug with the shipped configuration', () => {
  const config = loadConfig({ PORTICO_DNS_SERVERS: '127.0.0.1' });
  const reserved = reservedSlugs(config);

  it.each(['cname', 'www', 'api', 'admin', 'app', 'status', 'mail', 'mta-sts', 'wpad', 'autodiscover'])(
    'refuses the platform name %s with slug_reserved',
    (slug) => {
      expect(codeOf(slug, reserved)).toBe('slug_reserved');
    },
  );

  it.each([
    ['xn--zz', 'does not decode'],
    ['xn--abc-', 'encodes plain ASCII'],
    ['xn--ls8h', 'is an emoji'],
    ['ab--cd', 'has -- in positions 3-4 without being an A-label'],
    ['zz--top', 'has -- in positions 3-4'],
    ['-ab', 'starts with a hyphen'],
    ['ab-', 'ends with a hyphen'],
    ['ab', 'is shorter than 3'],
    ['a'.repeat(61), 'is longer than 60'],
    ['Shop', 'has uppercase'],
    ['shop.x', 'has a dot'],
  ])('refuses %s with slug_invalid: it %s', (slug) => {
    expect(codeOf(slug, reserved)).toBe('slug_invalid');
  });

  it.each(['acme-search', 'xn--bcher-kva', 'a-b--c', 'abc', 'cnames', 'my-api', 'www2'])(
    'accepts %s',
    (slug) => {
      expect(codeOf(slug, reserved)).toBe('ok');
    },
  );
});

describe('reservedSlugs', () => {
  it('reserves the CNAME target’s label when the target is under the apps domain', () => {
    const reserved = reservedSlugs({
      appsDomain: 'apps.example.net',
      cnameTarget: 'edge-in.apps.example.net',
      reservedSlugs: [],
    });
    expect([...reserved]).toEqual(['edge-in']);
    // The label next to the apps domain, whose owner could set cookies for the target below it.
    expect([
      ...reservedSlugs({
        appsDomain: 'apps.example.net',
        cnameTarget: 'a.b-in.apps.example.net',
        reservedSlugs: [],
      }),
    ]).toEqual(['b-in']);
    // A target elsewhere reserves nothing under the apps domain.
    expect(
      reservedSlugs({ appsDomain: 'apps.example.net', cnameTarget: 'edge.example.org', reservedSlugs: [] })
        .size,
    ).toBe(0);
  });

  it('takes the configured list instead of the default one', () => {
    const config = loadConfig({
      PORTICO_DNS_SERVERS: '127.0.0.1',
      PORTICO_APPS_DOMAIN: 'apps.example.net',
      PORTICO_RESERVED_SLUGS: 'Billing, internal-tools',
    });
    expect(config.reservedSlugs).toEqual(['billing', 'internal-tools']);
    const reserved = reservedSlugs(config);
    expect(codeOf('internal-tools', reserved)).toBe('slug_reserved');
    expect(codeOf('www', reserved)).toBe('ok');
    // The CNAME target (cname.apps.example.net by default) stays reserved whatever the list.
    expect(codeOf('cname', reserved)).toBe('slug_reserved');
  });

  it('defaults to the documented list, every entry a slug-shaped label', () => {
    expect(loadConfig({ PORTICO_DNS_SERVERS: '127.0.0.1' }).reservedSlugs).toEqual(DEFAULT_RESERVED_SLUGS);
    for (const slug of DEFAULT_RESERVED_SLUGS) expect(slug).toMatch(/^[a-z0-9][a-z0-9-]*[a-z0-9]$/);
  });
});
