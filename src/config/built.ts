/**
 * The plugin config parts of this build, from the explicit lists in src/plugins/. The only module
 * of src/config that imports the lists: everything else here works on any composition.
 */
import { drivers } from "../plugins/drivers.js";
import { outputs } from "../plugins/outputs.js";
import { notBuilt } from "../plugins/planned.js";
import { ingestListeners } from "../plugins/ingest.js";
import type { ConfigParts } from "./model.js";

export const builtParts: ConfigParts = { drivers, outputs, ingestListeners, notBuilt };
