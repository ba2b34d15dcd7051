import type { App, Page, PageOf, Store } from '../store/store.js';
import { UniqueViolation } from '../store/store.js';
import { type Clock, iso } from './clock.js';
import { errors } from './errors.js';
import type { LifecycleHooks } from './hooks.js';
import { newId } from './ids.js';
import { parseOriginUrl } from './origin-url.js';

export interface AppInput {
  slug: string;
  title: string;
  description?: string | null;
  originUrl?: string | null;
}

export interface AppSettings {
  allowPrivateOrigins: boolean;
}

/** Apps: the things customers' domains point at. Scoped by organization throughout. */
export class AppService {
  constructor(
    private readonly store: Store,
    private readonly settings: AppSettings,
    private readonly clock: Clock,
    private readonly hooks: LifecycleHooks = {},
  ) {}

  async create(orgId: string, input: AppInput): Promise<App> {
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
        await tx.insertApp(app);
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
        const after = await tx.updateApp(orgId, appId, {
          slug: patch.slug,
          title: patch.title,
          description: patch.description,
          originUrl,
          updatedAt: iso(now),
        });
        if (!after) throw errors.appNotFound(appId);
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
    });
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
