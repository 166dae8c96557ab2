// Test-only, never shipped: loaded with `node --import` into the real daemon (bin/floorgate run) so
// that it fails the way a bug would, from inside the process. On SIGUSR2 it throws (uncaught) or
// rejects (unhandled), twice in a row, with a cause chain and a secret in the messages.
process.on("SIGUSR2", () => {
  const secret = process.env.FAULT_SECRET ?? "";
  const cause = Object.assign(new Error(`peer refused while sending ${secret}`), { code: "ECONNREFUSED" });
  const err = Object.assign(new Error(`boom while holding ${secret}`, { cause }), { code: "EBOOM" });
  if (process.env.FAULT_KIND === "rejection") {
    void Promise.reject(err);
    void Promise.reject(new Error("a second failure right behind the first"));
  } else {
    setImmediate(() => { throw err; });
    setImmediate(() => { throw new Error("a second failure right behind the first"); });
  }
});
