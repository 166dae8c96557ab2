#!/usr/bin/env node
// `npm run build` and `npm run typecheck` side by side, for `npm test`: two independent
// single-threaded tsc runs (the build emits src, drivers, bench and the test helpers; the
// typecheck covers everything, tests included), so on two cores they take the time of the
// longer one instead of the sum. Each one's output is printed whole when it ends; exit 1 if
// either failed.
import { spawn } from "node:child_process";

const npm = process.platform === "win32" ? "npm.cmd" : "npm";
const run = (script) => new Promise((resolve) => {
  const t0 = Date.now();
  const child = spawn(npm, ["run", "--silent", script], { stdio: ["ignore", "pipe", "pipe"] });
  const out = [];
  child.stdout.on("data", (d) => out.push(d));
  child.stderr.on("data", (d) => out.push(d));
  child.once("error", (err) => resolve({ script, ok: false, text: `${err.message}\n`, s: 0 }));
  child.once("close", (code, signal) => resolve({
    script, ok: code === 0, text: Buffer.concat(out).toString(), s: (Date.now() - t0) / 1000, why: signal ?? `exit ${code}`,
  }));
});

const results = await Promise.all([run("build"), run("typecheck")]);
let failed = false;
for (const r of results) {
  process.stdout.write(r.text);
  console.log(`npm run ${r.script}: ${r.ok ? "ok" : `FAILED (${r.why})`} in ${r.s.toFixed(1)} s`);
  failed ||= !r.ok;
}
process.exit(failed ? 1 : 0);
