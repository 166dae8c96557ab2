import type { DeviceConfigBase, DriverPlugin, SimulatorRun } from "../core/plugin.js";
import { driverNames, findDriver } from "../plugins/drivers.js";
import { describeError } from "../core/errors.js";
import { listenHint, loadOrExplain, untilSignal } from "./run.js";
import { fleetFromConfig, startMqttFleet } from "../demo/mqtt-fleet.js";

/** Devices listed one per line before the rest is summed up: a plant of 2,000 should not scroll for a minute. */
const LIST_AT_MOST = 20;

const article = (noun: string): string => (/^[aeiou]/i.test(noun) ? "an" : "a");

/** The config's devices split by what can serve them: per driver with a simulator, and the rest with why. */
export interface SimulationPlan {
  /** one entry per driver that serves at least one device, in driver list order */
  readonly serve: { plugin: DriverPlugin<DeviceConfigBase>; devices: DeviceConfigBase[] }[];
  /** "not simulated (…): ids" lines */
  readonly skipped: string[];
  /** "Modbus TCP device on this machine (host …)" for every driver with a simulator */
  readonly couldServe: string[];
}

/** Which devices of `devices` the built drivers' simulators serve (pure: loads no server). */
export function simulationPlan(devices: readonly DeviceConfigBase[]): SimulationPlan {
  const serve: SimulationPlan["serve"] = [];
  const skipped = new Map<string, string[]>();
  const skip = (why: string, id: string): void => { const l = skipped.get(why) ?? []; l.push(id); skipped.set(why, l); };
  const couldServe: string[] = [];
  for (const name of driverNames) {
    const plugin = findDriver(name)!;
    const sim = plugin.simulator;
    const mine = devices.filter((d) => d.driver === name);
    if (!sim) {
      for (const d of mine) skip(`the ${name} driver has no simulator`, d.id);
      continue;
    }
    couldServe.push(`${sim.serves} (${sim.where})`);
    const accepted = mine.filter((d) => sim.accepts(d));
    for (const d of mine) if (!accepted.includes(d)) skip(`not ${article(sim.serves)} ${sim.serves}`, d.id);
    if (accepted.length > 0) serve.push({ plugin, devices: accepted });
  }
  for (const d of devices) if (findDriver(d.driver) === undefined) skip(`the ${d.driver} driver is not in this build`, d.id);
  return { serve, skipped: [...skipped].map(([why, ids]) => `not simulated (${why}): ${ids.join(", ")}`), couldServe };
}

/**
 * `floorgate simulate`: only the simulated machines, for tests and trials. Every device whose
 * driver has a simulator (`DriverPlugin.simulator`) and that it accepts (a Modbus TCP device or an
 * OPC UA server on this machine) is served; other devices are listed as not simulated.
 */
export async function runSimulate(file: string): Promise<number> {
  const config = loadOrExplain(file);
  const plan = simulationPlan(config.devices);
  const sensors = fleetFromConfig(config.ingest);
  if (plan.serve.length === 0 && !sensors) {
    process.stderr.write(`floorgate simulate: no ${plan.couldServe.join(", nor ")} in ${file}; nothing to simulate\n`);
    return 1;
  }
  const runs: SimulatorRun[] = [];
  try {
    for (const { plugin, devices } of plan.serve) runs.push(await plugin.simulator!.start(devices));
  } catch (err) {
    await Promise.all(runs.map((r) => r.stop()));
    const hint = listenHint(err, `change that device's port in ${file} (and where the gateway polls it)`);
    process.stderr.write(`floorgate simulate: cannot start a simulator: ${describeError(err)}${hint === undefined ? "" : `\n  ${hint}`}\n`);
    return 2;
  }
  const lines = runs.flatMap((r) => r.served);
  const out = lines.slice(0, LIST_AT_MOST);
  if (lines.length > LIST_AT_MOST) out.push(`… and ${lines.length - LIST_AT_MOST} more devices`);
  out.push(...plan.skipped, ...runs.flatMap((r) => r.notes));
  // MQTT sensors roaming against the config's own device listener (they connect once the gateway runs)
  const fleet = sensors && startMqttFleet({ ...sensors, periodMs: 2000 });
  if (sensors) out.push(`simulated ${sensors.ids.length} MQTT sensors (${sensors.ids[0]}…) publishing to ${sensors.url}, roaming now and then`);
  out.push("Ctrl-C stops the simulators.");
  process.stdout.write(out.map((l) => `${l}\n`).join(""));
  await untilSignal();
  await fleet?.stop();
  await Promise.all(runs.map((r) => r.stop()));
  return 0;
}
