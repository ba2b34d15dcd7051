/**
 * Polls `condition` until it holds. Tests wait for conditions, never for fixed times; vitest's own
 * timeout bounds the wait, so a condition that never comes fails the test instead of hanging it.
 */
export async function waitUntil(condition: () => boolean | Promise<boolean>, intervalMs = 20): Promise<void> {
  while (!(await condition())) await new Promise((resolve) => setTimeout(resolve, intervalMs));
}
