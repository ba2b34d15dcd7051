import type { App, Domain, Store } from '../store/store.js';

/**
 * What other parts (certificates, events, the edge's caches) attach to changes of apps and
 * domains. Each runs inside the transaction that made the change, so what it writes commits or
 * rolls back with it; none may call out to the network.
 */
export interface LifecycleHooks {
  appCreated?(tx: Store, app: App, now: Date): Promise<void>;
  /** The slug changed, so the default hostname did. */
  appRenamed?(tx: Store, before: App, after: App, now: Date): Promise<void>;
  /** What the app's hostnames serve changed: its origin, or which domain is primary. */
  appRoutingChanged?(tx: Store, app: App, now: Date): Promise<void>;
  /** Called just before the app and, by cascade, its domains are deleted, in the same transaction. */
  appRemoved?(tx: Store, app: App, now: Date): Promise<void>;
  domainRemoved?(tx: Store, domain: Domain, now: Date): Promise<void>;
}
