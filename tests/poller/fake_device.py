#!/usr/bin/env python3
"""fake_device.py -- a misbehaving Modbus device for the poller's bad-input
tests. It answers read requests (function 3 and 4) from a register image
where register i holds 1000 + i, but follows a script of behaviours, one per
request, cycling:

    fake_device.py --port P --mode tcp|rtu --script ok,bad_tid,ok,short,...

Behaviours:
  ok         a correct answer
  bad_tid    (tcp) the transaction id of the answer is off by one
  bad_proto  (tcp) protocol id 7 instead of 0
  short      the byte count (and frame) is one register short
  long       one register too many
  bad_fc     the answer is for another function code
  bad_unit   the answer comes from another unit id
  bad_crc    (rtu) the CRC is wrong
  exception  a Modbus exception 4 (slave device failure)
  garbage    20 random bytes instead of an answer
  truncated  the first half of a correct answer, then nothing
  silence    no answer at all
  close      the connection is closed
  slow       a correct answer after 1.5 s
It prints one line per request to stdout: "<n> <behaviour>".
"""
import argparse
import os
import socket
import struct
import sys
import threading
import time


def crc16(data):
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def pdu_for(fc, addr, count, extra=0):
    n = count + extra
    values = [(1000 + addr + i) & 0xFFFF for i in range(max(n, 0))]
    return bytes([fc, 2 * n]) + b"".join(struct.pack(">H", v) for v in values)


def recv_exact(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise ConnectionError
        buf += chunk
    return buf


class Device:
    def __init__(self, mode, script):
        self.mode, self.script, self.n = mode, script, 0
        self.lock = threading.Lock()

    def next_behaviour(self):
        with self.lock:
            b = self.script[self.n % len(self.script)]
            self.n += 1
            print("%d %s" % (self.n, b), flush=True)
            return b

    def serve(self, conn):
        try:
            while True:
                if self.mode == "tcp":
                    head = recv_exact(conn, 7)
                    tid, proto, length, unit = struct.unpack(">HHHB", head)
                    pdu = recv_exact(conn, length - 1)
                else:
                    frame = recv_exact(conn, 8)
                    unit, pdu = frame[0], frame[1:6]
                    tid = 0
                fc, addr, count = pdu[0], *struct.unpack(">HH", pdu[1:5])
                b = self.next_behaviour()
                if b == "silence":
                    continue
                if b == "close":
                    return
                if b == "garbage":
                    conn.sendall(os.urandom(20))
                    continue
                rfc, runit = fc, unit
                if b == "bad_fc":
                    rfc = 1 if fc != 1 else 2
                if b == "bad_unit":
                    runit = (unit % 247) + 1
                extra = {"short": -1, "long": 1}.get(b, 0)
                body = bytes([fc | 0x80, 4]) if b == "exception" else pdu_for(rfc, addr, count, extra)
                if self.mode == "tcp":
                    out = struct.pack(">HHHB", (tid + (b == "bad_tid")) & 0xFFFF,
                                      7 if b == "bad_proto" else 0, len(body) + 1, runit) + body
                else:
                    frame = bytes([runit]) + body
                    crc = crc16(frame) ^ (0x5555 if b == "bad_crc" else 0)
                    out = frame + struct.pack("<H", crc)
                if b == "truncated":
                    out = out[: len(out) // 2]
                if b == "slow":
                    time.sleep(1.5)
                conn.sendall(out)
        except (ConnectionError, OSError):
            pass
        finally:
            conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--mode", choices=["tcp", "rtu"], default="tcp")
    ap.add_argument("--script", default="ok")
    args = ap.parse_args()
    dev = Device(args.mode, args.script.split(","))
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", args.port))
    srv.listen(8)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=dev.serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
