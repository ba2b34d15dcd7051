import type { App, Page, PageOf, Store } from '../store/store.js';
import { UniqueViolation } from '../store/store.js';
import { addSeconds, type Clock, iso } from './clock.js';
import { errors } from './errors.js';
import type { LifecycleHooks } from './hooks.js';
import { newId } from './ids.js';
import { parseOriginUrl } from './origin-url.js';
import { checkSlug, reservedSlugs, type SlugPolicy } from './slug.js';

export interface AppInput {
  slug: string;
  title: string;
  description?: string | null;
  originUrl?: string | null;
}

export interface AppSettings extends SlugPolicy {
  allowPrivateOrigins: boolean;
  /** Apps one organization may have; no limit when absent. */
  maxAppsPerOrg?: number;
  /**
   * Days a slug freed by a deleted or renamed app stays with its organization: others get 409
   * `slug_held` meanwhile, the organization itself may take it again at once. 0 (the default here;
   * the shipped configuration holds for 30) frees it at once.
   */
  slugHoldDays?: number;
}

/** Apps: the things customers' domains point at. Scoped by organization throughout. */
export class AppService {
  private readonly reserved: ReadonlySet<string>;

  constructor(
    private readonly store: Store,
    private readonly settings: AppSettings,
    private readonly clock: Clock,
    private readonly hooks: LifecycleHooks = {},
  ) {
    this.reserved = reservedSlugs(settings);
  }

  async create(orgId: string, input: AppInput): Promise<App> {
    checkSlug(input.slug, this.reserved);
    const now = iso(this.clock.now());
    const app: App = {
      id: newId('app'),
      orgId,
      slug: input.slug,
      title: input.title,
      description: input.description ?? null,
      originUrl: this.checkOrigin(input.originUrl),
      createdAt: now,
      updatedAt: now,
    };
    await this.translateSlugConflict(input.slug, () =>
      this.store.transaction(async (tx) => {
        const limit = this.settings.maxAppsPerOrg;
        if (!(await tx.adjustAppCount(orgId, 1, limit))) throw errors.appQuotaExceeded(limit ?? 0);
        await tx.insertApp(app);
        await this.takeHeldSlug(tx, orgId, app.slug, now);
        await this.hooks.appCreated?.(tx, app, this.clock.now());
      }),
    );
    return app;
  }

  list(orgId: string, page: Page): Promise<PageOf<App>> {
    return this.store.listApps(orgId, page);
  }

  /** The app, or 404 `app_not_found` (also for another organization's app). */
  async get(orgId: string, appId: string): Promise<App> {
    const app = await this.store.findApp(orgId, appId);
    if (!app) throw errors.appNotFound(appId);
    return app;
  }

  async update(orgId: string, appId: string, patch: Partial<AppInput>): Promise<App> {
    const originUrl = patch.originUrl === undefined ? undefined : this.checkOrigin(patch.originUrl);
    const now = this.clock.now();
    return this.translateSlugConflict(patch.slug, () =>
      this.store.transaction(async (tx) => {
        const before = await tx.findAppForUpdate(orgId, appId);
        if (!before) throw errors.appNotFound(appId);
        // Checked only when the slug changes: an app keeps a slug it took before a rule refused it.
        const renamed = patch.slug !== undefined && patch.slug !== before.slug;
        if (renamed) checkSlug(patch.slug as string, this.reserved);
        const after = await tx.updateApp(orgId, appId, {
          slug: patch.slug,
          title: patch.title,
          description: patch.description,
          originUrl,
          updatedAt: iso(now),
        });
        if (!after) throw errors.appNotFound(appId);
        if (renamed) {
          await this.takeHeldSlug(tx, orgId, after.slug, iso(now));
          await this.holdSlug(tx, orgId, before.slug, now);
        }
        if (after.slug !== before.slug) await this.hooks.appRenamed?.(tx, before, after, now);
        if (after.originUrl !== before.originUrl) await this.hooks.appRoutingChanged?.(tx, after, now);
        return after;
      }),
    );
  }

  /** Deletes the app and its domains; the edge stops serving them on its next lookup. */
  async remove(orgId: string, appId: string): Promise<void> {
    await this.store.transaction(async (tx) => {
      const app = await tx.findAppForUpdate(orgId, appId);
      if (!app) throw errors.appNotFound(appId);
      // Before the delete, while the app's domains can still be listed; in the same transaction.
      await this.hooks.appRemoved?.(tx, app, this.clock.now());
      // Its domains go with it (cascade): the organization holds that many fewer.
      await tx.adjustDomainCount(orgId, -(await tx.listDomainNames(appId)).length);
      await tx.deleteApp(orgId, appId);
      await tx.adjustAppCount(orgId, -1);
      await this.holdSlug(tx, orgId, app.slug, this.clock.now());
    });
  }

  /**
   * Refuses a slug another organization's deleted or renamed app freed less than the hold ago; the
   * organization's own hold ends, since the slug is in use again. Called after the app row is
   * written, not before: on PostgreSQL a create racing the deletion that frees the slug waits on
   * the unique index until the deletion commits, and this read (a new snapshot) then sees the hold
   * the deletion wrote with it. Reading first would miss it.
   */
  private async takeHeldSlug(tx: Store, orgId: string, slug: string, now: string): Promise<void> {
    const hold = await tx.findSlugHold(slug, now);
    if (hold && hold.orgId !== orgId) throw errors.slugHeld(slug, hold.heldUntil);
    if (hold) await tx.releaseSlugHold(slug);
  }

  private async holdSlug(tx: Store, orgId: string, slug: string, now: Date): Promise<void> {
    const days = this.settings.slugHoldDays ?? 0;
    if (days > 0) await tx.holdSlug(slug, orgId, iso(addSeconds(now, days * 86400)), iso(now));
  }

  private checkOrigin(originUrl: string | null | undefined): string | null {
    return originUrl ? parseOriginUrl(originUrl, this.settings.allowPrivateOrigins) : null;
  }

  private async translateSlugConflict<T>(slug: string | undefined, write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } catch (error) {
      if (error instanceof UniqueViolation && error.index === 'apps_slug_key')
        throw errors.slugTaken(slug ?? '');
      throw error;
    }
  }
}
