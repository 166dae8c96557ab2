/** Moved to test/helpers/tcp-proxy.ts (the OPC UA network-cut test uses it too); kept for existing imports. */
export * from "../helpers/tcp-proxy.js";
