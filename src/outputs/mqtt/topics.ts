/** Topics and retained status payloads of the MQTT output (spec §6). */

/** Retained `{topicPrefix}/status` payloads. The will carries no ts: it is fixed before the session starts. */
export function gatewayStatusPayload(online: boolean, ts?: number): string {
  return ts === undefined ? JSON.stringify({ online }) : JSON.stringify({ online, ts: new Date(ts).toISOString() });
}

/** Retained `{topicPrefix}/{deviceId}/status` payload. */
export function deviceStatusPayload(state: string, ts: number, error: string | null): string {
  return JSON.stringify({ state, ts: new Date(ts).toISOString(), error });
}

export function telemetryTopic(prefix: string, device: string): string {
  return `${prefix}/${device}/telemetry`;
}

export function gatewayStatusTopic(prefix: string): string {
  return `${prefix}/status`;
}

export function deviceStatusTopic(prefix: string, device: string): string {
  return `${prefix}/${device}/status`;
}
