#!/usr/bin/env python3
"""Writes the seed corpora (fuzz/corpus/<target>/): small inputs of each kind the tests use,
one file per input, named by the hash of its bytes (so a duplicate is one file). Run from the
repository root; `tcpdump` (Debian's) compiles the BPF seeds' programs."""
import hashlib, os, struct, subprocess, sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")

def put(target, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

def udp_frame(payload=b"hello", vlan=None, size=60):
    eth = bytes([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1])
    if vlan is not None:
        eth += b"\x81\x00" + struct.pack(">H", vlan)
    ip_len = 20 + 8 + len(payload)
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, ip_len, 1, 0, 64, 17, 0, bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
    udp = struct.pack(">HHHH", 1234, 53, 8 + len(payload), 0) + payload
    f = eth + b"\x08\x00" + ip + udp
    return f + bytes(max(0, size - len(f)))

def record(direction, flags, frame):
    r = struct.pack("<IBBH", len(frame), direction, flags, 0) + frame
    return r + bytes((-len(r)) % 8)

# write_parse: byte 0 picks the largest frame (even: 1514), then the buffer.
frames = [udp_frame(), udp_frame(size=1514), udp_frame(vlan=100, size=1518), udp_frame(size=14)]
put("write_parse", b"\x00" + record(0, 0, frames[0]))
put("write_parse", b"\x00" + b"".join(record(d, 0, f) for d, f in zip([0, 1, 2, 2], frames)))
put("write_parse", b"\x00" + record(1, 1, frames[0]))            # loopback asked of an Rx frame
put("write_parse", b"\x01" + record(1, 0, udp_frame(size=9000)))
put("write_parse", b"\x00" + record(0, 0, frames[0])[:-3])       # truncated
put("write_parse", b"\x00" + struct.pack("<IBBH", 61, 0, 0, 0) + udp_frame(size=61) + b"\x00\x00\x01")  # bad padding

# bpf: tcpdump's programs for the bench's expressions and the tests', with a frame each.
exprs = ["icmp", "tcp port 80", "udp and dst port 53", "vlan and udp", "ip6 and tcp",
         "host 192.168.77.1 or (net 10.0.0.0/8 and not port 22) or src host 172.16.5.4",
         "ether[0] & 1 = 1", "greater 100", "ip[6:2] & 0x1fff != 0"]
for e in exprs:
    out = subprocess.run(["tcpdump", "-ddd", e], capture_output=True, text=True, check=True).stdout.split("\n")
    n = int(out[0])
    insns = b""
    for line in out[1 : 1 + n]:
        code, jt, jf, k = (int(x) for x in line.split())
        insns += struct.pack("<HBBI", code, jt, jf, k & 0xFFFFFFFF)
    if n > 64:
        continue
    for frame in (udp_frame(), udp_frame(vlan=5)):
        put("bpf", bytes([n - 1]) + insns + frame)
# scratch memory: st M[3]; ld M[3]; ret a  (valid), and the read before the write (refused)
put("bpf", bytes([2]) + struct.pack("<HBBIHBBIHBBI", 0x02, 0, 0, 3, 0x60, 0, 0, 3, 0x16, 0, 0, 0) + udp_frame())
put("bpf", bytes([1]) + struct.pack("<HBBIHBBI", 0x60, 0, 0, 3, 0x16, 0, 0, 0) + udp_frame())

# pcap and pcapng: a few frames each (microseconds and nanoseconds pcap, pcapng with an IDB
# and EPBs with flags and a comment).
def pcap(nano=False, link=1):
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    h = struct.pack("<IHHiIII", magic, 2, 4, 0, 0, 262144, link)
    for i, f in enumerate(frames[:3]):
        h += struct.pack("<IIII", 1700000000 + i, 500, len(f), len(f)) + f
    return h
put("pcap_read", pcap())
put("pcap_read", pcap(nano=True))
put("pcap_read", pcap(link=105))
put("pcap_read", pcap()[:50])

def block(t, body):
    body += bytes((-len(body)) % 4)
    n = 12 + len(body)
    return struct.pack("<II", t, n) + body + struct.pack("<I", n)
def option(code, value):
    return struct.pack("<HH", code, len(value)) + value + bytes((-len(value)) % 4)
shb = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
idb = block(1, struct.pack("<HHI", 1, 0, 262144) + option(9, b"\x09") + option(0, b""))
def epb(f, flags=None, comment=None):
    opts = b""
    if flags is not None:
        opts += option(2, struct.pack("<I", flags))
    if comment is not None:
        opts += option(1, comment)
    if opts:
        opts += option(0, b"")
    return block(6, struct.pack("<IIIII", 0, 0, 1000, len(f), len(f)) + f + bytes((-len(f)) % 4) + opts)
ng = shb + idb + epb(frames[0], 1) + epb(frames[1], 2, b"injected") + epb(frames[2])
put("pcapng_read", ng)
put("pcapng_read", shb + idb)
put("pcapng_read", ng[:len(ng) - 5])
put("pcapng_read", shb + block(6, struct.pack("<IIIII", 3, 0, 0, 14, 14) + bytes(16)))  # no such interface

# ioctl_inputs: (bind? | code, method bits) then output size, input size, input.
def ioctl(pick, out_len, inp):
    return bytes([pick]) + struct.pack("<HH", out_len, len(inp)) + inp
put("ioctl_inputs", ioctl(0x00, 64, b""))                                    # get version
put("ioctl_inputs", ioctl(0x82, 0, struct.pack("<II", 0, 0)))              # bind, bound first
put("ioctl_inputs", ioctl(0x85, 0, struct.pack("<8I", 0, 128, 3, 8, 0, 0, 0, 0)))  # set capture
put("ioctl_inputs", ioctl(0xA0, 16, bytes(12)))                            # another method
put("ioctl_inputs", ioctl(0x8A, 32, struct.pack("<IIII", 0x00010106, 1, 0, 4) + b"\x20\x00\x00\x00"))  # OID

# device_sequence: open, bind, capture, filter, write, read, traffic, cancel, close; on
# three handles; with a pause and a detach among them.
def op(code, slot=0):
    return bytes([(slot << 6) | code])
seqs = [
    op(0) + op(1) + b"\x00" + op(5) + b"\x01\x00\x00\x01\x00" + op(15),
    op(0) + op(1) + b"\x00" + op(3) + b"\x05\x03\x08\x00\x00\x00" + op(6) + b"\x03" + op(13) + b"\x02" + op(15) + op(8),
    op(0) + op(1) + b"\x00" + op(3) + b"\x00\x03\x00\x00\x00\x00" + op(4) + b"\x00" + op(6) + b"\x03" + op(13) + b"\x01" + op(7) + b"\x00",
    op(0, 0) + op(0, 1) + op(1, 0) + b"\x00" + op(1, 1) + b"\x00" + op(5, 1) + b"\x01\x01\x00" + op(3, 0) + b"\x00\x03\x00\x00\x00\x00" + op(11) + op(5, 1) + b"\x00\x02\x00" + op(12) + op(6, 0) + b"\x02" + op(15),
    op(0, 2) + op(1, 2) + b"\x00" + op(2, 2) + b"\x01" + op(5, 2) + b"\x03" + b"\x00\x00" * 4 + op(8, 2) + op(5, 2) + b"\x00\x00\x00",
]
for s in seqs:
    put("device_sequence", s)
print("seeds in", ROOT)
