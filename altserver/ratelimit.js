/**
 * Fixed-window counters, the one rate-limit mechanism of this server (client
 * events per connection, application events per room and per app).
 *
 * A window opens at the first hit after the previous one ended (not on the
 * wall clock's minute) and lasts `windowMs`; within it at most `limit` hits
 * are allowed. The text says "100/minute"; a fixed window is the plainest
 * reading of "per minute" (our reference server slides its window instead).
 *
 * @module ratelimit
 */

/** Past this many keys, expired windows are swept before a new key is added. */
const SWEEP_AT = 10_000;

export class FixedWindows {
  /**
   * @param {number} limit hits allowed per window
   * @param {number} windowMs
   * @param {{neverResets?: boolean}} [o] the `rate-window-never-resets` bug
   */
  constructor(limit, windowMs, { neverResets = false } = {}) {
    Object.assign(this, { limit, windowMs, neverResets });
    /** key -> {start, count} */
    this.windows = new Map();
  }

  #current(key, now) {
    let w = this.windows.get(key);
    if (w && now - w.start >= this.windowMs && !this.neverResets) w = undefined;
    if (!w) {
      if (this.windows.size >= SWEEP_AT) this.sweep(now);
      w = { start: now, count: 0 };
      this.windows.set(key, w);
    }
    return w;
  }

  /** Whether one more hit fits, without counting it. */
  allows(key, now = Date.now()) {
    return this.#current(key, now).count < this.limit;
  }

  /** Counts a hit; whether it was within the limit. */
  take(key, now = Date.now()) {
    const w = this.#current(key, now);
    w.count += 1;
    return w.count <= this.limit;
  }

  /** Milliseconds until `key`'s window ends (for Retry-After). */
  retryAfterMs(key, now = Date.now()) {
    const w = this.windows.get(key);
    return w ? Math.max(0, w.start + this.windowMs - now) : 0;
  }

  forget(key) {
    this.windows.delete(key);
  }

  sweep(now = Date.now()) {
    if (this.neverResets) return;
    for (const [k, w] of this.windows) if (now - w.start >= this.windowMs) this.windows.delete(k);
  }
}
