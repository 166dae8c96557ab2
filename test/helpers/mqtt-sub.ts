import mqtt, { type IClientOptions, type MqttClient } from "mqtt";

export interface ReceivedMessage {
  topic: string;
  payload: Buffer;
  retain: boolean;
  qos: number;
  /** Arrival order across the collector's whole life (survives `reconnect`). */
  seq: number;
}

/** A subscriber that records every message it gets, for assertions on what reached the broker. */
export interface Collector {
  readonly messages: ReceivedMessage[];
  /** Messages whose topic equals `topic`. */
  on(topic: string): ReceivedMessage[];
  /** Resolves with the first recorded message (past or future) matching `pred`; rejects after `timeoutMs`. */
  waitFor(pred: (m: ReceivedMessage) => boolean, timeoutMs?: number): Promise<ReceivedMessage>;
  /** Resolves once `cond()` holds, re-checked after every message; rejects after `timeoutMs`. */
  until(cond: () => boolean, timeoutMs?: number): Promise<void>;
  /** Drops the connection and subscribes again with a fresh client (after a broker restart); keeps `messages`. */
  reconnect(): Promise<void>;
  close(): Promise<void>;
}

export function parseJson(m: ReceivedMessage): unknown {
  return JSON.parse(m.payload.toString("utf8"));
}

/**
 * Connects to `url`, subscribes to `topic` (wildcards allowed) at QoS 1 and resolves once SUBACKed,
 * so nothing published after it resolves can be missed. No automatic reconnect: a test that restarts
 * the broker calls `reconnect()` and so knows when the subscription is back.
 */
export async function collect(url: string, topic: string, options: IClientOptions = {}): Promise<Collector> {
  const messages: ReceivedMessage[] = [];
  const waiters = new Set<() => void>();
  let client: MqttClient | null = null;
  let seq = 0;

  const open = async (): Promise<void> => {
    const c = mqtt.connect(url, {
      reconnectPeriod: 0,
      connectTimeout: 5000,
      clientId: `collector-${process.pid}-${Math.random().toString(36).slice(2)}`,
      ...options,
    });
    c.on("error", () => {}); // surfaced through connect/subscribe failures below
    c.on("message", (t, payload, packet) => {
      messages.push({ topic: t, payload: Buffer.from(payload), retain: packet.retain, qos: packet.qos, seq: seq++ });
      for (const w of [...waiters]) w();
    });
    await new Promise<void>((resolve, reject) => {
      c.once("connect", () => resolve());
      c.once("close", () => reject(new Error(`collector could not connect to ${url}`)));
    });
    await c.subscribeAsync(topic, { qos: 1 });
    client = c;
  };

  const until = (cond: () => boolean, timeoutMs = 10_000): Promise<void> =>
    new Promise((resolve, reject) => {
      if (cond()) { resolve(); return; }
      const check = (): void => {
        if (cond()) { clearTimeout(timer); waiters.delete(check); resolve(); }
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`collector: condition not met within ${timeoutMs} ms (${messages.length} messages so far)`));
      }, timeoutMs);
      waiters.add(check);
    });

  await open();
  return {
    messages,
    on: (t) => messages.filter((m) => m.topic === t),
    until,
    waitFor: async (pred, timeoutMs) => {
      await until(() => messages.some(pred), timeoutMs);
      return messages.find(pred)!;
    },
    reconnect: async () => {
      client?.end(true);
      client = null;
      await open();
    },
    close: async () => {
      const c = client;
      client = null;
      if (c) await c.endAsync(true);
    },
  };
}
