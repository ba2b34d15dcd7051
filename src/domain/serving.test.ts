import { describe, expect, it } from 'vitest';
import {
  appsLabelOf,
  appsWildcardHostname,
  defaultHostname,
  httpsUrl,
  isPlatformName,
  slugOfHostname,
} from './serving.js';

const APPS = 'apps.example.net';

describe('the names an app answers on', () => {
  it('gives each app {slug}.{apps domain}, and the wildcard covering them all', () => {
    expect(defaultHostname('acme-search', APPS)).toBe('acme-search.apps.example.net');
    expect(appsWildcardHostname(APPS)).toBe('*.apps.example.net');
  });

  it('reads the slug back from a default hostname, and from nothing else', () => {
    expect(slugOfHostname(defaultHostname('acme-search', APPS), APPS)).toBe('acme-search');
    for (const name of [
      APPS,
      'a.b.apps.example.net',
      '*.apps.example.net',
      'acme-search.apps.example.org',
      'shop.acme.com',
      'xapps.example.net',
    ]) {
      expect(slugOfHostname(name, APPS), name).toBeUndefined();
    }
  });

  it('takes the label directly under the apps domain at any depth', () => {
    expect(appsLabelOf('edge.cname.apps.example.net', APPS)).toBe('cname');
    expect(appsLabelOf('cname.apps.example.net', APPS)).toBe('cname');
    expect(appsLabelOf(APPS, APPS)).toBeUndefined();
    expect(appsLabelOf('cname.example.net', APPS)).toBeUndefined();
  });

  it('counts the apps domain and every name below it as the platform’s', () => {
    expect(isPlatformName(APPS, APPS)).toBe(true);
    expect(isPlatformName('a.b.apps.example.net', APPS)).toBe(true);
    expect(isPlatformName('example.net', APPS)).toBe(false);
    expect(isPlatformName('xapps.example.net', APPS)).toBe(false);
  });
});

describe('httpsUrl', () => {
  it('leaves out port 443 and keeps any other', () => {
    expect(httpsUrl('shop.acme.com', 443, '/a?b=1')).toBe('https://shop.acme.com/a?b=1');
    expect(httpsUrl('shop.acme.com', 8443, '/')).toBe('https://shop.acme.com:8443/');
  });
});
