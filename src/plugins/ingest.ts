/**
 * The push listeners this build carries besides HTTP, one line each (an ingest listener is its
 * folder under src/ingest/ plus a line here; see docs/writing-a-plugin.md). Each owns a key under
 * `ingest` and is started with the gateway's one shared ingest when that key is set.
 */
import type { IngestListenerPlugin } from "../ingest/listener.js";
import { mqttListenerPlugin } from "../ingest/mqtt/plugin.js";

export const ingestListeners: readonly IngestListenerPlugin<unknown>[] = [mqttListenerPlugin as IngestListenerPlugin<unknown>];
