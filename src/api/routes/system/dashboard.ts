import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { PROJECT_ROOT } from '../../../project-root.js';
import type { Api, ApiContext } from '../../context.js';

/** The dashboard's sources: plain ES modules, served as they are (no build step). */
const WEB_DIR = path.join(PROJECT_ROOT, 'web');

/**
 * A package's browser ES module build, found beside the CommonJS build that `require` resolves (the
 * packages do not all export their package.json, so their folder cannot be asked for directly).
 */
const browserBuild = (specifier: string, file: string) =>
  path.join(path.dirname(createRequire(import.meta.url).resolve(specifier)), file);

const HTML = 'text/html; charset=utf-8';
const JS = 'text/javascript; charset=utf-8';
const CSS = 'text/css; charset=utf-8';

/**
 * Every URL the dashboard uses, and nothing else: a fixed table rather than a static directory, so
 * no request path ever reaches the file system. The libraries are the packages' browser ES module
 * builds (their `browser` export), straight from node_modules; web/index.html's import map points
 * `preact`, `preact/hooks` and `htm` at these URLs.
 */
const FILES: Record<string, { file: string; type: string }> = {
  '/': { file: path.join(WEB_DIR, 'index.html'), type: HTML },
  // The page's own modules: app.js imports the others by relative URL.
  ...Object.fromEntries(
    ['app.js', 'api.js', 'ui.js', 'domain-panel.js'].map((name) => [
      `/ui/${name}`,
      { file: path.join(WEB_DIR, name), type: JS },
    ]),
  ),
  '/ui/styles.css': { file: path.join(WEB_DIR, 'styles.css'), type: CSS },
  '/ui/vendor/preact.mjs': { file: browserBuild('preact', 'preact.module.js'), type: JS },
  '/ui/vendor/preact-hooks.mjs': { file: browserBuild('preact/hooks', 'hooks.module.js'), type: JS },
  '/ui/vendor/htm.mjs': { file: browserBuild('htm', 'htm.module.js'), type: JS },
};

/**
 * The HTML page's policy: everything from this origin only, no inline code, no framing. The one
 * inline script is the import map (browsers accept import maps only inline), so it is allowed by
 * its hash and cannot be changed without the policy noticing.
 */
function contentSecurityPolicy(html: string): string {
  const importMap = /<script type="importmap">([\s\S]*?)<\/script>/.exec(html)?.[1];
  if (importMap === undefined) throw new Error('web/index.html has no import map');
  const hash = createHash('sha256').update(importMap).digest('base64');
  return [
    "default-src 'self'",
    `script-src 'self' 'sha256-${hash}'`,
    "img-src 'self' data:",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/**
 * The dashboard (web/) at `/`, its assets under `/ui/`. The files are read once, when the API is
 * built: a handful of small files held in memory, so a request never waits on the disk, and a
 * missing file stops the start instead of breaking the page later. Editing web/ therefore needs a
 * restart, like editing src/.
 *
 * Caching: the URLs carry no content hash (there is no build step to add one), so a long max-age
 * would keep an old app.js after an upgrade. Browsers revalidate every time instead (`no-cache`)
 * and get a 304 for an unchanged file, thanks to the ETag.
 *
 * Not in the OpenAPI document: these are pages, not API operations. The API key lives in the
 * browser's sessionStorage and is sent only to `/v1`; these routes need none.
 */
export function dashboard(api: Api, _context: ApiContext): void {
  for (const [url, { file, type }] of Object.entries(FILES)) {
    const body = readFileSync(file);
    const etag = `"${createHash('sha256').update(body).digest('base64url')}"`;
    const headers: Record<string, string> = {
      'content-type': type,
      'cache-control': 'no-cache',
      etag,
      'x-content-type-options': 'nosniff',
    };
    if (type === HTML) {
      headers['content-security-policy'] = contentSecurityPolicy(body.toString('utf8'));
      headers['referrer-policy'] = 'no-referrer';
    }

    api.get(url, { schema: { hide: true } }, async (request, reply) => {
      reply.headers(headers);
      if (isFresh(request.headers['if-none-match'], etag)) return reply.code(304).send();
      return reply.send(body);
    });
  }
}

/** Whether an `If-None-Match` header (one tag, a list, or `*`) names the current version. */
function isFresh(ifNoneMatch: string | undefined, etag: string): boolean {
  return ifNoneMatch?.split(',').some((tag) => [etag, '*'].includes(tag.trim())) ?? false;
}
