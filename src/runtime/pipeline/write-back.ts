import type { DeviceConfig } from "../../config/types.js";
import type { Driver } from "../../core/driver.js";
import { FloorgateError } from "../../core/errors.js";
import type { Logger } from "../../core/logger.js";
import type { SampleValue } from "../../core/sample.js";
import { unscale } from "./normalize.js";

/** The running driver of a configured device (undefined when it is not running). */
export type DriverLookup = (device: string) => { config: DeviceConfig; driver: Driver } | undefined;

/**
 * Operator writes (POST /api/v1/devices/{id}/tags/{tag}/write): the pipeline run backwards. Checks
 * `writable`, applies the inverse of the tag's scaling, and hands the raw value to the device's
 * driver. Resolves once the device confirmed; rejects WRITE_REFUSED (unknown device or tag, not
 * writable, not running) or with the driver's error (DRIVER_TIMEOUT, DRIVER_EXCEPTION, …).
 */
export async function writeBack(
  devices: readonly DeviceConfig[],
  running: DriverLookup,
  log: Logger,
  device: string,
  tag: string,
  value: SampleValue,
): Promise<void> {
  const r = running(device);
  const dc = r?.config ?? devices.find((d) => d.id === device);
  if (!dc) throw new FloorgateError("WRITE_REFUSED", `unknown device ${device}`);
  const tc = dc.tags.find((t) => t.name === tag);
  if (!tc) throw new FloorgateError("WRITE_REFUSED", `device ${device} has no tag ${tag}`);
  if (!tc.writable) throw new FloorgateError("WRITE_REFUSED", `tag ${device}/${tag} is not writable (set writable: true in the config)`);
  if (!r?.driver.write) throw new FloorgateError("WRITE_REFUSED", `device ${device} is not running or its driver cannot write`);
  const raw = typeof value === "number" ? unscale(value, tc) : value;
  await r.driver.write(tag, raw);
  log.info({ device, tag }, "operator write done");
}
