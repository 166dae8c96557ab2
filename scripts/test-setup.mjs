#!/usr/bin/env node
// Installs the Debian packages the test suite uses on a fresh machine, and fails loudly when it
// cannot: a test that silently skips because a server is missing is a defect.
//
// Each package is checked by running or importing what the suite uses from it, not by one file's
// presence: python3-pymodbus was "there" while `import pymodbus.server` failed for want of
// python3-serial / python3-serial-asyncio, which `--no-install-recommends` leaves out.
//
// It starts, stops or reconfigures no service: the tests start their own servers on free ports,
// and a Mosquitto or InfluxDB that the machine already runs is the user's business.
import { execFileSync, spawnSync } from "node:child_process";

/**
 * What the suite spawns or imports (grep test/ bench/ for spawn/execFile and /usr/bin, /usr/sbin),
 * with the Debian package that provides it.
 * - run: [file, ...args], and what counts as working: exit 0 unless `out` is given, else `out`
 *   must match stdout+stderr (some tools print their usage with a non-zero exit code).
 */
const needs = [
  { pkg: "mosquitto", why: "MQTT broker of the output tests (test/helpers/mosquitto.ts)", run: ["/usr/sbin/mosquitto", "-h"], out: /mosquitto version \d/ },
  { pkg: "mosquitto", why: "password files for the broker's auth tests", run: ["/usr/bin/mosquitto_passwd", "-h"], out: /mosquitto_passwd/ },
  { pkg: "mosquitto-clients", why: "mosquitto_sub/pub, used by the README's demo and by hand", run: ["/usr/bin/mosquitto_sub", "--help"], out: /mosquitto_sub version \d/ },
  { pkg: "influxdb", why: "InfluxDB 1.x for the influx output", run: ["/usr/bin/influxd", "version"] },
  { pkg: "socat", why: "virtual serial pair of the RTU tests (test/modbus/rtu.test.ts)", run: ["socat", "-V"] },
  { pkg: "udev", why: "udevadm, spawned by serialport's port listing in the RTU tests", run: ["udevadm", "--version"] },
  { pkg: "python3", why: "runs the pymodbus reference server", run: ["/usr/bin/python3", "--version"] },
  {
    pkg: "python3-pymodbus python3-serial python3-serial-asyncio",
    why: "pymodbus reference server (test/helpers/pymodbus_server.py)",
    run: ["/usr/bin/python3", "-c", "import serial, serial_asyncio; from pymodbus.server import StartAsyncTcpServer; from pymodbus.datastore import ModbusSlaveContext"],
  },
  { pkg: "chromium", why: "the dashboard's browser tests (playwright-core drives /usr/bin/chromium)", run: ["/usr/bin/chromium", "--version"], out: /Chromium \d/ },
  { pkg: "openssl", why: "throwaway PKI of the TLS tests (test/helpers/certs.ts)", run: ["openssl", "version"] },
  { pkg: "util-linux", why: "flock", run: ["flock", "--version"] },
];

/** Why a check failed, or null when it passed. */
function failure(n) {
  const [file, ...args] = n.run;
  const r = spawnSync(file, args, { encoding: "utf8", timeout: 20_000 });
  if (r.error) return r.error.code === "ENOENT" ? `${file} not found` : r.error.message;
  const text = `${r.stdout}${r.stderr}`;
  if (n.out) return n.out.test(text) ? null : `\`${n.run.join(" ")}\` printed no ${n.out}: ${text.trim().split("\n").slice(-2).join(" / ")}`;
  return r.status === 0 ? null : `\`${n.run.join(" ")}\` exited ${r.status ?? r.signal}: ${text.trim().split("\n").slice(-2).join(" / ")}`;
}

function failing() {
  return needs.map((n) => ({ n, why: failure(n) })).filter((f) => f.why !== null);
}

function packagesOf(fails) {
  return [...new Set(fails.flatMap((f) => f.n.pkg.split(" ")))];
}

function report(fails) {
  return fails.map((f) => `  ${f.n.pkg}: ${f.why} (needed for: ${f.n.why})`).join("\n");
}

const before = failing();
if (before.length === 0) console.log(`test-setup: ${needs.length} checks passed (${packagesOf(needs.map((n) => ({ n }))).join(" ")})`);
else {
  const pkgs = packagesOf(before);
  console.log(`test-setup: missing or not working:\n${report(before)}\ntest-setup: installing ${pkgs.join(" ")} with apt-get`);
  if (process.getuid?.() !== 0) {
    console.error(`test-setup: not root; install them yourself:\n  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${pkgs.join(" ")}`);
    process.exit(1);
  }
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  try {
    execFileSync("apt-get", ["update", "-qq"], { stdio: "inherit", env });
    execFileSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...pkgs], { stdio: "inherit", env });
  } catch (err) {
    console.error(`test-setup: apt-get failed (${err.message}); the suite needs: ${pkgs.join(" ")}`);
    process.exit(1);
  }
  const after = failing();
  if (after.length > 0) {
    console.error(`test-setup: STILL MISSING after apt-get install:\n${report(after)}`);
    process.exit(1);
  }
  console.log("test-setup: every package the suite uses is installed and working");
}
