/**
 * Plugin descriptors: what a driver folder (`drivers/<name>/`) or an output folder
 * (`src/outputs/<name>/`) hands to the rest of Floorgate. The core never names a protocol: the
 * config loader composes the descriptors' schema fragments, checks and builders into the one config,
 * and the runtime creates drivers and outputs through them. A descriptor becomes part of the build by
 * one line in `src/plugins/drivers.ts` or `src/plugins/outputs.ts` (see docs/writing-a-plugin.md).
 *
 * Types only: importing this module loads nothing.
 */
import type { TagCommon } from "./tag.js";
import type { Driver } from "./driver.js";
import type { Quality, SampleValue } from "./sample.js";
import type { Output } from "./output.js";

/** A JSON Schema node (draft-07); loose because ajv and editors read it, not TypeScript. */
export type JsonSchema = { [keyword: string]: unknown };

/** Path segments of a config value, e.g. `["devices", 2, "tags", 0, "type"]` for `devices[2].tags[0].type`. */
export type ConfigPath = (string | number)[];

/** A map from the config file as written: after `${env:…}` substitution, before defaults. */
export type RawObject = Record<string, unknown>;

/** One item of the config handed to a plugin's checks: the raw map and where it sits in the file. */
export interface RawItem {
  readonly value: RawObject;
  /** e.g. `["devices", 3]` */
  readonly path: ConfigPath;
}

/**
 * A problem a plugin's semantic check found. The loader adds the source position (the value's
 * line and column, or the key's when `atKey`) and sorts it among every other problem.
 */
export interface ConfigIssue {
  /** Absolute path of the value the problem is about (the parent, for something missing). */
  path: ConfigPath;
  /** Says what was found and what is allowed; never echoes a secret. */
  message: string;
  /** Point at the key rather than its value (a key that should not be there). */
  atKey?: boolean;
  /**
   * `warning`: the config is accepted (exit code 0) and the message is printed by `validate` and
   * logged once by `run`. Default `error`.
   */
  severity?: "error" | "warning";
}

/** What a semantic check may consult besides its own items. */
export interface CheckContext {
  /** Directory of the config file: relative paths in it (TLS files) resolve against it. */
  readonly baseDir: string;
  /** `gateway.id` when it is a string (the default of client ids), else undefined. */
  readonly gatewayId: string | undefined;
  /** `devices[0].connection (line 12)`: how a message names another place in the file. */
  where(path: ConfigPath): string;
}

/** What a builder may consult. Only called on a config that passed the schema and every check. */
export interface BuildContext {
  /** Directory of the config file; the builder makes relative paths absolute against it. */
  readonly baseDir: string;
  readonly gatewayId: string;
  /** `gateway.dataDir`, absolute: where a plugin keeps state of its own (e.g. OPC UA's `pki/`). */
  readonly dataDir: string;
}

/**
 * The keys of a device or output that belong to its plugin. The loader adds the common keys
 * (`id`, `driver`, `reconnectMaxMs`, `disabled` for devices; `type`, `name` for outputs), closes the
 * object (`additionalProperties: false`) and selects it by the discriminator (`driver`/`type`).
 */
export interface SchemaFragment {
  /** One line for editors, naming what the item is. */
  readonly description: string;
  /** Each with a `description`; `default` values are documentation, the builder applies them. */
  readonly properties: Readonly<Record<string, JsonSchema>>;
  /** Required keys of the plugin's own (the loader adds the discriminator and, for devices, `id`). */
  readonly required?: readonly string[];
  /** Further schema keywords for the object, e.g. an `if`/`then` between two of its keys. */
  readonly extra?: Readonly<JsonSchema>;
}

/**
 * The configuration half of a descriptor: enough to validate and build a config, nothing that
 * opens a socket. A plugin that is planned but not built yet has only this half (a config-only
 * folder), so its rules keep being tested until its code lands.
 */
export interface ConfigPart<C, Common> {
  /** The discriminator value users write (`driver: <name>`, `type: <name>`). Lower case, unique in its list. */
  readonly name: string;
  readonly schema: SchemaFragment;
  /**
   * Human text for the `pattern`s the fragment uses (`validate` says "allowed: <text>" instead of
   * the regular expression).
   */
  readonly patterns?: Readonly<Record<string, string>>;
  /**
   * Enum values people still write for a key but that are refused on purpose, and why: key name →
   * value → reason (e.g. deprecated security policies). Used in the enum message.
   */
  readonly refused?: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /**
   * Checks the schema cannot express (combinations of keys, items that must agree with each other,
   * files on disk). Gets every item of this plugin at once, in file order. Runs on data that may be
   * structurally invalid: it must guard every access, judge only what it can read, and never throw.
   */
  check?(items: readonly RawItem[], ctx: CheckContext): ConfigIssue[];
  /**
   * Drivers only: the device keys besides `tags` that `check` reads when it judges a device's tags,
   * as paths inside the device (e.g. `["connection", "mode"]` if a tag rule differed by mode).
   * Device templates need it: a template's tags are checked once, at the template, with the
   * template's own values of these keys, and once more for each other combination of values among
   * the devices made from it (reported at the first such device, naming the template). Absent or
   * empty: no tag rule depends on another device key, so a template's tags are checked once.
   */
  readonly tagRulesRead?: readonly ConfigPath[];
  /**
   * Returns the builder for one config load (it may keep state across the items of one file, e.g.
   * to share identical tag lists). The builder turns a valid raw item into its typed config with
   * every default applied; `common` holds the keys the loader built. The result is immutable.
   * Devices made from one template hand in the same raw `tags` array (the template's): a driver's
   * builder returns one built, frozen tag list for it, shared by all those devices (key a cache on
   * the raw array), so its tags must not depend on other device keys.
   */
  builder(ctx: BuildContext): (raw: RawObject, common: Common) => C;
}

/** Keys every device has, built by the loader. */
export interface DeviceCommon {
  id: string;
  driver: string;
  /** default 10000 */
  reconnectMaxMs: number;
  /** default false; a disabled device is shown but never polled */
  disabled: boolean;
}

/** The part of any device config the runtime reads without knowing its driver. */
export interface DeviceConfigBase extends DeviceCommon {
  /** Every driver's tags carry the common tag keys (name, unit, scale, …) the runtime applies. */
  readonly tags: readonly TagCommon[];
}

/** Keys every output has, built by the loader. */
export interface OutputCommon {
  type: string;
  /** default: the type */
  name: string;
}

export type OutputConfigBase = OutputCommon;

/** One tag read once by `floorgate probe`. */
export interface ProbeRow {
  tag: string;
  /** raw, before scale/offset */
  value: SampleValue;
  quality: Quality;
  reason?: string;
}

/** Simulated machines a driver's `simulator` started: what `floorgate simulate` prints, and how to stop them. */
export interface SimulatorRun {
  /** One line per device served, e.g. `simulated press-1 on 127.0.0.1:5020 (unit 1, 9 tags)`. */
  readonly served: readonly string[];
  /** Lines printed after the device list: what the served values are, how to write. */
  readonly notes: readonly string[];
  /** Closes every listener it opened; resolves when they are closed. */
  stop(): Promise<void>;
}

/**
 * `floorgate simulate` (and the demo) for one driver: serves a config's devices of this driver
 * from simulated machines on this host. The server code is imported by `start` only, so a driver
 * thread that loads the descriptor never loads a server.
 */
export interface DriverSimulator<C extends DeviceConfigBase> {
  /**
   * What it serves, as a noun phrase without article: `Modbus TCP device on this machine`. Used in
   * the messages about devices it cannot serve ("not a …", "no …").
   */
  readonly serves: string;
  /** Which devices qualify, said for people: `host 127.0.0.1, ::1 or localhost`. */
  readonly where: string;
  /** True when `cfg` can be served here (e.g. its host is loopback). Pure and cheap, no I/O. */
  accepts(cfg: C): boolean;
  /**
   * Starts serving `devices` (all accepted, at least one). Resolves once every listener accepts
   * connections. On a failure (a port taken) it closes what it opened and rejects with the cause.
   * `workDir`: where it may keep scratch files (certificates), removed by `stop`; default the OS
   * temp directory.
   */
  start(devices: readonly C[], opts?: { workDir?: string | undefined }): Promise<SimulatorRun>;
}

/** The config half of a driver: a planned driver's config-only folder exports one of these. */
export type DriverConfigPart<C extends DeviceConfigBase> = ConfigPart<C, DeviceCommon>;
/** The config half of an output. */
export type OutputConfigPart<C extends OutputConfigBase> = ConfigPart<C, OutputCommon>;

/**
 * A southbound driver. `C` is its device config type (`driver: "<name>"` plus its own keys).
 * Methods (not function properties) on purpose: a list of descriptors of different `C` is then a
 * list of `DriverPlugin<DeviceConfigBase>`, and the lookup hands each its own config.
 */
export interface DriverPlugin<C extends DeviceConfigBase> extends DriverConfigPart<C> {
  /** The plugin's folder, relative to the repository root (`drivers/<name>`): holds README.md and sample.yaml. */
  readonly folder: string;
  /** Builds the driver for one validated device; cheap and synchronous (no I/O before `run`). */
  create(cfg: C): Driver;
  /**
   * The connection the device's driver opens, as a key: devices with equal keys share one
   * connection (a serial line, a TCP gateway, a session), so they run on one driver thread. A
   * driver whose devices never share gives a key per device (`<name>:<id>`).
   */
  connectionKey(cfg: C): string;
  /**
   * `floorgate probe`: connect, read every tag once, close; one row per tag in config order. Opens
   * its own connection (never a running daemon's). Device trouble shows as `bad` rows; it rejects
   * only for a bug. Absent: the driver cannot probe, and `probe` says so.
   */
  probe?(cfg: C): Promise<ProbeRow[]>;
  /**
   * True when the driver may run on a driver thread (`gateway.driverThreads` > 0): its config is
   * structured-cloneable and its code touches no main-thread state. False keeps it in the main thread.
   */
  readonly driverThread: boolean;
  /** `floorgate simulate`: simulated machines for this driver's devices. Absent: none, and `simulate` says so. */
  readonly simulator?: DriverSimulator<C>;
}

/** How an output is created: what it may know of the gateway. */
export interface OutputCreateContext {
  readonly gateway: { readonly id: string; readonly group: string };
}

/** A northbound output. `C` is its config type (`type: "<name>"`, `name` plus its own keys). */
export interface OutputPlugin<C extends OutputConfigBase> extends OutputConfigPart<C> {
  /** The plugin's folder, relative to the repository root (`src/outputs/<name>`): holds README.md and sample.yaml. */
  readonly folder: string;
  /**
   * Builds the output for one validated output config; synchronous, no I/O (the runtime calls
   * `connect`). A config this build validates but cannot serve gets an output whose `connect`
   * rejects with OUTPUT_REJECTED, so its data waits in the journal.
   */
  create(cfg: C, ctx: OutputCreateContext): Output;
}

/** The config type a driver descriptor builds. */
export type DriverConfigOf<P> = P extends DriverPlugin<infer C> ? C : never;
/** The config type an output descriptor builds. */
export type OutputConfigOf<P> = P extends OutputPlugin<infer C> ? C : never;

/**
 * A key of the `ingest` section that a push listener owns (e.g. an embedded broker). Listeners are
 * not a plugin list yet; this lets one's config rules live in its folder.
 */
export interface IngestListenerConfigPart {
  /** The key under `ingest`. */
  readonly key: string;
  /** For the `ingest` section's description: "an embedded <protocol> listener". */
  readonly label: string;
  /** What the listener does to a device over `ratePerDevice`, e.g. "<protocol> disconnect". */
  readonly overRate: string;
  readonly schema: JsonSchema;
  /**
   * Checks of the listener's raw value at `path`. `httpListen` is the HTTP listener's address
   * (undefined when it is not valid), so a listener can refuse to share its port.
   */
  check?(value: unknown, path: ConfigPath, ctx: CheckContext & { httpListen: { host: string; port: number } | undefined }): ConfigIssue[];
  /** The built value for a valid raw value (paths absolute against `ctx.baseDir`), or undefined to leave the key out. */
  build(value: unknown, ctx: BuildContext): unknown;
}

/**
 * A value (or key) the contract names but this build does not carry. `validate` then says
 * "<value> is not built into this version (built: …)" instead of a bare enum or unknown-key error.
 */
export interface NotBuilt {
  /** A JSON pointer such as `/ingest/<key>`; a `*` segment matches any array index. */
  readonly at: string;
  /** The refused value; absent when the key itself is refused. */
  readonly value?: string;
  /** What is refused, for a key: "the device <protocol> listener (ingest.<key>)". */
  readonly what?: string;
  /** What this build has instead, e.g. the built driver names. */
  readonly built?: readonly string[];
}
