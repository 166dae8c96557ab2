#!/usr/bin/python3
"""A pymodbus 3.0 Modbus TCP server for Floorgate's tests and bench, independent of modbus-serial.

usage: pymodbus_server.py PORT SPEC_JSON
SPEC_JSON: {"size": 1000, "holding": {"0": 1234, ...}, "input": {...}, "coil": {"0": 1}, "discrete": {...}}
Addresses are 0-based (zero_mode). Reads beyond `size` answer exception 2 (illegal data address).
Readiness: the caller connects to PORT until it succeeds.
"""
import asyncio
import json
import logging
import sys

from pymodbus.datastore import ModbusSequentialDataBlock, ModbusServerContext, ModbusSlaveContext
from pymodbus.server import StartAsyncTcpServer


def block(size, values):
    data = [0] * size
    for addr, val in (values or {}).items():
        data[int(addr)] = int(val)
    return ModbusSequentialDataBlock(0, data)


def main():
    logging.basicConfig(level=logging.CRITICAL)
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    port = int(sys.argv[1])
    spec = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    size = int(spec.get("size", 1000))
    slave = ModbusSlaveContext(
        hr=block(size, spec.get("holding")),
        ir=block(size, spec.get("input")),
        co=block(size, spec.get("coil")),
        di=block(size, spec.get("discrete")),
        zero_mode=True,
    )
    context = ModbusServerContext(slaves=slave, single=True)
    asyncio.run(StartAsyncTcpServer(context=context, address=("127.0.0.1", port)))


if __name__ == "__main__":
    main()
