/**
 * MQTT 5 reason codes the listener sends, and how an ingest refusal becomes one. MQTT 3.1.1 has no
 * reason codes after CONNACK: there a refusal is a plain disconnect.
 */
import type { IngestReply } from "../ingest.js";

export const REASON = {
  unspecified: 0x80,
  malformed: 0x81,
  protocolError: 0x82,
  badUserOrPassword: 0x86,
  notAuthorized: 0x87,
  serverBusy: 0x89,
  serverShuttingDown: 0x8b,
  keepAliveTimeout: 0x8d,
  sessionTakenOver: 0x8e,
  topicAliasInvalid: 0x94,
  packetTooLarge: 0x95,
  messageRateTooHigh: 0x96,
  quotaExceeded: 0x97,
  payloadFormatInvalid: 0x99,
  qosNotSupported: 0x9b,
} as const;

/** Why the listener refuses something: the counted reason, the MQTT 5 code, and words for the log. */
export interface Refusal {
  /** `floorgate_ingest_rejects_total` reason */
  reason: string;
  code: number;
  message: string;
  /** the ingest counted it already (a refused push): the listener only logs it and counts the disconnect */
  countedByIngest?: boolean;
}

/** The disconnect an ingest refusal of a publish turns into (over rate, too large, journal full, …). */
export function refusalOf(reply: IngestReply): Refusal {
  const message = "error" in reply.body ? reply.body.error : `refused (${reply.status})`;
  const reason = reply.reason ?? "bad_request";
  const code = reply.status === 429 ? REASON.messageRateTooHigh
    : reply.status === 413 ? REASON.packetTooLarge
      : reply.status === 400 ? REASON.payloadFormatInvalid
        : reply.status === 503 ? (reason === "journal_full" ? REASON.quotaExceeded : REASON.serverBusy)
          : REASON.notAuthorized;
  return { reason, code, message, countedByIngest: true };
}
