import { loadOrExplain, untilSignal } from "./run.js";

/** `floorgate simulate`: only the simulated machines named in the config. */
export async function runSimulate(file: string): Promise<number> {
  loadOrExplain(file);
  process.stderr.write("floorgate simulate: the machine simulators are not in this build yet\n");
  await Promise.resolve(untilSignal);
  return 2;
}
