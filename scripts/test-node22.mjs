#!/usr/bin/env node
// Runs the test suite again on Node 22 LTS, the runtime of the Docker image (Node 20 runs it first,
// in `npm test`). Vitest itself, its workers, and every process a test spawns (process.execPath,
// `node` on PATH, bin/floorgate's `env node`) are Node 22.
//
//   node scripts/test-node22.mjs                   the whole suite but the files vitest.config.ts runs once (NODE22_ONCE)
//   node scripts/test-node22.mjs test/modbus/...   only these files
import { spawn, spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { node22 } from "./node22.mjs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

let node;
try {
  node = node22();
} catch (err) {
  console.error(`test-node22: no Node 22: ${err.message}`);
  process.exit(1);
}
// NODE_COMPILE_CACHE (Node ≥ 22.1; Node 20 has none): every Node 22 process of the pass — vitest's
// workers, and each gateway, CLI and helper a test spawns — keeps V8's compiled code of the modules
// it loads (node-opcua above all) on disk for the next one. Measured on three CLI/OPC UA files:
// 6–13 % less CPU. It changes no code that runs, only when it is compiled.
const env = {
  ...process.env,
  PATH: `${dirname(node)}:${process.env.PATH ?? ""}`,
  FG_NODE22_PASS: "1",
  NODE_COMPILE_CACHE: process.env.NODE_COMPILE_CACHE ?? join(ROOT, ".cache", "node22-compile-cache"),
};

// The one native module (serialport, N-API prebuilds): a clear message beats failing RTU tests.
const native = spawnSync(node, ["-e", "require('@serialport/bindings-cpp').autoDetect()"], { cwd: ROOT, env, encoding: "utf8" });
if (native.status !== 0) {
  console.error(`test-node22: @serialport/bindings-cpp does not load on Node 22:\n${native.stderr}`);
  process.exit(1);
}

const files = process.argv.slice(2);
// The image test already runs its runtime stage on Node 22 (and a minute of `npm ci`), and the long
// fault scenarios run once: vitest.config.ts leaves them out of this pass when FG_NODE22_PASS is set.
const args = [join(ROOT, "node_modules", "vitest", "vitest.mjs"), "run", ...files];
console.log(`test-node22: ${node} (${spawnSync(node, ["--version"], { encoding: "utf8" }).stdout.trim()}) vitest ${args.slice(1).join(" ")}`);
const child = spawn(node, args, { cwd: ROOT, env, stdio: "inherit" });
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => child.kill(sig));
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
