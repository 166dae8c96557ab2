import { createHash } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { JournaledSample, Sample, SampleValue } from "../../src/core/sample.js";
import { SampleBatch } from "../../src/core/sample-columns.js";
import { checkFrame, decodeFrame, decodeFrameRun, encodeFrame, encoderStringCount, FRAME_HEADER } from "../../src/journal/frame-codec.js";
import { baselineEncodeFrame, baselineStringCount } from "../../bench/frame-encode.js";

/*
 * The frame format is on disk: journals written by earlier builds must keep reading, and a faster
 * encoder must write exactly the bytes the old one did. The hex below was produced by the encoder
 * as of commit 6a6e637 (before the encode fast paths) and is the contract; never regenerate it
 * from the code under test.
 */

const TS = 1_718_000_000_123;

function poll(device: string, n: number, ts: number, value: (i: number) => Sample["value"], unit?: string): Sample[] {
  const out: Sample[] = [];
  for (let i = 0; i < n; i++) {
    const s: Sample = { device, tag: `r${i}`, value: value(i), quality: "good", ts };
    if (unit !== undefined) s.unit = unit;
    out.push(s);
  }
  return out;
}

/** A frame well past the 64 KiB initial scratch: distinct long tags and free-text values. */
function largeFrame(): Sample[] {
  const out: Sample[] = [];
  for (let i = 0; i < 1500; i++) {
    out.push({
      device: `cell-${i % 7}`,
      tag: `line.${i}.${"x".repeat(i % 90)}`,
      value: i % 3 === 0 ? `message ${i} ${"ü".repeat(i % 40)}` : i * 0.5 - 300,
      quality: i % 11 === 0 ? "bad" : "good",
      ts: TS + i,
      ...(i % 4 === 0 ? { unit: "kPa" } : {}),
      ...(i % 11 === 0 ? { reason: `timeout after ${i} ms` } : {}),
    });
  }
  return out;
}

interface GoldenCase {
  name: string;
  samples: Sample[];
  firstPos: number;
}

const GOLDEN_CASES: GoldenCase[] = [
  { name: "empty frame", samples: [], firstPos: 0 },
  {
    name: "numbers",
    firstPos: 1,
    samples: [
      { device: "d1", tag: "int", value: 42, quality: "good", ts: TS },
      { device: "d1", tag: "zero", value: 0, quality: "good", ts: TS },
      { device: "d1", tag: "negzero", value: -0, quality: "good", ts: TS },
      { device: "d1", tag: "float", value: 3.141592653589793, quality: "good", ts: TS },
      { device: "d1", tag: "neg", value: -1234.5, quality: "good", ts: TS + 0.25 },
      { device: "d1", tag: "big", value: 2 ** 53 + 2, quality: "good", ts: TS },
      { device: "d1", tag: "tiny", value: 5e-324, quality: "good", ts: TS },
      { device: "d1", tag: "nan", value: NaN, quality: "uncertain", ts: TS },
      { device: "d1", tag: "pinf", value: Infinity, quality: "good", ts: 0 },
      { device: "d1", tag: "ninf", value: -Infinity, quality: "good", ts: -1 },
    ],
  },
  {
    name: "null and booleans",
    firstPos: 77,
    samples: [
      { device: "plc", tag: "a", value: null, quality: "bad", ts: TS, reason: "modbus exception 2: illegal data address" },
      { device: "plc", tag: "b", value: true, quality: "good", ts: TS },
      { device: "plc", tag: "c", value: false, quality: "good", ts: TS },
      { device: "plc", tag: "d", value: null, quality: "uncertain", ts: TS },
    ],
  },
  {
    name: "string values",
    firstPos: 1000,
    samples: [
      { device: "hmi", tag: "ascii", value: "RUNNING", quality: "good", ts: TS },
      { device: "hmi", tag: "empty", value: "", quality: "good", ts: TS },
      { device: "hmi", tag: "umlaut", value: "Grüße aus der Halle", quality: "good", ts: TS },
      { device: "hmi", tag: "cjk", value: "温度センサー", quality: "good", ts: TS },
      { device: "hmi", tag: "emoji", value: "🔥 hot 🧯", quality: "good", ts: TS },
      { device: "hmi", tag: "len63", value: "a".repeat(63), quality: "good", ts: TS },
      { device: "hmi", tag: "len64", value: "b".repeat(64), quality: "good", ts: TS },
      { device: "hmi", tag: "long", value: "The quick brown fox jumps over the lazy dog; ".repeat(5), quality: "good", ts: TS },
      { device: "hmi", tag: "longuni", value: "Überdruck ⚠ ".repeat(12), quality: "good", ts: TS },
      { device: "hmi", tag: "uni62", value: "é" + "c".repeat(61), quality: "good", ts: TS },
      { device: "hmi", tag: "lone", value: "x\ud800y", quality: "good", ts: TS },
    ],
  },
  {
    name: "unit and reason present and absent",
    firstPos: 5,
    samples: [
      { device: "m", tag: "t1", value: 21.5, quality: "good", ts: TS, unit: "°C" },
      { device: "m", tag: "t2", value: 22.5, quality: "good", ts: TS, unit: "°C" },
      { device: "m", tag: "p", value: 1.2, quality: "good", ts: TS, unit: "bar" },
      { device: "m", tag: "q", value: null, quality: "bad", ts: TS, reason: "timeout" },
      { device: "m", tag: "r", value: 3, quality: "uncertain", ts: TS, unit: "rpm", reason: "stale" },
      { device: "m", tag: "s", value: 4, quality: "bad", ts: TS, unit: "rpm", reason: "timeout" },
      { device: "m", tag: "u", value: "", quality: "good", ts: TS, unit: "", reason: "" },
    ],
  },
  {
    name: "devices interleaved, repeated strings",
    firstPos: 123_456,
    samples: (() => {
      const a = poll("press-1", 70, TS, (i) => i, "rpm");
      const b = poll("press-2", 70, TS + 1, (i) => -i * 1.5, "rpm");
      const out: Sample[] = [];
      for (let i = 0; i < 70; i++) out.push(a[i]!, b[i]!);
      // strings that reappear in other roles: a value equal to a device id, a unit equal to a tag
      out.push({ device: "press-1", tag: "mode", value: "press-2", quality: "good", ts: TS, unit: "r5" });
      out.push({ device: "press-3", tag: "r69", value: "rpm", quality: "good", ts: TS, reason: "press-1" });
      return out;
    })(),
  },
  { name: "modbus poll d123 r0..r99", firstPos: 2 ** 32 + 17, samples: poll("d123", 100, TS, (i) => i * 3) },
  {
    name: "firstPos above 2^32",
    firstPos: 2 ** 44 + 0xdeadbe,
    samples: [{ device: "d", tag: "t", value: 1, quality: "good", ts: TS }],
  },
  {
    name: "firstPos near max safe integer",
    firstPos: Number.MAX_SAFE_INTEGER - 3,
    samples: [
      { device: "d", tag: "t", value: 1, quality: "good", ts: TS },
      { device: "d", tag: "t", value: 2, quality: "good", ts: TS + 1 },
    ],
  },
];

const GOLDEN_HEX: Record<string, string> = {
  "empty frame":
    "0c0000006fc6d57b000000000000000000000000",
  "numbers":
    "f40000000597267b01000000000000000a0000000c00b0c7790c00794205643107696e7400000000000045400c00b0c7790c" +
    "00794200097a65726f00000000000000000c00b0c7790c007942000f6e65677a65726f00000000000000800c00b0c7790c00" +
    "7942000b666c6f6174182d4454fb2109400c00b4c7790c00794200076e656700000000004a93c00c00b0c7790c0079420007" +
    "62696701000000000040430c00b0c7790c007942000974696e7901000000000000000d00b0c7790c00794200076e616e0000" +
    "00000000f87f0c0000000000000000000970696e66000000000000f07f0c000000000000f0bf00096e696e66000000000000" +
    "f0ff",
  "null and booleans":
    "680000006d331da94d00000000000000040000004200b0c7790c00794207706c630361516d6f646275732065786365707469" +
    "6f6e20323a20696c6c6567616c206461746120616464726573730800b0c7790c0079420003620400b0c7790c007942000363" +
    "0100b0c7790c007942000364",
  "string values":
    "5f0300002a1497efe8030000000000000b0000001000b0c7790c00794207686d690b61736369690f52554e4e494e471000b0" +
    "c7790c007942000b656d707479011000b0c7790c007942000d756d6c6175742b4772c3bcc39f652061757320646572204861" +
    "6c6c651000b0c7790c0079420007636a6b25e6b8a9e5baa6e382bbe383b3e382b5e383bc1000b0c7790c007942000b656d6f" +
    "6a691bf09f94a520686f7420f09fa7af1000b0c7790c007942000b6c656e36337f6161616161616161616161616161616161" +
    "616161616161616161616161616161616161616161616161616161616161616161616161616161616161616161611000b0c7" +
    "790c007942000b6c656e36348101626262626262626262626262626262626262626262626262626262626262626262626262" +
    "626262626262626262626262626262626262626262626262626262621000b0c7790c00794200096c6f6e67c3035468652071" +
    "7569636b2062726f776e20666f78206a756d7073206f76657220746865206c617a7920646f673b2054686520717569636b20" +
    "62726f776e20666f78206a756d7073206f76657220746865206c617a7920646f673b2054686520717569636b2062726f776e" +
    "20666f78206a756d7073206f76657220746865206c617a7920646f673b2054686520717569636b2062726f776e20666f7820" +
    "6a756d7073206f76657220746865206c617a7920646f673b2054686520717569636b2062726f776e20666f78206a756d7073" +
    "206f76657220746865206c617a7920646f673b201000b0c7790c007942000f6c6f6e67756e69e902c39c626572647275636b" +
    "20e29aa020c39c626572647275636b20e29aa020c39c626572647275636b20e29aa020c39c626572647275636b20e29aa020" +
    "c39c626572647275636b20e29aa020c39c626572647275636b20e29aa020c39c626572647275636b20e29aa020c39c626572" +
    "647275636b20e29aa020c39c626572647275636b20e29aa020c39c626572647275636b20e29aa020c39c626572647275636b" +
    "20e29aa020c39c626572647275636b20e29aa0201000b0c7790c007942000b756e6936327fc3a96363636363636363636363" +
    "6363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363" +
    "1000b0c7790c00794200096c6f6e650b78efbfbd79",
  "unit and reason present and absent":
    "ab000000e109eeef0500000000000000070000002c00b0c7790c007942036d057431000000000080354007c2b0432c00b0c7" +
    "790c007942000574320000000000803640042c00b0c7790c007942000370333333333333f33f076261724200b0c7790c0079" +
    "420003710f74696d656f75746d00b0c7790c00794200037200000000000008400772706d0b7374616c656e00b0c7790c0079" +
    "420003730000000000001040120e7000b0c7790c007942000375011a1a",
  "devices interleaved, repeated strings":
    "040c0000103a8b5040e20100000000008e0000002c00b0c7790c0079420f70726573732d3105723000000000000000000772" +
    "706d2c00c0c7790c0079420f70726573732d32020000000000000080042c00b0c7790c00794200057231000000000000f03f" +
    "042c00c0c7790c0079420608000000000000f8bf042c00b0c7790c007942000572320000000000000040042c00c0c7790c00" +
    "7942060a00000000000008c0042c00b0c7790c007942000572330000000000000840042c00c0c7790c007942060c00000000" +
    "000012c0042c00b0c7790c007942000572340000000000001040042c00c0c7790c007942060e00000000000018c0042c00b0" +
    "c7790c007942000572350000000000001440042c00c0c7790c00794206100000000000001ec0042c00b0c7790c0079420005" +
    "72360000000000001840042c00c0c7790c007942061200000000000022c0042c00b0c7790c00794200057237000000000000" +
    "1c40042c00c0c7790c007942061400000000000025c0042c00b0c7790c007942000572380000000000002040042c00c0c779" +
    "0c007942061600000000000028c0042c00b0c7790c007942000572390000000000002240042c00c0c7790c00794206180000" +
    "000000002bc0042c00b0c7790c00794200077231300000000000002440042c00c0c7790c007942061a0000000000002ec004" +
    "2c00b0c7790c00794200077231310000000000002640042c00c0c7790c007942061c00000000008030c0042c00b0c7790c00" +
    "794200077231320000000000002840042c00c0c7790c007942061e00000000000032c0042c00b0c7790c0079420007723133" +
    "0000000000002a40042c00c0c7790c007942062000000000008033c0042c00b0c7790c00794200077231340000000000002c" +
    "40042c00c0c7790c007942062200000000000035c0042c00b0c7790c00794200077231350000000000002e40042c00c0c779" +
    "0c007942062400000000008036c0042c00b0c7790c00794200077231360000000000003040042c00c0c7790c007942062600" +
    "000000000038c0042c00b0c7790c00794200077231370000000000003140042c00c0c7790c007942062800000000008039c0" +
    "042c00b0c7790c00794200077231380000000000003240042c00c0c7790c007942062a0000000000003bc0042c00b0c7790c" +
    "00794200077231390000000000003340042c00c0c7790c007942062c0000000000803cc0042c00b0c7790c00794200077232" +
    "300000000000003440042c00c0c7790c007942062e0000000000003ec0042c00b0c7790c0079420007723231000000000000" +
    "3540042c00c0c7790c00794206300000000000803fc0042c00b0c7790c00794200077232320000000000003640042c00c0c7" +
    "790c007942063200000000008040c0042c00b0c7790c00794200077232330000000000003740042c00c0c7790c0079420634" +
    "00000000004041c0042c00b0c7790c00794200077232340000000000003840042c00c0c7790c007942063600000000000042" +
    "c0042c00b0c7790c00794200077232350000000000003940042c00c0c7790c00794206380000000000c042c0042c00b0c779" +
    "0c00794200077232360000000000003a40042c00c0c7790c007942063a00000000008043c0042c00b0c7790c007942000772" +
    "32370000000000003b40042c00c0c7790c007942063c00000000004044c0042c00b0c7790c00794200077232380000000000" +
    "003c40042c00c0c7790c007942063e00000000000045c0042c00b0c7790c00794200077232390000000000003d40042c00c0" +
    "c7790c00794206400000000000c045c0042c00b0c7790c00794200077233300000000000003e40042c00c0c7790c00794206" +
    "4200000000008046c0042c00b0c7790c00794200077233310000000000003f40042c00c0c7790c0079420644000000000040" +
    "47c0042c00b0c7790c00794200077233320000000000004040042c00c0c7790c007942064600000000000048c0042c00b0c7" +
    "790c00794200077233330000000000804040042c00c0c7790c00794206480000000000c048c0042c00b0c7790c0079420007" +
    "7233340000000000004140042c00c0c7790c007942064a00000000008049c0042c00b0c7790c007942000772333500000000" +
    "00804140042c00c0c7790c007942064c0000000000404ac0042c00b0c7790c00794200077233360000000000004240042c00" +
    "c0c7790c007942064e0000000000004bc0042c00b0c7790c00794200077233370000000000804240042c00c0c7790c007942" +
    "06500000000000c04bc0042c00b0c7790c00794200077233380000000000004340042c00c0c7790c00794206520000000000" +
    "804cc0042c00b0c7790c00794200077233390000000000804340042c00c0c7790c00794206540000000000404dc0042c00b0" +
    "c7790c00794200077234300000000000004440042c00c0c7790c00794206560000000000004ec0042c00b0c7790c00794200" +
    "077234310000000000804440042c00c0c7790c00794206580000000000c04ec0042c00b0c7790c0079420007723432000000" +
    "0000004540042c00c0c7790c007942065a0000000000804fc0042c00b0c7790c00794200077234330000000000804540042c" +
    "00c0c7790c007942065c00000000002050c0042c00b0c7790c00794200077234340000000000004640042c00c0c7790c0079" +
    "42065e00000000008050c0042c00b0c7790c00794200077234350000000000804640042c00c0c7790c007942066000000000" +
    "00e050c0042c00b0c7790c00794200077234360000000000004740042c00c0c7790c007942066200000000004051c0042c00" +
    "b0c7790c00794200077234370000000000804740042c00c0c7790c00794206640000000000a051c0042c00b0c7790c007942" +
    "00077234380000000000004840042c00c0c7790c007942066600000000000052c0042c00b0c7790c00794200077234390000" +
    "000000804840042c00c0c7790c007942066800000000006052c0042c00b0c7790c0079420007723530000000000000494004" +
    "2c00c0c7790c007942066a0000000000c052c0042c00b0c7790c00794200077235310000000000804940042c00c0c7790c00" +
    "7942066c00000000002053c0042c00b0c7790c00794200077235320000000000004a40042c00c0c7790c007942066e000000" +
    "00008053c0042c00b0c7790c00794200077235330000000000804a40042c00c0c7790c00794206700000000000e053c0042c" +
    "00b0c7790c00794200077235340000000000004b40042c00c0c7790c007942067200000000004054c0042c00b0c7790c0079" +
    "4200077235350000000000804b40042c00c0c7790c00794206740000000000a054c0042c00b0c7790c007942000772353600" +
    "00000000004c40042c00c0c7790c007942067600000000000055c0042c00b0c7790c00794200077235370000000000804c40" +
    "042c00c0c7790c007942067800000000006055c0042c00b0c7790c00794200077235380000000000004d40042c00c0c7790c" +
    "007942067a0000000000c055c0042c00b0c7790c00794200077235390000000000804d40042c00c0c7790c007942067c0000" +
    "0000002056c0042c00b0c7790c00794200077236300000000000004e40042c00c0c7790c007942067e00000000008056c004" +
    "2c00b0c7790c00794200077236310000000000804e40042c00c0c7790c0079420680010000000000e056c0042c00b0c7790c" +
    "00794200077236320000000000004f40042c00c0c7790c00794206820100000000004057c0042c00b0c7790c007942000772" +
    "36330000000000804f40042c00c0c7790c0079420684010000000000a057c0042c00b0c7790c007942000772363400000000" +
    "00005040042c00c0c7790c00794206860100000000000058c0042c00b0c7790c00794200077236350000000000405040042c" +
    "00c0c7790c00794206880100000000006058c0042c00b0c7790c00794200077236360000000000805040042c00c0c7790c00" +
    "7942068a010000000000c058c0042c00b0c7790c00794200077236370000000000c05040042c00c0c7790c007942068c0100" +
    "000000002059c0042c00b0c7790c00794200077236380000000000005140042c00c0c7790c007942068e0100000000008059" +
    "c0042c00b0c7790c00794200077236390000000000405140042c00c0c7790c0079420690010000000000e059c0043000b0c7" +
    "790c00794200096d6f646506105000b0c7790c0079420f70726573732d3390010400",
  "modbus poll d123 r0..r99":
    "9e08000045e01f571100000001000000640000000c00b0c7790c007942096431323305723000000000000000000c00b0c779" +
    "0c0079420005723100000000000008400c00b0c7790c0079420005723200000000000018400c00b0c7790c00794200057233" +
    "00000000000022400c00b0c7790c0079420005723400000000000028400c00b0c7790c007942000572350000000000002e40" +
    "0c00b0c7790c0079420005723600000000000032400c00b0c7790c0079420005723700000000000035400c00b0c7790c0079" +
    "420005723800000000000038400c00b0c7790c007942000572390000000000003b400c00b0c7790c00794200077231300000" +
    "000000003e400c00b0c7790c007942000772313100000000008040400c00b0c7790c00794200077231320000000000004240" +
    "0c00b0c7790c007942000772313300000000008043400c00b0c7790c007942000772313400000000000045400c00b0c7790c" +
    "007942000772313500000000008046400c00b0c7790c007942000772313600000000000048400c00b0c7790c007942000772" +
    "313700000000008049400c00b0c7790c00794200077231380000000000004b400c00b0c7790c007942000772313900000000" +
    "00804c400c00b0c7790c00794200077232300000000000004e400c00b0c7790c00794200077232310000000000804f400c00" +
    "b0c7790c007942000772323200000000008050400c00b0c7790c007942000772323300000000004051400c00b0c7790c0079" +
    "42000772323400000000000052400c00b0c7790c00794200077232350000000000c052400c00b0c7790c0079420007723236" +
    "00000000008053400c00b0c7790c007942000772323700000000004054400c00b0c7790c0079420007723238000000000000" +
    "55400c00b0c7790c00794200077232390000000000c055400c00b0c7790c007942000772333000000000008056400c00b0c7" +
    "790c007942000772333100000000004057400c00b0c7790c007942000772333200000000000058400c00b0c7790c00794200" +
    "077233330000000000c058400c00b0c7790c007942000772333400000000008059400c00b0c7790c00794200077233350000" +
    "000000405a400c00b0c7790c00794200077233360000000000005b400c00b0c7790c00794200077233370000000000c05b40" +
    "0c00b0c7790c00794200077233380000000000805c400c00b0c7790c00794200077233390000000000405d400c00b0c7790c" +
    "00794200077234300000000000005e400c00b0c7790c00794200077234310000000000c05e400c00b0c7790c007942000772" +
    "34320000000000805f400c00b0c7790c007942000772343300000000002060400c00b0c7790c007942000772343400000000" +
    "008060400c00b0c7790c00794200077234350000000000e060400c00b0c7790c007942000772343600000000004061400c00" +
    "b0c7790c00794200077234370000000000a061400c00b0c7790c007942000772343800000000000062400c00b0c7790c0079" +
    "42000772343900000000006062400c00b0c7790c00794200077235300000000000c062400c00b0c7790c0079420007723531" +
    "00000000002063400c00b0c7790c007942000772353200000000008063400c00b0c7790c00794200077235330000000000e0" +
    "63400c00b0c7790c007942000772353400000000004064400c00b0c7790c00794200077235350000000000a064400c00b0c7" +
    "790c007942000772353600000000000065400c00b0c7790c007942000772353700000000006065400c00b0c7790c00794200" +
    "077235380000000000c065400c00b0c7790c007942000772353900000000002066400c00b0c7790c00794200077236300000" +
    "0000008066400c00b0c7790c00794200077236310000000000e066400c00b0c7790c00794200077236320000000000406740" +
    "0c00b0c7790c00794200077236330000000000a067400c00b0c7790c007942000772363400000000000068400c00b0c7790c" +
    "007942000772363500000000006068400c00b0c7790c00794200077236360000000000c068400c00b0c7790c007942000772" +
    "363700000000002069400c00b0c7790c007942000772363800000000008069400c00b0c7790c007942000772363900000000" +
    "00e069400c00b0c7790c00794200077237300000000000406a400c00b0c7790c00794200077237310000000000a06a400c00" +
    "b0c7790c00794200077237320000000000006b400c00b0c7790c00794200077237330000000000606b400c00b0c7790c0079" +
    "4200077237340000000000c06b400c00b0c7790c00794200077237350000000000206c400c00b0c7790c0079420007723736" +
    "0000000000806c400c00b0c7790c00794200077237370000000000e06c400c00b0c7790c0079420007723738000000000040" +
    "6d400c00b0c7790c00794200077237390000000000a06d400c00b0c7790c00794200077238300000000000006e400c00b0c7" +
    "790c00794200077238310000000000606e400c00b0c7790c00794200077238320000000000c06e400c00b0c7790c00794200" +
    "077238330000000000206f400c00b0c7790c00794200077238340000000000806f400c00b0c7790c00794200077238350000" +
    "000000e06f400c00b0c7790c007942000772383600000000002070400c00b0c7790c00794200077238370000000000507040" +
    "0c00b0c7790c007942000772383800000000008070400c00b0c7790c00794200077238390000000000b070400c00b0c7790c" +
    "00794200077239300000000000e070400c00b0c7790c007942000772393100000000001071400c00b0c7790c007942000772" +
    "393200000000004071400c00b0c7790c007942000772393300000000007071400c00b0c7790c007942000772393400000000" +
    "00a071400c00b0c7790c00794200077239350000000000d071400c00b0c7790c007942000772393600000000000072400c00" +
    "b0c7790c007942000772393700000000003072400c00b0c7790c007942000772393800000000006072400c00b0c7790c0079" +
    "4200077239390000000000907240",
  "firstPos above 2^32":
    "2100000001ce4aefbeadde0000100000010000000c00b0c7790c00794203640374000000000000f03f",
  "firstPos near max safe integer":
    "34000000d8d9b3e4fcffffffffff1f00020000000c00b0c7790c00794203640374000000000000f03f0c00c0c7790c007942" +
    "00020000000000000040",
};

/** The > 64 KiB frame is pinned by length, digest and head rather than 270,000 hex digits. */
const LARGE = {
  firstPos: 9,
  length: 134_342,
  sha256: "9a64119384801305b0c09317a4aaad260c9482ee703e9c332f0c77fd402e2ee7",
  head: "be0c0200275b75900900000000000000dc0500007200b0c7790c0079420d63656c6c2d300f6c696e652e302e156d657373616765203020076b50612574",
};

/** What the decoder gives back: strings pass through UTF-8, so a lone surrogate comes back as U+FFFD. */
function expected(samples: readonly Sample[], firstPos: number): JournaledSample[] {
  const wf = (s: string): string => Buffer.from(s, "utf8").toString("utf8");
  return samples.map((s, i) => {
    const e: JournaledSample = { ...s, value: typeof s.value === "string" ? wf(s.value) : s.value, pos: firstPos + i };
    if (s.unit !== undefined) e.unit = wf(s.unit);
    if (s.reason !== undefined) e.reason = wf(s.reason);
    return e;
  });
}

function decodeAll(frame: Buffer): JournaledSample[] {
  const check = checkFrame(frame, 0, frame.length);
  expect(check).toMatchObject({ ok: true, header: { size: frame.length } });
  const out: JournaledSample[] = [];
  decodeFrame(frame, 0, 0, out, Number.MAX_SAFE_INTEGER);
  return out;
}

describe("frame codec golden bytes", () => {
  it("covers every case it pins", () => {
    expect(Object.keys(GOLDEN_HEX).sort()).toEqual(GOLDEN_CASES.map((c) => c.name).sort());
  });

  for (const c of GOLDEN_CASES) {
    it(`encodes ${c.name} to the pinned bytes`, () => {
      const hex = GOLDEN_HEX[c.name]!;
      expect(encodeFrame(c.samples, c.firstPos).toString("hex")).toBe(hex);
      // Again with the string cache warm from the first call and from an unrelated frame.
      expect(encodeFrame(c.samples, c.firstPos).toString("hex")).toBe(hex);
      encodeFrame(largeFrame(), 0);
      expect(encodeFrame(c.samples, c.firstPos).toString("hex")).toBe(hex);
    });

    it(`decodes the pinned bytes of ${c.name}`, () => {
      const frame = Buffer.from(GOLDEN_HEX[c.name]!, "hex");
      const header = checkFrame(frame, 0, frame.length);
      expect(header).toEqual({ ok: true, header: { size: frame.length, firstPos: c.firstPos, count: c.samples.length } });
      expect(decodeAll(frame)).toEqual(expected(c.samples, c.firstPos));
    });
  }

  it("encodes a frame larger than the initial 64 KiB scratch to the pinned bytes", () => {
    const samples = largeFrame();
    for (let round = 0; round < 2; round++) {
      const frame = encodeFrame(samples, LARGE.firstPos);
      expect(frame.length).toBe(LARGE.length);
      expect(frame.subarray(0, LARGE.head.length / 2).toString("hex")).toBe(LARGE.head);
      expect(createHash("sha256").update(frame).digest("hex")).toBe(LARGE.sha256);
      expect(decodeAll(frame)).toEqual(expected(samples, LARGE.firstPos));
    }
  });

  it("returns a buffer the caller owns: a later encode does not change it", () => {
    const c = GOLDEN_CASES.find((g) => g.name === "numbers")!;
    const first = encodeFrame(c.samples, c.firstPos);
    encodeFrame(largeFrame(), 1);
    encodeFrame(GOLDEN_CASES.find((g) => g.name === "string values")!.samples, 2);
    expect(first.toString("hex")).toBe(GOLDEN_HEX["numbers"]);
  });

  it("pins the header layout: length, crc, firstPos split at 2^32, count", () => {
    const frame = Buffer.from(GOLDEN_HEX["firstPos above 2^32"]!, "hex");
    expect(frame.readUInt32LE(0)).toBe(frame.length - 8);
    expect(frame.readUInt32LE(8) + frame.readUInt32LE(12) * 2 ** 32).toBe(2 ** 44 + 0xdeadbe);
    expect(frame.readUInt32LE(16)).toBe(1);
    expect(frame.length).toBeGreaterThan(FRAME_HEADER);
  });
});

const text = fc.oneof(
  fc.string({ maxLength: 8 }),
  fc.string({ unit: "binary", maxLength: 80 }),
  fc.constantFrom("rpm", "°C", "r1", "d123", "🔥", "x".repeat(70)),
);

const sampleArb: fc.Arbitrary<Sample> = fc.record(
  {
    device: fc.oneof(fc.constantFrom("d123", "press-1", "r1"), fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/)),
    tag: fc.oneof(fc.constantFrom("r0", "r1", "r2", "rpm"), fc.stringMatching(/^[A-Za-z0-9_.-]{1,128}$/)),
    value: fc.oneof(fc.double(), fc.integer(), fc.boolean(), fc.constant(null), text),
    quality: fc.constantFrom("good", "uncertain", "bad"),
    ts: fc.oneof(fc.integer({ min: 0, max: 2 ** 45 }), fc.double({ noNaN: true })),
    unit: text,
    reason: text,
  },
  { requiredKeys: ["device", "tag", "value", "quality", "ts"] },
);

describe("frame codec round trip", () => {
  it("decodes what it encodes, positions counting from firstPos", () => {
    fc.assert(
      fc.property(fc.array(sampleArb, { maxLength: 60 }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER - 100 }), (samples, firstPos) => {
        const frame = encodeFrame(samples, firstPos);
        expect(decodeAll(frame)).toEqual(expected(samples, firstPos));
      }),
      { numRuns: 300 },
    );
  });

  it("decodes only the samples at or after minPos, up to the limit", () => {
    fc.assert(
      fc.property(fc.array(sampleArb, { minLength: 1, maxLength: 30 }), fc.nat(40), fc.integer({ min: 1, max: 40 }), (samples, skip, limit) => {
        const firstPos = 1_000;
        const frame = encodeFrame(samples, firstPos);
        const out: JournaledSample[] = [];
        decodeFrame(frame, 0, firstPos + skip, out, limit);
        expect(out).toEqual(expected(samples, firstPos).slice(skip, skip + limit));
      }),
      { numRuns: 200 },
    );
  });

  it("decodeFrameRun gives the same samples as decodeFrame, as one run of columns, or null for several devices", () => {
    fc.assert(
      fc.property(fc.array(sampleArb, { minLength: 1, maxLength: 30 }), fc.boolean(), fc.nat(40), fc.integer({ min: 1, max: 40 }), (raw, oneDevice, skip, limit) => {
        const samples = oneDevice ? raw.map((s) => ({ ...s, device: "press-1" })) : raw;
        const firstPos = 1_000;
        const frame = encodeFrame(samples, firstPos);
        const want: JournaledSample[] = [];
        decodeFrame(frame, 0, firstPos + skip, want, limit);
        const run = decodeFrameRun(frame, 0, firstPos + skip, limit);
        if (run === null) {
          expect(new Set(want.map((s) => s.device)).size).toBeGreaterThan(1);
          return;
        }
        expect(run.count).toBe(want.length);
        expect(new SampleBatch(run.count > 0 ? [run] : []).toArray()).toEqual(want);
        if (want.length > 0) expect(run.firstPos).toBe(want[0]!.pos);
      }),
      { numRuns: 300 },
    );
  });
});

/*
 * Against the encoder as it was before the fast paths (kept in bench/frame-encode.ts): the same
 * sequence of frames must give the same bytes frame by frame. Sequences, not single frames, since
 * the new encoder caches per string and per device across frames.
 */
const STR_SLOTS_MAX = 100_000;
let freshNo = 0;

function freshFrame(n: number): Sample[] {
  const samples: Sample[] = [];
  for (let i = 0; i < n; i++) samples.push({ device: "filler", tag: `fresh-${freshNo++}`, value: i, quality: "good", ts: 1 });
  return samples;
}

/**
 * Brings both string tables to the same content, which decides when they clear: each is filled
 * to the cap, one shared frame of new strings clears both, and then both get the same strings up to
 * the cap again (after `warm`, frames whose strings must be known when the cap is reached), so the
 * next new string clears both. From then on they stay in step as long as
 * every encode goes to both.
 */
function lockstep(warm: readonly (readonly Sample[])[] = []): void {
  const fill = (encode: (samples: readonly Sample[], firstPos: number) => Buffer, count: () => number): void => {
    while (count() < STR_SLOTS_MAX) encode(freshFrame(Math.min(5_000, STR_SLOTS_MAX - count())), 0);
  };
  fill(encodeFrame, encoderStringCount);
  fill(baselineEncodeFrame, baselineStringCount);
  sameBytes([freshFrame(1)]);
  expect(encoderStringCount()).toBe(1);
  expect(baselineStringCount()).toBe(1);
  sameBytes(warm);
  while (encoderStringCount() < STR_SLOTS_MAX) sameBytes([freshFrame(Math.min(5_000, STR_SLOTS_MAX - encoderStringCount()))]);
  expect(encoderStringCount()).toBe(STR_SLOTS_MAX);
  expect(baselineStringCount()).toBe(STR_SLOTS_MAX);
}

function sameBytes(frames: readonly (readonly Sample[])[], firstPos = 0): void {
  let pos = firstPos;
  for (const samples of frames) {
    const want = baselineEncodeFrame(samples, pos).toString("hex");
    expect(encodeFrame(samples, pos).toString("hex")).toBe(want);
    pos += samples.length;
  }
}

const pooled = (pool: readonly string[]): fc.Arbitrary<string> => fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...pool) }, { weight: 1, arbitrary: text });
const DEVICES = ["d123", "press-1", "agv-07", "r1"];
const TAGS = Array.from({ length: 12 }, (_, i) => `r${i}`).concat(["line1.station3.state_37", "Temperatur_Öl", "rpm"]);
const UNITS = ["rpm", "°C", "bar", "kW", "mm/s"];
const STATES = ["RUNNING", "IDLE", "Störung", "🔥 hot", "x".repeat(300)];

const pooledSample: fc.Arbitrary<Sample> = fc.record(
  {
    device: pooled(DEVICES),
    tag: pooled(TAGS),
    value: fc.oneof(fc.double(), fc.integer(), fc.boolean(), fc.constant(null), pooled(STATES), fc.string({ unit: "binary", maxLength: 3000 })),
    quality: fc.constantFrom("good", "uncertain", "bad"),
    ts: fc.oneof(fc.constant(0), fc.constant(-0), fc.integer({ min: 0, max: 2 ** 45 }), fc.double()),
    unit: pooled(UNITS),
    reason: pooled(["timeout", "modbus exception 2: illegal data address"]),
  },
  { requiredKeys: ["device", "tag", "value", "quality", "ts"] },
);

/** A device's poll repeated over frames, the shape the per-device caches are built for, with changes. */
const pollSequence: fc.Arbitrary<Sample[][]> = fc
  .record({
    template: fc.array(pooledSample, { minLength: 1, maxLength: 40 }),
    frames: fc.array(fc.record({ drop: fc.nat(5), swap: fc.nat(40), value: fc.oneof(fc.double(), pooled(STATES)) }), { minLength: 1, maxLength: 8 }),
  })
  .map(({ template, frames }) =>
    frames.map(({ drop, swap, value }) => {
      const poll = template.slice(drop === 0 ? 1 : 0).map((s, i) => ({ ...s, value: i === swap ? value : s.value }));
      if (poll.length > 2 && swap % 3 === 0) [poll[0], poll[1]] = [poll[1]!, poll[0]!];
      return poll;
    }),
  );

describe("frame codec against the encoder before the fast paths", () => {
  it("writes the same bytes for random sequences of frames", () => {
    lockstep();
    fc.assert(
      fc.property(fc.array(fc.array(pooledSample, { maxLength: 50 }), { minLength: 1, maxLength: 6 }), fc.nat(2 ** 40), (frames, firstPos) => {
        sameBytes(frames, firstPos);
      }),
      { numRuns: 300 },
    );
  });

  it("writes the same bytes for polls repeated with changes", () => {
    lockstep();
    fc.assert(
      fc.property(fc.array(pollSequence, { minLength: 1, maxLength: 3 }), (sequences) => {
        // interleave the devices' polls frame by frame, as concurrent pollers append
        const frames: Sample[][] = [];
        for (let f = 0; f < 8; f++) for (const seq of sequences) if (seq[f]) frames.push(seq[f]!);
        sameBytes(frames);
      }),
      { numRuns: 200 },
    );
  });

  it("writes the same bytes across a frame that grows past its chunk", () => {
    lockstep();
    const frames: Sample[][] = [];
    for (let f = 0; f < 40; f++) {
      const n = 50 + ((f * 37) % 400);
      frames.push(Array.from({ length: n }, (_, i): Sample => ({ device: `dev-${i % 3}`, tag: `t${i}`, value: i % 5 === 0 ? "é".repeat((f * i) % 700) : i, quality: "good", ts: f })));
    }
    // Samples of about 43 bytes, all short new strings, against the 32 per sample a chunk is sized for:
    // the chunk runs out inside the short-string paths, not only in the long-string one.
    const dense = Array.from({ length: 4000 }, (_, i): Sample => {
      const id = i.toString(36).padStart(3, "0") + "_".repeat(i % 4);
      return { device: `d${id}`, tag: `t${id}`, value: i, quality: "bad", ts: i, unit: `u${id}`, reason: `x${id}` };
    });
    for (let skip = 0; skip < 40; skip += 3) sameBytes([dense.slice(0, skip), dense.slice(skip)]);
    sameBytes(frames);
  });

  it("writes the same bytes while per-device caches outgrow their budget and are dropped", () => {
    lockstep();
    // 260 devices of 4,096 tags: past the million entries the per-device caches may hold in total.
    const tags = Array.from({ length: 4096 }, (_, i) => `tag-${i}`);
    const poll = (d: number, round: number): Sample[] =>
      tags.map((tag, i) => ({ device: `bulk-${d}`, tag, value: i === d ? "Störung" : round * i, quality: "good", ts: round, unit: i % 2 ? "°C" : "rpm" }));
    let pos = 0;
    for (let round = 0; round < 2; round++) {
      for (let d = 0; d < 260; d += round * 3 + 1) {
        const samples = poll(d, round);
        expect(encodeFrame(samples, pos).equals(baselineEncodeFrame(samples, pos))).toBe(true);
        pos += samples.length;
      }
    }
  });

  it("writes the same bytes when the string table is cleared in the middle of a frame", () => {
    const UNIT_AT = ["rpm", "°C", "bar", "kW", "mm/s", "rpm", "bar"];
    const poll = (tags: string[], values: SampleValue[]): Sample[] =>
      values.map((value, i) => ({ device: "sync", tag: tags[i]!, value, quality: "good", ts: 7, unit: UNIT_AT[i]! }));
    const TAG_AT = ["r0", "r1", "r2", "r3", "r4", "r5", "r6"];
    const VALUES: SampleValue[] = [1, "RUNNING", 3, 4, "RUNNING", 6, "IDLE"];
    // Warm frames fill the per-device caches: position 4 holds "RUNNING", position 5 the unit "rpm".
    const warm = poll(TAG_AT, VALUES);
    // The first new string clears both tables; strings written before it in the same frame are then
    // written anew, not referenced, in the rest of that sample too:
    lockstep([warm, warm]);
    // ...cleared at a tag: the value at that position ("RUNNING", written at position 1) is new again,
    const freshTag = TAG_AT.map((t, i) => (i === 4 ? `fresh-${freshNo++}` : t));
    sameBytes([poll(freshTag, VALUES), warm]);
    expect(encoderStringCount()).toBeLessThan(100);
    lockstep([warm, warm]);
    // ...cleared at a value: the unit at that position ("rpm", written at position 0) is new again.
    const freshValue = VALUES.map((v, i) => (i === 5 ? `fresh-${freshNo++}` : v));
    sameBytes([poll(TAG_AT, freshValue), warm, poll(TAG_AT, freshValue)]);
    expect(encoderStringCount()).toBeLessThan(100);
    expect(encoderStringCount()).toBe(baselineStringCount());
  });
});
