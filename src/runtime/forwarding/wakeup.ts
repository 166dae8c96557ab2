/**
 * A level-triggered wake-up: `wait()` resolves at the next `notify()`, or at once if one happened
 * since the last wait. Lets a loop sleep until "something changed" without polling.
 */
export class Wakeup {
  private pending = false;
  private resolve: (() => void) | null = null;

  notify(): void {
    if (this.resolve) {
      const r = this.resolve;
      this.resolve = null;
      r();
    } else {
      this.pending = true;
    }
  }

  wait(): Promise<void> {
    if (this.pending) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise((r) => { this.resolve = r; });
  }

  /**
   * Resolves at the next `notify()` or when `other` settles, whichever comes first (never
   * rejects). Use it instead of racing `wait()` against another promise: a `wait()` that lost such
   * a race stays registered, and the next `notify()` would go to it and be lost instead of waking
   * the loop's next wait. Here the losing waiter is removed, so a later notify is kept as pending.
   */
  async until(other: Promise<unknown>): Promise<void> {
    if (this.pending) {
      this.pending = false;
      return;
    }
    let r!: () => void;
    const woken = new Promise<void>((res) => { r = res; });
    this.resolve = r;
    await Promise.race([woken, other.then(noop, noop)]);
    if (this.resolve === r) this.resolve = null;
  }
}

function noop(): void {}
