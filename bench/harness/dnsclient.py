# A DNS client for the latency case, run by the harness inside a container's network namespace
# (nsenter -n): COUNT A queries for NAME to SERVER, one at a time, each answer checked (same id,
# NOERROR, at least one answer). Prints the latencies in microseconds as a JSON list. The same
# client measures every tool's resolver.
# Usage: dnsclient.py SERVER NAME COUNT

import json
import os
import socket
import struct
import sys
import time


def query(qid, name):
    header = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)  # RD, one question
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".") if p)
    return header + labels + b"\0" + struct.pack("!HH", 1, 1)  # A, IN


def main():
    server, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    s.connect((server, 53))
    out = []
    for i in range(count + 20):  # the first 20 warm up caches and are not counted
        qid = (os.getpid() + i) & 0xFFFF
        msg = query(qid, name)
        t0 = time.perf_counter_ns()
        s.send(msg)
        while True:
            answer = s.recv(1500)
            if struct.unpack("!H", answer[:2])[0] == qid:
                break
        us = (time.perf_counter_ns() - t0) / 1000
        flags, _, ancount = struct.unpack("!HHH", answer[2:8])
        if flags & 0xF != 0 or ancount == 0:
            sys.exit(f"{name}: rcode {flags & 0xF}, {ancount} answers from {server}")
        if i >= 20:
            out.append(us)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
