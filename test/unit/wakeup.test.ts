import { describe, expect, it } from "vitest";
import { Wakeup } from "../../src/runtime/forwarding/wakeup.js";

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe("Wakeup.until", () => {
  it("resolves on notify or when the other promise settles (even by rejecting)", async () => {
    const w = new Wakeup();
    let done = false;
    const p = w.until(new Promise(() => {})).then(() => { done = true; });
    await tick();
    expect(done).toBe(false);
    w.notify();
    await p;
    await expect(w.until(Promise.reject(new Error("x")))).resolves.toBeUndefined();
  });

  it("keeps a notify that comes after the other promise won (a racing wait() would swallow it)", async () => {
    const w = new Wakeup();
    await w.until(Promise.resolve());
    w.notify(); // e.g. a write resolving while the loop reads the journal
    let woke = false;
    const p = w.until(new Promise(() => {})).then(() => { woke = true; });
    await tick();
    expect(woke).toBe(true);
    await p;
  });

  it("the old race pattern loses that notify, which is why until exists", async () => {
    const w = new Wakeup();
    await Promise.race([Promise.resolve(), w.wait()]);
    w.notify();
    let woke = false;
    void w.wait().then(() => { woke = true; });
    await tick();
    expect(woke).toBe(false);
  });
});
