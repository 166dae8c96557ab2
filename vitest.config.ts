import { readFileSync } from "node:fs";
import { relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";
import { BaseSequencer, type TestSpecification } from "vitest/node";

/**
 * Seconds each file took in a full run on two cores (test/durations.json; refresh it with
 * scripts/test-durations.mjs). Without it a fresh clone has no vitest timing cache, and vitest
 * starts the largest files first: the OPC UA restart loop (140 s, a small file) started minutes
 * in and ran alone at the end while the other lanes sat idle.
 */
const ROOT = fileURLToPath(new URL(".", import.meta.url));
const DURATIONS = JSON.parse(readFileSync(`${ROOT}test/durations.json`, "utf8")) as Record<string, number>;
/** A file in neither the table nor the cache: after the long ones, before the many small unit files. */
const UNKNOWN_S = 3;

/**
 * Started before all others, in this order. The 2,000-device config parse (scale-config: under
 * 45 s, ~25 s on a loaded two-core run) is the one file whose assertion bounds its own CPU time
 * closely: it starts beside the OPC UA restart loop and the network-cut test, which mostly wait,
 * instead of beside the image build's `npm ci` or the soak (longest first would pair it with them).
 */
const START_FIRST = [
  "test/modbus/scale-config.test.ts",
  "test/opcua/restart.test.ts",
  "test/opcua/network-cut.test.ts",
];

/**
 * START_FIRST, then longest first, within vitest's own order of groups and projects: the longest
 * files start at once and the short ones fill the lanes at the end. Figures: the table, else this
 * machine's vitest cache (a file added since the table was written), else UNKNOWN_S.
 */
class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rel = (f: TestSpecification): string => relative(this.ctx.config.root, f.moduleId).split(sep).join("/");
    const seconds = (f: TestSpecification): number => {
      const cached = this.ctx.cache.getFileTestResults(`${f.project.name}:${rel(f)}`)?.duration;
      return DURATIONS[rel(f)] ?? (cached === undefined ? UNKNOWN_S : cached / 1000);
    };
    const first = (f: TestSpecification): number => {
      const i = START_FIRST.indexOf(rel(f));
      return i < 0 ? START_FIRST.length : i;
    };
    return [...files].sort((a, b) =>
      a.project.config.sequence.groupOrder - b.project.config.sequence.groupOrder
      || (a.project.name === b.project.name ? 0 : a.project.name < b.project.name ? -1 : 1)
      || first(a) - first(b)
      || seconds(b) - seconds(a));
  }
}

/**
 * Files that assert timing (poll rates, reconnect within two poll periods) run in a group of their
 * own after everything else: on two cores a CPU-heavy file beside them (a 2,000-device config
 * parse, the alias-bomb check) would measure the machine, not the driver.
 */
const TIMING = [
  "test/modbus/rtu.test.ts",
  "test/modbus/failures.test.ts",
  // Not here: test/faults/modbus-restart.test.ts (back within two poll periods, 400 ms, of each of
  // 100 restarts). Its gap is one poll period by design (median 200 ms) and held at most 251–289 ms
  // in three runs on two cores at load 12–14, one of them beside modbus-late and scale-config; in
  // the serial group it cost the pass 20 s of wall time with a core idle.
  // measures real backoff gaps against their ceilings (+40 ms): a busy neighbour delays the timers
  "test/unit/forwarder.test.ts",
  // 1,000 devices dropped and reconnected together while Modbus pollers' jitter is held under 100 ms
  "test/ingest-mqtt/reconnect-storm.test.ts",
];
/**
 * Files the Node 22 pass of `npm test` (scripts/test-node22.mjs sets FG_NODE22_PASS) leaves out.
 * The image test rebuilds the Docker stages and runs them on Node 22 already. A CLI `--exclude`
 * does not reach into the projects below, hence this.
 */
const NODE22_ONCE = [
  "test/faults/docker-image.test.ts",
  // Long fault scenarios (25–60 s each of outages, soaks and restarts): they run once, on Node 20.
  // The Node 22 pass still runs every other file of the same subsystems (journal, outputs, Modbus,
  // OPC UA, ingest), so what could differ between the runtimes is covered; the two passes together
  // must fit the suite's 10 minutes on two cores.
  "test/faults/soak-smoke.test.ts",
  "test/faults/modbus-late.test.ts",
  "test/faults/spine-crash.test.ts",
  "test/faults/broker-outage-backlog.test.ts",
  "test/faults/mqtt-broker-return.test.ts",
  "test/faults/journal-races.test.ts",
  "test/modbus/scale-config.test.ts",
  "test/faults/sigterm-under-load.test.ts",
  "test/faults/demo-exit.test.ts",
  "test/opcua/network-cut.test.ts",
  "test/outputs/influx-outage.test.ts",
  "test/ingest-mqtt/reconnect-storm.test.ts",
  // 100 Modbus server restarts (20 s). On Node 22 the Modbus reconnect paths still run:
  // test/modbus/failures.test.ts (down at start, backoff), offline-once, and the conformance suite.
  "test/faults/modbus-restart.test.ts",
  // The page runs in Chromium; what Node 22 serves it is the same files the HTTP tests fetch.
  "test/dashboard/operator.test.ts",
  "test/dashboard/demo.test.ts",
];
const ONCE = process.env.FG_NODE22_PASS ? NODE22_ONCE : [];

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration files start real servers on two cores. Three files at once: the longest ones
    // (the OPC UA restart loop: 20 × 5 s with its server down) mostly wait, and a third lane keeps
    // the cores busy meanwhile.
    maxWorkers: 3,
    sequence: { sequencer: LongestFirst },
    reporters: ["default"],
    // An unhandled rejection anywhere fails the run.
    dangerouslyIgnoreUnhandledErrors: false,
    projects: [
      {
        extends: true,
        test: {
          name: "main",
          include: ["test/**/*.test.ts", "drivers/**/*.test.ts"],
          exclude: [...TIMING, ...ONCE],
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: "timing",
          include: TIMING,
          exclude: ONCE,
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
