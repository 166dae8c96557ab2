// Pass line: the soak (bench/soak.ts) run for 45 s with a fixed seed injects every fault kind at
// least once — broker SIGKILL, broker SIGSTOP, gateway SIGKILL, disk full, Modbus simulator
// restart — under Modbus polls and HTTP pushes, and ends with 0 acknowledged samples lost, every
// Modbus value under its own tag, and the gateway exiting 0 on SIGTERM. Seed 6 with 9 faults is
// K G M S D D S M K (K broker kill, G gateway kill, M Modbus, S broker stop, D disk full): the disk
// fills after the last gateway kill, so whatever a full disk leaves broken is not wiped by a
// restart before the final SIGTERM. Runs as root (the soak mounts its own tmpfs) and needs the
// built daemon (`npm run build`), like the other process tests.
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { SoakSummary } from "../../bench/soak-report.js";
import { FAULT_KINDS } from "../../bench/soak-faults.js";

const root = resolve(import.meta.dirname, "..", "..");

describe("soak smoke", () => {
  let dir = "";
  afterAll(async () => { if (dir) await rm(dir, { recursive: true, force: true }); });

  it("loses no acknowledged sample through one of each fault (seed 6, 45 s)", async () => {
    if (process.getuid?.() !== 0) throw new Error("the soak mounts a tmpfs and must run as root");
    dir = await mkdtemp(join(tmpdir(), "floorgate-soak-smoke-"));
    const out = join(dir, "summary.json");
    const args = [
      "--import", "tsx", join(root, "bench", "soak.ts"),
      "--minutes", "0.75", "--seed", "6", "--gap", "1-3", "--hold-max", "3", "--max-faults", "9",
      "--modbus-devices", "10", "--push-devices", "10", "--drain", "40", "--out", out,
    ];
    const child = spawn(process.execPath, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    const output: string[] = [];
    child.stdout!.on("data", (d: Buffer) => output.push(d.toString()));
    child.stderr!.on("data", (d: Buffer) => output.push(d.toString()));
    const code = await new Promise<number | null>((r) => child.once("exit", (c) => r(c)));
    const log = output.join("");
    expect(code, log).toBe(0);

    const s = JSON.parse(await readFile(out, "utf8")) as SoakSummary;
    for (const kind of FAULT_KINDS) expect(s.faults.byKind[kind] ?? 0, `${kind} never injected:\n${log}`).toBeGreaterThanOrEqual(1);
    expect(s.lost, log).toBe(0);
    expect(s.http.missing, log).toBe(0);
    expect(s.gateway.exit.code, log).toBe(0);
    expect(s.gateway.drainTimedOut, log).toBe(false);
    expect(s.gateway.incarnations).toBeGreaterThanOrEqual(2);
    expect(s.http.acknowledged).toBeGreaterThan(1000);
    expect(s.http.delivered).toBeGreaterThanOrEqual(s.http.acknowledged);
    expect(s.modbus.delivered).toBeGreaterThan(1000);
    expect(s.modbus.misattributed, log).toBe(0);
    expect(s.consumer.sessionLostAtS, log).toEqual([]);
  }, 120_000);
});
