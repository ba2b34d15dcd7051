/** The one source of "now": injected everywhere so tests can move time instead of waiting for it. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

export const iso = (date: Date) => date.toISOString();
export const addSeconds = (date: Date, seconds: number) => new Date(date.getTime() + seconds * 1000);
