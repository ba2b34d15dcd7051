import type { EdgeMetricsDelta } from '../ops/edge-metrics.js';

/**
 * What the primary (primary.ts) and its edge workers (edge-worker.ts) say to each other over the
 * cluster's IPC channel. Every message is a plain JSON object whose `type` starts with `portico:`.
 */

/** The argument of `portico serve` that makes it an edge worker: set by the primary only. */
export const EDGE_WORKER_FLAG = 'edge-worker';

/** Primary → worker. */
export type ToEdgeWorker =
  /** The store announced that what `hostname` serves changed (`ALL_HOSTNAMES`: forget everything). */
  | { type: 'portico:serving-change'; hostname: string }
  /** Stop accepting, finish what is in flight, send the last metrics, exit. */
  | { type: 'portico:drain' };

/** Worker → primary. */
export type FromEdgeWorker =
  /** The edge listens, on these ports (shared by every worker: the first one's bind). */
  | { type: 'portico:listening'; httpPort: number; httpsPort: number }
  /** The edge could not start: the error's message, and the code and port of a failed listen. */
  | { type: 'portico:start-failed'; message: string; code?: string; port?: number }
  /** What the edge counted since the last one (ops/edge-metrics.ts). */
  | { type: 'portico:metrics'; delta: EdgeMetricsDelta }
  /** Where the edge serves from, sent when it changes: since when from the snapshot (ISO), or null. */
  | { type: 'portico:snapshot-state'; servingSince: string | null; takenAt: string | null };

const TYPES = new Set([
  'portico:serving-change',
  'portico:drain',
  'portico:listening',
  'portico:start-failed',
  'portico:metrics',
  'portico:snapshot-state',
]);

/** Whether `message` is one of ours (Node's cluster also sends messages of its own on the channel). */
export function isEdgeMessage(message: unknown): message is ToEdgeWorker | FromEdgeWorker {
  return (
    typeof message === 'object' && message !== null && TYPES.has(String((message as { type?: unknown }).type))
  );
}
