#!/usr/bin/env python3
"""modbus_server.py -- a python3-pymodbus Modbus server for the poller tests.

    modbus_server.py --port P --layout FILE [--framer socket|rtu] [--ignore-missing]
    modbus_server.py --serial DEVICE --layout FILE     (Modbus RTU on a serial line)

FILE is JSON: {"units": {"1": {"hr": [...], "ir": [...], "co": [...], "di": [...]}}}
with register values (0..65535) and bits (0/1) from address 0 (zero_mode).
A read beyond a table gets pymodbus's exception 2 (illegal data address). With
--ignore-missing a request for a unit id not in FILE is not answered at all
(a dead slave); otherwise pymodbus answers exception 0x0B. --framer rtu serves
RTU frames (with CRC) over TCP, as a serial gateway does. --serial serves
Modbus RTU on a serial device at 19200 8N1 (in the tests, one end of a socat pty
pair; pyserial-asyncio cannot set parity on a pty). Run it with
/usr/bin/python3 (Debian's pymodbus 3.0.0rc1).
"""
import argparse
import json
import logging

from pymodbus.datastore import (ModbusSequentialDataBlock, ModbusServerContext,
                                 ModbusSlaveContext)
from pymodbus.server import StartSerialServer, StartTcpServer
from pymodbus.transaction import ModbusRtuFramer, ModbusSocketFramer


def block(values):
    # pymodbus refuses empty blocks; one zero keeps the table "present".
    return ModbusSequentialDataBlock(0, list(values) if values else [0])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int)
    ap.add_argument("--serial")
    ap.add_argument("--layout", required=True)
    ap.add_argument("--framer", choices=["socket", "rtu"], default="socket")
    ap.add_argument("--ignore-missing", action="store_true")
    args = ap.parse_args()
    # pymodbus logs every client disconnect at ERROR: keep the test log clean.
    logging.disable(logging.ERROR)
    with open(args.layout) as f:
        layout = json.load(f)
    slaves = {}
    for unit, tables in layout["units"].items():
        slaves[int(unit)] = ModbusSlaveContext(
            hr=block(tables.get("hr")), ir=block(tables.get("ir")),
            co=block(tables.get("co")), di=block(tables.get("di")), zero_mode=True)
    context = ModbusServerContext(slaves=slaves, single=False)
    if args.serial:
        StartSerialServer(context=context, framer=ModbusRtuFramer, port=args.serial,
                          baudrate=19200, bytesize=8, parity="N", stopbits=1, timeout=0.05)
        return
    framer = ModbusRtuFramer if args.framer == "rtu" else ModbusSocketFramer
    StartTcpServer(context=context, address=("127.0.0.1", args.port), framer=framer,
                   allow_reuse_address=True, ignore_missing_slaves=args.ignore_missing)


if __name__ == "__main__":
    main()
