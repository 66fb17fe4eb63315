#!/usr/bin/env python3
"""e2e_device.py -- a python3-pymodbus Modbus TCP server whose registers
change with every poll and which logs what it served.

    e2e_device.py --port P --spec FILE --log FILE

FILE (JSON): {"units": {"1": {"hr": [TAG, ...], "ir": [TAG, ...]}}} where a
TAG is {"address": A, "type": "int16|uint16|int32|uint32|int64|uint64|
float32|float64", "order": "ABCD...", "a": X, "b": Y}. Each table of each
unit counts the reads that start at its address 0: the k-th such read is
answered with every tag's raw value a*k + b (integers wrap to the type),
encoded in the tag's type and byte order. Each of those reads is logged as
one JSON line {"unit": U, "table": "hr", "k": k, "t_ns": ...} (wall clock,
flushed before the answer is sent), so a test knows exactly which values
the device served and when. Run with /usr/bin/python3 (Debian's pymodbus
3.0.0rc1, zero_mode=True for 0-based addresses).
"""
import argparse
import json
import logging
import os
import sys
import time

from pymodbus.datastore import (ModbusSequentialDataBlock, ModbusServerContext,
                                 ModbusSlaveContext)
from pymodbus.server import StartTcpServer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "poller"))
import pollerlib  # noqa: E402  (to_registers: the tests' own encoder)

BITS = {"int16": 16, "uint16": 16, "int32": 32, "uint32": 32, "int64": 64, "uint64": 64}


def raw_value(tag, k):
    """The raw value a tag holds at read k (the test computes the same)."""
    x = tag["a"] * k + tag["b"]
    dtype = tag["type"]
    if dtype in ("float32", "float64"):
        return float(x)
    bits = BITS[dtype]
    x = int(x) % (1 << bits)
    if not dtype.startswith("u") and x >= 1 << (bits - 1):
        x -= 1 << bits
    return x


class CountingBlock(ModbusSequentialDataBlock):
    """A register table recomputed at each read that starts at address 0."""

    def __init__(self, unit, table, tags, log):
        size = max([t["address"] + len(pollerlib.to_registers(t["type"], t["order"], 0))
                    for t in tags] + [1])
        super().__init__(0, [0] * size)
        self.unit, self.table, self.tags, self.log, self.k = unit, table, tags, log, 0

    def getValues(self, address, count=1):
        if address == 0 and self.tags:
            self.k += 1
            for t in self.tags:
                regs = pollerlib.to_registers(t["type"], t["order"], raw_value(t, self.k))
                self.values[t["address"]:t["address"] + len(regs)] = regs
            self.log.write(json.dumps({"unit": self.unit, "table": self.table, "k": self.k,
                                       "t_ns": time.time_ns()}) + "\n")
            self.log.flush()
        return super().getValues(address, count)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--spec", required=True)
    ap.add_argument("--log", required=True)
    args = ap.parse_args()
    logging.disable(logging.ERROR)  # pymodbus logs each client disconnect at ERROR
    with open(args.spec) as f:
        spec = json.load(f)
    log = open(args.log, "a")
    slaves = {}
    for unit, tables in spec["units"].items():
        blocks = {name: CountingBlock(int(unit), name, tables.get(name, []), log)
                  for name in ("hr", "ir")}
        slaves[int(unit)] = ModbusSlaveContext(
            hr=blocks["hr"], ir=blocks["ir"], co=ModbusSequentialDataBlock(0, [0]),
            di=ModbusSequentialDataBlock(0, [0]), zero_mode=True)
    StartTcpServer(context=ModbusServerContext(slaves=slaves, single=False),
                   address=("127.0.0.1", args.port), allow_reuse_address=True)


if __name__ == "__main__":
    main()
