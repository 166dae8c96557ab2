/**
 * The Docker image, built as Docker would build it, without a Docker engine (these machines have
 * none): the Dockerfile is parsed, and each stage is laid out in a scratch folder from exactly what
 * its COPY lines name — the build stage from the checkout, the runtime stage from the build
 * stage's folder and its own context lines — so a file the build needs but the Dockerfile does not
 * copy fails here as it would in `docker build` (bench/ importing test/helpers/ once did: TS2307).
 * The build stage's RUN commands run as written (`npm ci` with its `prepare`, then the prune), on
 * Node 22 like the image; the runtime folder then runs the ENTRYPOINT on Node 22: `validate` of
 * every example config it carries, and a short `run` answering /healthz, checked with the
 * image's own HEALTHCHECK command, stopped with SIGTERM, exit 0.
 *
 * What cannot be reproduced without the engine, and is left out on purpose: the base image's
 * `apt-get` RUN (python3/make/g++ for a serialport build from source; the linux-x64 prebuild is
 * used here as in the image) and the runtime stage's `mkdir /data /config && chown` (system paths;
 * the run here uses a temp dataDir).
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { execFileSync, spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, isAbsolute, join, relative } from "node:path";
import { freePort } from "../helpers/ports.js";

const ROOT = join(import.meta.dirname, "..", "..");

interface Instruction { op: string; args: string }
interface Stage { name?: string; workdir: string; steps: Instruction[] }

/** FROM-separated stages, with continuation lines joined and comments dropped. */
function parseDockerfile(text: string): Stage[] {
  const lines: string[] = [];
  let cur = "";
  for (const raw of text.split("\n")) {
    if (!cur && /^\s*#/.test(raw)) continue;
    const line = raw.replace(/\s+$/, "");
    if (line.endsWith("\\")) { cur += `${line.slice(0, -1)} `; continue; }
    cur += line;
    if (cur.trim()) lines.push(cur.trim());
    cur = "";
  }
  const stages: Stage[] = [];
  for (const l of lines) {
    const m = /^(\S+)\s*(.*)$/.exec(l)!;
    const op = m[1]!.toUpperCase();
    const args = m[2]!;
    if (op === "FROM") {
      stages.push({ name: /\sAS\s+(\S+)/i.exec(args)?.[1], workdir: "/", steps: [] });
      continue;
    }
    const stage = stages[stages.length - 1];
    if (!stage) throw new Error(`Dockerfile: ${op} before FROM`);
    if (op === "WORKDIR") stage.workdir = args.startsWith("/") ? args : join(stage.workdir, args);
    stage.steps.push({ op, args });
  }
  return stages;
}

/** A JSON-array (exec form) argument list, else a shell-form string as one item. */
function execForm(args: string): string[] {
  const a = args.trim();
  return a.startsWith("[") ? (JSON.parse(a) as string[]) : [a];
}

/** Docker's COPY: a directory source copies its contents; files go into a dest ending in "/" (or with several sources). */
function copy(sources: string[], destInStage: string, destRoot: string, workdir: string, fromRoot: (p: string) => string): string[] {
  const dest = isAbsolute(destInStage) ? destInStage : join(workdir, destInStage);
  const target = join(destRoot, relative(workdir, dest));
  const intoDir = destInStage.endsWith("/") || sources.length > 1;
  const copied: string[] = [];
  for (const src of sources) {
    const from = fromRoot(src);
    if (!existsSync(from)) throw new Error(`COPY ${src}: not found at ${from} (docker build would fail the same way)`);
    if (statSync(from).isDirectory()) {
      mkdirSync(target, { recursive: true });
      cpSync(from, target, { recursive: true });
    } else {
      const to = intoDir ? join(target, basename(from)) : target;
      mkdirSync(dirname(to), { recursive: true });
      cpSync(from, to);
    }
    copied.push(src);
  }
  return copied;
}

function envOf(steps: Instruction[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const s of steps) {
    if (s.op !== "ENV") continue;
    for (const m of s.args.matchAll(/(\w+)=("[^"]*"|\S+)/g)) env[m[1]!] = m[2]!.replace(/^"|"$/g, "");
  }
  return env;
}

/**
 * A command's exit status and output. Asynchronous: a minute of `npm ci` in spawnSync would block
 * the test worker's event loop, and with it vitest's messages to the worker.
 */
function run(file: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs: number }): Promise<{ status: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd: opts.cwd, env: opts.env, stdio: ["ignore", "pipe", "pipe"] });
    const out: string[] = [];
    child.stdout.on("data", (d: Buffer) => out.push(d.toString()));
    child.stderr.on("data", (d: Buffer) => out.push(d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs);
    child.once("error", (err) => { clearTimeout(timer); reject(err); });
    child.once("close", (status) => { clearTimeout(timer); resolve({ status, out: out.join("") }); });
  });
}

function node22(): string {
  return execFileSync(process.execPath, [join(ROOT, "scripts", "node22.mjs")], { encoding: "utf8" }).trim();
}

/** RUN commands that need the base image's OS or system paths (see the header). */
const OS_ONLY = [/^apt-get /, /^mkdir -p \/data \/config && chown /];

describe("Docker image, rebuilt from the Dockerfile's COPY lines", () => {
  const stages = parseDockerfile(readFileSync(join(ROOT, "Dockerfile"), "utf8"));
  let scratch: string;
  let buildDir: string;
  let runtimeDir: string;
  let node: string;
  let env: NodeJS.ProcessEnv;
  /** set once the build stage passed: the runtime stage is laid out from its folder */
  let built = false;

  beforeAll(() => {
    node = node22();
    scratch = mkdtempSync(join(tmpdir(), "floorgate-image-"));
    // Outside the checkout: Node must not find the repo's node_modules from the runtime folder.
    expect(relative(ROOT, scratch).startsWith("..")).toBe(true);
    buildDir = join(scratch, "build");
    runtimeDir = join(scratch, "runtime");
    mkdirSync(buildDir);
    mkdirSync(runtimeDir);
    env = {
      ...process.env,
      PATH: `${dirname(node)}:${process.env.PATH ?? ""}`,
      // the warm npm cache, quietly; what is installed is the lockfile's, as in the image
      npm_config_prefer_offline: "true", npm_config_audit: "false", npm_config_fund: "false", npm_config_update_notifier: "false",
    };
  });
  afterAll(() => { if (scratch) rmSync(scratch, { recursive: true, force: true }); });

  it("has a build stage and a runtime stage", () => {
    expect(stages).toHaveLength(2);
    expect(stages[0]!.name).toBe("build");
  });

  it("build stage: npm ci (with prepare), prune — from exactly what it copies, on Node 22", async () => {
    const [build] = stages;
    const ran: string[] = [];
    for (const step of build!.steps) {
      if (step.op === "COPY") {
        const parts = step.args.split(/\s+/).filter((p) => !p.startsWith("--"));
        expect(step.args, "the build stage copies from the checkout only").not.toMatch(/--from/);
        copy(parts.slice(0, -1), parts[parts.length - 1]!, buildDir, build!.workdir, (p) => join(ROOT, p));
      } else if (step.op === "RUN") {
        if (OS_ONLY.some((re) => re.test(step.args))) continue;
        const r = await run("sh", ["-c", step.args], { cwd: buildDir, env: { ...env, ...envOf(build!.steps) }, timeoutMs: 240_000 });
        expect(r.status, `RUN ${step.args} failed:\n${r.out}`).toBe(0);
        ran.push(step.args);
      }
    }
    expect(ran.join(" ")).toMatch(/npm ci/);
    expect(existsSync(join(buildDir, "dist", "src", "cli", "main.js"))).toBe(true);
    expect(existsSync(join(buildDir, "dist", "src", "runtime", "threads", "driver-worker.js"))).toBe(true);
    // pruned: no compiler or test runner goes into the image
    for (const dev of ["typescript", "vitest", "tsx"]) expect(existsSync(join(buildDir, "node_modules", dev)), dev).toBe(false);
    built = true;
  }, 300_000);

  it("runtime stage: validate the example configs and run with /healthz on Node 22", async () => {
    expect(built, "the build stage failed").toBe(true);
    const [build, runtime] = stages;
    for (const step of runtime!.steps) {
      if (step.op === "COPY") {
        const from = /--from=(\S+)/.exec(step.args)?.[1];
        const parts = step.args.split(/\s+/).filter((p) => !p.startsWith("--"));
        const srcRoot = from === undefined ? (p: string) => join(ROOT, p) : (p: string) => {
          expect(from).toBe(build!.name);
          return join(buildDir, relative(build!.workdir, p));
        };
        copy(parts.slice(0, -1), parts[parts.length - 1]!, runtimeDir, runtime!.workdir, srcRoot);
      } else if (step.op === "RUN") {
        expect(OS_ONLY.some((re) => re.test(step.args)), `unexpected RUN in the runtime stage: ${step.args}`).toBe(true);
      }
    }
    const entry = execForm(runtime!.steps.find((s) => s.op === "ENTRYPOINT")!.args);
    expect(entry[0]).toBe("node");
    // /app/… inside the image is the runtime folder here
    const argv = entry.slice(1).map((a) => (a.startsWith(`${runtime!.workdir}/`) ? join(runtimeDir, relative(runtime!.workdir, a)) : a));
    const runEnv = { ...env, ...envOf(runtime!.steps) };
    expect(runEnv.NODE_ENV).toBe("production");

    // every example config the image carries is valid (env references given placeholder values)
    const configs = readdirSync(join(runtimeDir, "edge-config")).filter((f) => f.endsWith(".yaml"));
    expect(configs.length).toBeGreaterThan(0);
    const placeholder = join(scratch, "placeholder.pem");
    writeFileSync(placeholder, "placeholder\n");
    for (const f of configs) {
      const file = join(runtimeDir, "edge-config", f);
      const refs = [...readFileSync(file, "utf8").matchAll(/\$\{env:(\w+)\}/g)].map((m) => m[1]!);
      const refEnv = Object.fromEntries(refs.map((n) => [n, n.endsWith("_FILE") ? placeholder : `placeholder-${n.toLowerCase()}`]));
      const r = await run(node, [...argv, "validate", "--config", file], { cwd: runtimeDir, env: { ...runEnv, ...refEnv }, timeoutMs: 60_000 });
      expect(r.status, `validate ${f}:\n${r.out}`).toBe(0);
      expect(r.out).toMatch(/config ok/);
    }

    // a short run, as the image's CMD would, on a temp dataDir and a free port
    const port = await freePort();
    const cfg = join(scratch, "floorgate.yaml");
    writeFileSync(cfg, `gateway: { id: image-edge, group: tests, dataDir: ${JSON.stringify(join(scratch, "data"))} }\nhttp: { listen: "127.0.0.1:${port}" }\n`);
    const child = spawn(node, [...argv, "run", "--config", cfg], { cwd: runtimeDir, env: runEnv, stdio: ["ignore", "pipe", "pipe"] });
    const out: string[] = [];
    child.stdout.on("data", (d: Buffer) => out.push(d.toString()));
    child.stderr.on("data", (d: Buffer) => out.push(d.toString()));
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    try {
      // the image's own HEALTHCHECK command, aimed at this port, until it passes
      const hc = /CMD\s+(.*)$/.exec(runtime!.steps.find((s) => s.op === "HEALTHCHECK")!.args)![1]!;
      // it probes the image's port 8080; here the run's own port (else another server could answer)
      expect(hc).toContain("127.0.0.1:8080");
      const hcArgv = execForm(hc).length > 1 ? execForm(hc) : (["sh", "-c", hc] as string[]);
      const deadline = Date.now() + 30_000;
      for (;;) {
        if (child.exitCode !== null) throw new Error(`run exited with ${child.exitCode}:\n${out.join("")}`);
        const r = await run(hcArgv[0]!, hcArgv.slice(1).map((a) => a.replaceAll("127.0.0.1:8080", `127.0.0.1:${port}`)), { env: runEnv, timeoutMs: 10_000 });
        if (r.status === 0) break;
        if (Date.now() > deadline) throw new Error(`HEALTHCHECK never passed:\n${r.out}\n${out.join("")}`);
        await new Promise((res) => setTimeout(res, 100));
      }
      const health = await fetch(`http://127.0.0.1:${port}/healthz`);
      expect(health.status).toBe(200);
      // the dashboard and the chart library it loads from the image's node_modules (uPlot)
      for (const [path, has] of [["/", "<script src=\"/dashboard.js\""], ["/dashboard.js", "sessionStorage"], ["/uplot.js", "uPlot"]] as const) {
        const r = await fetch(`http://127.0.0.1:${port}${path}`);
        expect(r.status, path).toBe(200);
        expect(await r.text(), path).toContain(has);
      }
      expect((await run(node, ["--version"], { timeoutMs: 10_000 })).out.trim()).toMatch(/^v22\./);
    } finally {
      child.kill("SIGTERM");
    }
    expect(await exited, out.join("")).toBe(0);
  }, 120_000);
});
