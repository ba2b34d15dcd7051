import { DELIVER_JOB, type WebhookService } from '../../events/webhooks.js';
import type { JobHandler } from '../runner.js';

/** `webhook:deliver`: one attempt per run; the service schedules the next on failure. */
export function webhookHandlers(webhooks: WebhookService): JobHandler[] {
  return [
    {
      kind: DELIVER_JOB,
      timeoutMs: 30_000,
      run: (job, signal) => webhooks.deliver(String(job.payload.deliveryId), signal),
    },
  ];
}
