import { addSeconds, iso } from '../domain/clock.js';
import { newId } from '../domain/ids.js';
import type { Store } from '../store/store.js';

export interface IssuanceLimits {
  /** Orders per hour across the platform (the CA account's limit, kept with a margin). */
  issuanceRatePerHour: number;
  /**
   * Orders per hour on one budget: one organization's domains, or the platform's own names (apps'
   * default hostnames), so no one can spend the whole hourly limit and starve the others.
   */
  issuanceRatePerOrgPerHour: number;
}

/** Whose budget an order spends: an organization's id, or `null` for the platform's own names. */
export type Budget = string | null;

/** How a placed order ended, as the order log keeps it. */
export type OrderOutcome = 'issued' | `failed:${string}`;

/**
 * The hourly issuance budgets, kept in the store's order log so that every worker counts the same
 * orders: the account's limit across the platform, and each budget's share of it.
 */
export class IssuanceBudget {
  constructor(
    private readonly store: Store,
    private readonly limits: IssuanceLimits,
  ) {}

  /**
   * Records an order as placed, or answers when to try again: past the per-account limit the job
   * waits instead of tripping the CA's own limit (which would block every domain for hours), and
   * past its budget's own share (one organization's, or the platform's for its own names) it waits
   * while other organizations' orders go ahead. Counted over all workers through the store, under
   * the order log's lock: workers checking at once cannot together pass a limit.
   */
  place(hostname: string, budget: Budget, now: Date): Promise<{ retryAt: Date; error: string } | undefined> {
    const since = iso(addSeconds(now, -3600));
    const { issuanceRatePerHour: platformLimit, issuanceRatePerOrgPerHour: ownLimit } = this.limits;
    // The reason is also the certificate's `last_error`, so the API shows why it is still pending.
    return this.store.transaction(async (tx) => {
      const wait = async (error: string) => {
        await tx.recordCertificateWait(hostname, error, iso(now));
        return { retryAt: addSeconds(now, 60), error };
      };
      await tx.lockCertificateOrders();
      const own = await tx.countCertificateOrdersOf(budget, since, 'placed');
      if (own >= ownLimit) {
        const whose =
          budget === null ? "the platform's own names (apps' default hostnames)" : 'this organization';
        return wait(`waiting: ${own} orders for ${whose} in the last hour reach its limit of ${ownLimit}`);
      }
      const placed = await tx.countCertificateOrders(since, 'placed');
      if (placed >= platformLimit) {
        return wait(`waiting: ${placed} orders in the last hour reach the limit of ${platformLimit}`);
      }
      await tx.recordCertificateOrder(newId('job'), hostname, 'placed', iso(now), budget);
      return undefined;
    });
  }

  /** Logs how a placed order ended (inside the transaction that stores its result). */
  async record(tx: Store, hostname: string, outcome: OrderOutcome, at: Date, budget: Budget): Promise<void> {
    await tx.recordCertificateOrder(newId('job'), hostname, outcome, iso(at), budget);
  }
}
