#!/usr/bin/env node
// Installs what the test suite needs on a fresh Debian machine, and fails loudly when it cannot:
// a test that silently skips because a server is missing is a defect.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

const needs = [
  { bin: "/usr/sbin/mosquitto", pkg: "mosquitto" },
  { bin: "/usr/bin/mosquitto_sub", pkg: "mosquitto-clients" },
  { bin: "/usr/bin/influxd", pkg: "influxdb" },
  { bin: "/usr/bin/socat", pkg: "socat" },
  { py: "pymodbus", pkg: "python3-pymodbus" },
];

function present(n) {
  if (n.bin) return existsSync(n.bin);
  return spawnSync("/usr/bin/python3", ["-c", `import ${n.py}`], { stdio: "ignore" }).status === 0;
}

const missing = needs.filter((n) => !present(n)).map((n) => n.pkg);
if (missing.length > 0) {
  console.log(`test-setup: installing ${missing.join(" ")} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  try {
    execFileSync("apt-get", ["update", "-qq"], { stdio: "inherit", env });
    execFileSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...missing], { stdio: "inherit", env });
  } catch (err) {
    console.error(`test-setup: apt-get failed (${err.message}); the suite needs: ${missing.join(" ")}`);
    process.exit(1);
  }
  const still = needs.filter((n) => !present(n)).map((n) => n.pkg);
  if (still.length > 0) {
    console.error(`test-setup: still missing after apt-get: ${still.join(" ")}`);
    process.exit(1);
  }
}
// Debian starts the packaged daemons on their default ports; the tests start their own on free
// ports, so the packaged ones are only stopped to keep the machine quiet (ignore failures).
spawnSync("sh", ["-c", "service mosquitto stop; service influxdb stop"], { stdio: "ignore" });
