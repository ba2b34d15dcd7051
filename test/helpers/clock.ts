import type { Clock } from '../../src/domain/clock.js';

/** A clock the test moves by hand, so schedules measured in hours are tested in milliseconds. */
export class ManualClock implements Clock {
  private time: number;
  constructor(start = '2026-11-27T12:00:00.000Z') {
    this.time = Date.parse(start);
  }
  now(): Date {
    return new Date(this.time);
  }
  advance(seconds: number): void {
    this.time += seconds * 1000;
  }
}
