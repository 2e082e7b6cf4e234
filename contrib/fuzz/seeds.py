#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora from the repository's own data (nothing binary is
checked in): the VRRP captures in Tests/testdata/vrrp-pcaps, the configurations in etc/ and
Tests/testdata/parity, and hand-built netlink, HTTP, control and checker replies.

Usage: seeds.py OUTDIR   (writes OUTDIR/<Target>/<n>)"""
import glob
import os
import struct
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def write(out, target, items):
    directory = os.path.join(out, target)
    os.makedirs(directory, exist_ok=True)
    for index, data in enumerate(items):
        with open(os.path.join(directory, "seed-%04d" % index), "wb") as f:
            f.write(data)
    return len(items)


def pcap_frames(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    offset = 24
    while offset + 16 <= len(data):
        _, _, caplen, _ = struct.unpack(endian + "IIII", data[offset:offset + 16])
        offset += 16
        yield linktype, data[offset:offset + caplen]
        offset += caplen


def vrrp_seeds():
    seeds = []
    for path in sorted(glob.glob(os.path.join(ROOT, "Tests/testdata/vrrp-pcaps/*.pcap"))):
        for linktype, frame in pcap_frames(path):
            packet = frame[14:] if linktype == 1 else frame
            if not packet:
                continue
            seeds.append(packet)                       # the IP packet, as the raw socket reads it
            if packet[0] >> 4 == 4:
                header = (packet[0] & 0x0F) * 4
                seeds.append(packet[header:])          # the bare VRRP message
            elif packet[0] >> 4 == 6:
                seeds.append(packet[40:])
    return seeds


def nlattr(kind, payload):
    header = struct.pack("<HH", 4 + len(payload), kind)
    return header + payload + b"\0" * ((4 - len(payload) % 4) % 4)


def nlmsg(kind, flags, body, seq=1):
    return struct.pack("<IHHII", 16 + len(body), kind, flags, seq, 0) + body


IPVS = 0x23


def service_nest(family=2, address=b"\x0a\x00\x00\x01" + b"\0" * 12, port=80):
    attrs = nlattr(1, struct.pack("<H", family)) + nlattr(2, struct.pack("<H", 6)) + nlattr(3, address)
    attrs += nlattr(4, struct.pack(">H", port)) + nlattr(6, b"wlc\0") + nlattr(7, struct.pack("<II", 0, 0xFFFFFFFF))
    attrs += nlattr(8, struct.pack("<I", 0)) + nlattr(9, struct.pack(">I", 0xFFFFFFFF))
    stats = b"".join(nlattr(k, struct.pack("<Q", 7 * k)) for k in range(1, 11))
    attrs += nlattr(0x8000 | 10, stats)
    return nlattr(0x8000 | 1, attrs)


def destination_nest(family=2, address=b"\x0a\x00\x01\x01" + b"\0" * 12):
    attrs = nlattr(1, address) + nlattr(2, struct.pack(">H", 8080)) + nlattr(3, struct.pack("<I", 0))
    attrs += nlattr(4, struct.pack("<I", 5)) + nlattr(5, struct.pack("<I", 0)) + nlattr(6, struct.pack("<I", 0))
    attrs += nlattr(11, struct.pack("<H", family))
    return nlattr(0x8000 | 2, attrs)


def netlink_seeds():
    genl = lambda cmd: struct.pack("<BBH", cmd, 1, 0)
    family = nlmsg(0x10, 0, genl(1) + nlattr(1, struct.pack("<H", IPVS)) + nlattr(2, b"IPVS\0"))
    service = nlmsg(IPVS, 2, genl(1) + service_nest())
    service6 = nlmsg(IPVS, 2, genl(1) + service_nest(10, bytes.fromhex("fd000000000000000000000000000001")))
    dest = nlmsg(IPVS, 2, genl(5) + service_nest() + destination_nest())
    info = nlmsg(IPVS, 0, genl(15) + nlattr(1, struct.pack("<I", 0x010201)) + nlattr(2, struct.pack("<I", 4096)))
    ack = nlmsg(2, 0, struct.pack("<i", 0) + struct.pack("<IHHII", 36, IPVS, 5, 1, 0))
    error = nlmsg(2, 0x100, struct.pack("<i", -17) + struct.pack("<IHHII", 36, IPVS, 5, 1, 0) + nlattr(1, b"exists\0"))
    done = nlmsg(3, 2, struct.pack("<i", 0))
    return [family, service, service6, dest, info, ack, error, done, service + dest + done, dest + ack]


def http_seeds():
    bodies = [
        b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nConnection: close\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\n<html>no length</html>\n",
        b"HTTP/1.1 301 Moved\nLocation: /x\n\n",
        b"HTTP/1.0 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\nx",
        b"HTTP/1.0 2000 OK\r\n\r\n",
        b"garbage\r\n\r\n",
    ]
    return [bytes([size]) + body for body in bodies for size in (0, 3, 255)]


def control_seeds():
    return [b"status\n", b"status json\n", b"reload\r\n", b"stat\xffus\n", b"vigil-control 1 ok\nbody\n",
            b"vigil-control 1 refused\n", b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", b"HEAD /metrics HTTP/1.0\r\n\r\n",
            b"GET / HTTP/1.0\r\n\r\n", b"127.0.0.1:9165", b"[::1]:9165"]


def config_seeds():
    paths = sorted(glob.glob(os.path.join(ROOT, "etc/keepalived/*.conf")) + glob.glob(os.path.join(ROOT, "Tests/testdata/parity/*.conf"))
                   + glob.glob(os.path.join(ROOT, "contrib/kernel-lab/ipvs/*.conf")))
    seeds = []
    for path in paths:
        with open(path, "rb") as f:
            seeds.append(f.read())
    return seeds


def replies_seeds():
    dns = struct.pack(">HHHHHH", 0x4242, 0x8180, 1, 1, 0, 0) + b"\x03web\x03lab\x00\x00\x01\x00\x01"
    dns += b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x0a\x00\x00\x01"
    echo4 = bytes([0x45, 0, 0, 28, 0, 0, 0, 0, 64, 1, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1, 0, 0, 0xF7, 0xF7, 0, 7, 0, 1])
    echo6 = bytes([129, 0, 0, 0, 0, 7, 0, 1])
    return [b"220 mail ESMTP\r\n250 ok\r\n221 bye\r\n", b"220-a\r\n220 b\r\n250-x\r\n250 y\r\n", b"554 no\r\n",
            b"220 ok\r\n250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n221 bye\r\n", dns, echo4, echo6,
            b"AB", b"42\n", b"-17", b"0x10", b"  7  \n"]


def main():
    out = sys.argv[1]
    counts = {
        "VRRPFuzz": write(out, "VRRPFuzz", vrrp_seeds()),
        "NetlinkFuzz": write(out, "NetlinkFuzz", netlink_seeds()),
        "HTTPFuzz": write(out, "HTTPFuzz", http_seeds()),
        "ControlFuzz": write(out, "ControlFuzz", control_seeds()),
        "ConfigFuzz": write(out, "ConfigFuzz", config_seeds()),
        "RepliesFuzz": write(out, "RepliesFuzz", replies_seeds()),
    }
    for target, count in counts.items():
        print("%s: %d seeds" % (target, count))


if __name__ == "__main__":
    main()
