/**
 * The validated, defaulted config (spec §2). `loadConfig` produces exactly this shape or a list of
 * every problem; nothing downstream re-validates. Durations are ms, sizes bytes.
 */
export interface GatewayConfig {
  /** driverThreads: worker threads hosting the drivers; 0 runs them in the main thread */
  gateway: { id: string; group: string; dataDir: string; driverThreads: number };
  http: HttpConfig;
  journal: JournalConfig;
  devices: DeviceConfig[];
  ingest: IngestConfig;
  outputs: OutputConfig[];
}

export interface HttpConfig {
  /** host:port; default 127.0.0.1:8080 */
  listen: string;
  host: string;
  port: number;
  operatorTokens: string[];
  allowedOrigins: string[];
}

export interface JournalConfig {
  maxBytes: number;
  overflow: "drop-oldest" | "reject";
  fsync: "batch" | "always";
  fsyncIntervalMs: number;
}

export type DeviceConfig = ModbusDeviceConfig | OpcuaDeviceConfig;

interface DeviceCommon {
  id: string;
  /** default 10000 */
  reconnectMaxMs: number;
  /** default false; a disabled device is shown but never polled */
  disabled: boolean;
}

export interface TagCommon {
  name: string;
  unit?: string;
  deadband?: number;
  /** default 1 */
  scale: number;
  /** default 0 */
  offset: number;
  /** default false */
  writable: boolean;
}

export type ModbusArea = "holding" | "input" | "coil" | "discrete";
export type ModbusType =
  | "bool" | "int16" | "uint16" | "int32" | "uint32" | "int64" | "uint64" | "float32" | "float64" | "string";
export type ByteOrder = "ABCD" | "CDAB" | "BADC" | "DCBA";

export interface ModbusTagConfig extends TagCommon {
  area: ModbusArea;
  address: number;
  type: ModbusType;
  /** default ABCD */
  byteOrder: ByteOrder;
  bit?: number;
  /** registers of a `string` */
  length?: number;
  pollMs?: number;
  /** unit id override for this tag (several unit ids behind one gateway); default: the connection's */
  unitId?: number;
}

export type ModbusConnection =
  | { transport: "tcp"; host: string; port: number; unitId: number; timeoutMs: number }
  | { transport: "rtu-over-tcp"; host: string; port: number; unitId: number; timeoutMs: number }
  | {
      transport: "rtu";
      path: string;
      baudRate: number;
      parity: "none" | "even" | "odd";
      dataBits: 7 | 8;
      stopBits: 1 | 2;
      unitId: number;
      timeoutMs: number;
    };

export interface ModbusDeviceConfig extends DeviceCommon {
  driver: "modbus";
  connection: ModbusConnection;
  /** default 1000 */
  pollMs: number;
  /** registers (or bits) a merged read may bridge; default 8 */
  maxGap: number;
  /** read tag by tag for devices that reject merged reads; default false */
  tagByTag: boolean;
  /** consecutive timeouts before the device is demoted; default 3 */
  maxTimeouts: number;
  /** Shared by every device with an identical tag list (see build.ts TagInterner): never mutate. */
  tags: readonly ModbusTagConfig[];
}

export interface OpcuaTagConfig extends TagCommon {
  nodeId: string;
  samplingMs?: number;
}

export interface OpcuaDeviceConfig extends DeviceCommon {
  driver: "opcua";
  connection: {
    endpoint: string;
    securityMode: "None" | "Sign" | "SignAndEncrypt";
    securityPolicy: "None" | "Basic256Sha256" | "Aes128_Sha256_RsaOaep" | "Aes256_Sha256_RsaPss";
    username?: string;
    password?: string;
  };
  mode: "subscribe" | "poll";
  /** default 1000 */
  samplingMs: number;
  /** used when mode is poll; default 1000 */
  pollMs: number;
  tags: OpcuaTagConfig[];
}

export interface IngestDeviceConfig {
  /** exact id or glob with `*` */
  id: string;
  token?: string;
  /** "sha256:<hex>" */
  tokenHash?: string;
}

export interface IngestConfig {
  /** default true when an ingest section exists */
  http: boolean;
  mqtt?: { listen: string; host: string; port: number };
  maxPayloadBytes: number;
  /** messages/s per device (a body of n messages counts n) */
  ratePerDevice: number;
  /**
   * pushing devices the gateway keeps state for (device list, metric series, status topics, rate
   * buckets); a new id past it is refused with 429. Exact ids in `devices` always have a place.
   * Default 20,000.
   */
  maxDevices: number;
  devices: IngestDeviceConfig[];
}

export interface TlsFiles {
  ca?: string;
  cert?: string;
  key?: string;
}

export interface MqttOutputConfig extends TlsFiles {
  type: "mqtt";
  name: string;
  url: string;
  clientId: string;
  username?: string;
  password?: string;
  format: "json" | "sparkplug-b";
  topicPrefix: string;
  primaryHostId?: string;
  qos: 0 | 1;
  maxBatch: number;
}

export interface InfluxOutputConfig {
  type: "influx";
  name: string;
  url: string;
  database: string;
  retentionPolicy?: string;
  username?: string;
  password?: string;
  /** default 5000 */
  maxBatch: number;
}

export type OutputConfig = MqttOutputConfig | InfluxOutputConfig;

/** One problem found in a config file; `validate` prints one per line. */
export interface ConfigProblem {
  /** e.g. `devices[2].tags[0].type`; empty for the file as a whole */
  path: string;
  /** 1-based; 0 when the position is unknown (e.g. a missing key reported at its parent) */
  line: number;
  col: number;
  message: string;
  /**
   * Set on a problem of a device made from a template (`devices[].template`) when the template
   * takes part in it: the template's name and the line of the template value involved.
   */
  template?: { name: string; line: number };
}
