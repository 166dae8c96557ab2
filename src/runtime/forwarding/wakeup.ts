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
}
