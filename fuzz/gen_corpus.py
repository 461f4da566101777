#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into fuzz/corpus/TARGET/.

Each seed is a small, named input in the format the target's header
comment describes: valid sessions the fuzzer can mutate from, and the
known-bad inputs of issue 5 (see tests/unit/test_cve.c).  Run from the
repository root: fuzz/gen_corpus.py (existing seeds are replaced).
"""
import os
import shutil
import struct
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")

# ---- vhost-user -----------------------------------------------------------
GET_FEATURES, SET_FEATURES, SET_OWNER, RESET_OWNER, SET_MEM_TABLE = 1, 2, 3, 4, 5
SET_LOG_BASE, SET_LOG_FD, SET_VRING_NUM, SET_VRING_ADDR, SET_VRING_BASE = 6, 7, 8, 9, 10
GET_VRING_BASE, SET_VRING_KICK, SET_VRING_CALL, SET_VRING_ERR = 11, 12, 13, 14
GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES, GET_QUEUE_NUM = 15, 16, 17
SET_VRING_ENABLE, SEND_RARP, NET_SET_MTU, SET_BACKEND_REQ_FD = 18, 19, 20, 21
RESET_DEVICE, GET_MAX_MEM_SLOTS, ADD_MEM_REG, REM_MEM_REG = 34, 36, 37, 38
SET_STATUS, GET_STATUS = 39, 40

V1 = 1             # header flags: version 1
NEED_REPLY = 8
NOFD = 0x100

F_VERSION_1, F_INDIRECT, F_EVENT_IDX, F_MRG_RXBUF, F_PROTOCOL = 32, 28, 29, 15, 30
F_MQ, F_MTU = 22, 3
P_MQ, P_RARP, P_REPLY_ACK, P_NET_MTU, P_RESET, P_MEM_SLOTS, P_STATUS = 0, 2, 3, 4, 13, 15, 16

# fdspec kinds (fuzz_vu_msg.c)
FD_MEM0, FD_EVENT, FD_MEM1, FD_TINY, FD_PIPE, FD_NULL, FD_MIX, FD_SOCK = range(8)

UVA = 0x7F0000000000        # guest memory file 0 at gpa 0, this user address
UVA1 = 0x7F1000000000       # file 1


def bits(*b):
    v = 0
    for x in b:
        v |= 1 << x
    return v


def msg(req, payload=b"", flags=V1, nfds=0, kind=FD_EVENT, size=None, wide=False):
    size = len(payload) if size is None else size
    spec = (kind << 4) | nfds
    if wide or req > 0xFF or size > 0xFFFF:
        return bytes([8]) + struct.pack("<II", req, size) + bytes([flags, spec]) + payload
    return bytes([0]) + struct.pack("<BH", req, size) + bytes([flags, spec]) + payload


def raw(data, nfds=0, kind=FD_EVENT):
    return bytes([1, len(data), (kind << 4) | nfds]) + data


def poke(off, data):
    out = b""
    while data:
        chunk, data = data[:255], data[255:]
        out += bytes([2]) + struct.pack("<IB", off, len(chunk)) + chunk
        off += len(chunk)
    return out


def data_op(rearm=False):
    return bytes([3 | (8 if rearm else 0)])


EOF_OP, RECONNECT = bytes([4]), bytes([5])


def u64(v):
    return struct.pack("<Q", v)


def state(index, num):
    return struct.pack("<II", index, num)


def region(gpa, size, uva, off=0):
    return struct.pack("<QQQQ", gpa, size, uva, off)


def mem_table(regions):
    return struct.pack("<II", len(regions), 0) + b"".join(regions)


def vring_addr(index, desc, used, avail, flags=0, log=0):
    return struct.pack("<IIQQQQ", index, flags, desc, used, avail, log)


def ring_offsets(i):
    """Ring i of the fuzzed port lives at 0x10000 * (i + 1) in file 0."""
    base = 0x10000 * (i + 1)
    return base, base + 0x1000, base + 0x2000      # desc, avail, used


def negotiate(feats, proto, fl=V1):
    return (msg(GET_FEATURES, flags=fl) + msg(GET_PROTOCOL_FEATURES, flags=fl) +
            msg(SET_PROTOCOL_FEATURES, u64(proto), flags=fl) + msg(SET_FEATURES, u64(feats), flags=fl) +
            msg(SET_OWNER, flags=fl))


def setup_ring(i, num=256, fl=V1, kick=True):
    d, a, u = ring_offsets(i)
    out = (msg(SET_VRING_NUM, state(i, num), flags=fl) +
           msg(SET_VRING_ADDR, vring_addr(i, UVA + d, UVA + u, UVA + a), flags=fl) +
           msg(SET_VRING_BASE, state(i, 0), flags=fl))
    if kick:
        out += msg(SET_VRING_KICK, u64(i), flags=fl, nfds=1)
    out += (msg(SET_VRING_CALL, u64(i), flags=fl, nfds=1) +
            msg(SET_VRING_ENABLE, state(i, 1), flags=fl))
    return out


def frame(dst=b"\xff" * 6, src=b"\x52\x54\x00\x00\x00\x0e", length=60):
    f = dst + src + b"\x08\x00"
    return f + bytes((i * 7) & 0xFF for i in range(length - len(f)))


def tx_frame(ring=1, head=0, hdr=bytes(12), fr=None, at=0x80000):
    """A one-descriptor TX frame in ring `ring`, avail index head + 1."""
    fr = frame() if fr is None else fr
    d, a, _ = ring_offsets(ring)
    return (poke(at, hdr + fr) +
            poke(d + 16 * head, struct.pack("<QIHH", at, len(hdr) + len(fr), 0, 0)) +
            poke(a, struct.pack("<HHH", 0, head + 1, head)))


def rx_buffers(ring=0, n=8, size=2048, at=0x90000):
    d, a, _ = ring_offsets(ring)
    out = b""
    for i in range(n):
        out += poke(d + 16 * i, struct.pack("<QIHH", at + i * size, size, 2, 0))
    out += poke(a, struct.pack("<HH", 0, n) + b"".join(struct.pack("<H", i) for i in range(n)))
    return out


FEATS = bits(F_VERSION_1, F_INDIRECT, F_EVENT_IDX, F_MRG_RXBUF, F_PROTOCOL)
PROTO = bits(P_MQ, P_RARP, P_REPLY_ACK, P_NET_MTU, P_RESET, P_MEM_SLOTS, P_STATUS)
MEM1 = mem_table([region(0, 1 << 20, UVA)])


def session(fl=V1, feats=FEATS, proto=PROTO, pairs=1):
    out = negotiate(feats, proto, fl) + msg(SET_MEM_TABLE, MEM1, flags=fl, nfds=1, kind=FD_MEM0)
    for i in range(2 * pairs):
        out += setup_ring(i, fl=fl)
    return out


def vu_msg_seeds():
    s = {}
    s["session-1qp"] = session() + rx_buffers() + tx_frame() + data_op() + \
        msg(GET_VRING_BASE, state(1, 0)) + EOF_OP
    s["session-need-reply"] = session(fl=V1 | NEED_REPLY) + tx_frame() + data_op(True)
    s["session-2qp"] = session(feats=FEATS | bits(F_MQ), pairs=2) + msg(GET_QUEUE_NUM) + \
        rx_buffers(2) + tx_frame(3) + data_op()
    s["session-legacy-no-protocol"] = (msg(GET_FEATURES) + msg(SET_FEATURES, u64(bits(F_MRG_RXBUF))) +
                                       msg(SET_MEM_TABLE, MEM1, nfds=1, kind=FD_MEM0) +
                                       setup_ring(0) + setup_ring(1) + rx_buffers() + tx_frame() +
                                       data_op())
    s["status-mtu-rarp"] = (session() + msg(SET_STATUS, u64(0x0F)) + msg(GET_STATUS) +
                            msg(NET_SET_MTU, u64(1500)) + msg(SEND_RARP, b"\x52\x54\x00\x00\x00\x0e\x00\x00") +
                            msg(GET_MAX_MEM_SLOTS))
    s["add-rem-mem-reg"] = (negotiate(FEATS, PROTO, V1 | NEED_REPLY) +
                            msg(ADD_MEM_REG, u64(0) + region(0, 1 << 20, UVA), V1 | NEED_REPLY, 1, FD_MEM0) +
                            msg(ADD_MEM_REG, u64(0) + region(0x200000, 256 << 10, UVA1), V1 | NEED_REPLY, 1,
                                FD_MEM1) +
                            setup_ring(0) + setup_ring(1) + tx_frame() + data_op() +
                            msg(REM_MEM_REG, u64(0) + region(0, 1 << 20, UVA), V1 | NEED_REPLY) +
                            data_op() +
                            msg(REM_MEM_REG, u64(0) + region(0x200000, 256 << 10, UVA1), V1 | NEED_REPLY, 1,
                                FD_MEM1))
    s["reset-then-datapath"] = session() + tx_frame() + msg(RESET_OWNER) + data_op() + \
        msg(RESET_DEVICE) + data_op()
    s["rings-before-mem-table"] = (negotiate(FEATS, PROTO) + setup_ring(0) + setup_ring(1) +
                                   msg(SET_MEM_TABLE, MEM1, nfds=1, kind=FD_MEM0) + tx_frame() +
                                   data_op() +
                                   msg(SET_MEM_TABLE, mem_table([region(0, 0x20000, UVA)]), nfds=1,
                                       kind=FD_MEM0) + data_op())
    s["vring-num-after-addr"] = session() + msg(SET_VRING_NUM, state(1, 32768)) + data_op() + \
        msg(SET_VRING_NUM, state(1, 16)) + tx_frame() + data_op()
    s["stop-ring-get-base"] = session() + msg(GET_VRING_BASE, state(1, 0)) + tx_frame() + data_op() + \
        msg(SET_VRING_KICK, u64(1 | NOFD)) + data_op()
    s["reconnect"] = session() + RECONNECT + session() + tx_frame() + data_op()
    s["split-header"] = (negotiate(FEATS, PROTO) +
                         raw(struct.pack("<III", SET_VRING_NUM, V1, 8)[:5]) +
                         raw(struct.pack("<III", SET_VRING_NUM, V1, 8)[5:] + state(0, 64)[:3]) +
                         raw(state(0, 64)[3:]))
    two = struct.pack("<III", GET_FEATURES, V1, 0) + struct.pack("<III", GET_QUEUE_NUM, V1, 0)
    s["two-messages-one-write"] = raw(two)
    # CVE-2019-14818: fds beyond what a message takes; repeated SET_VRING_NUM
    s["cve-2019-14818-fds"] = negotiate(FEATS, PROTO) + msg(SET_MEM_TABLE, MEM1, nfds=9, kind=FD_MEM0)
    s["cve-2019-14818-vring-num"] = session() + b"".join(msg(SET_VRING_NUM, state(1, n))
                                                         for n in (256, 1024, 2, 256, 32768, 4))
    # CVE-2020-10722: SET_LOG_BASE with a size + offset that wraps
    s["cve-2020-10722-log-base"] = session(fl=V1 | NEED_REPLY) + \
        msg(SET_LOG_BASE, struct.pack("<QQ", 0xFFFFFFFFFFFFF000, 0x2000), V1 | NEED_REPLY, 1, FD_MEM0) + \
        msg(SET_LOG_FD, flags=V1 | NEED_REPLY, nfds=1, kind=FD_EVENT) + \
        msg(SET_VRING_ADDR, vring_addr(1, UVA + 0x20000, UVA + 0x22000, UVA + 0x21000, flags=1,
                                       log=0xFFFFFFFFFFFF0000))
    # Live migration: LOG_ALL before the log (allowed), a log in a 4 KiB
    # memfd, a ring logging its used writes, traffic, logging off, then
    # logs that are too big for the file, empty, wrapping, a log address
    # outside memory, and the ring stopped.
    log_feats = FEATS | bits(26)
    log_proto = PROTO | bits(1)
    s["migration-log"] = (session(feats=log_feats, proto=log_proto) +
                          msg(SET_LOG_BASE, struct.pack("<QQ", 64, 0), V1, 1, FD_TINY) +
                          msg(SET_VRING_ADDR, vring_addr(1, UVA + 0x20000, UVA + 0x22000, UVA + 0x21000,
                                                         flags=1, log=0x22000)) +
                          rx_buffers() + tx_frame() + data_op() +
                          msg(SET_FEATURES, u64(FEATS)) + data_op() +
                          msg(GET_VRING_BASE, state(1, 0)) + EOF_OP)
    s["migration-log-hostile"] = (session(feats=log_feats, proto=log_proto, fl=V1 | NEED_REPLY) +
                                  msg(SET_VRING_ADDR, vring_addr(1, UVA + 0x20000, UVA + 0x22000,
                                                                 UVA + 0x21000, flags=1,
                                                                 log=0x7FFFFFFF0000), V1 | NEED_REPLY) +
                                  msg(SET_LOG_BASE, struct.pack("<QQ", 8192, 0), V1, 1, FD_TINY) +
                                  msg(SET_LOG_BASE, struct.pack("<QQ", 0, 0), V1, 1, FD_TINY) +
                                  msg(SET_LOG_BASE, struct.pack("<QQ", 64, 0xFFFFFFFFFFFFFFF0), V1, 1,
                                      FD_TINY) +
                                  msg(SET_LOG_BASE, struct.pack("<QQ", 16, 0), V1, 1, FD_PIPE) +
                                  msg(SET_LOG_BASE, struct.pack("<QQ", 64, 0), V1, 1, FD_MEM0) +
                                  tx_frame() + data_op())
    # CVE-2020-10723: ring index truncated or beyond the queues
    s["cve-2020-10723-index"] = negotiate(FEATS, PROTO, V1 | NEED_REPLY) + b"".join(
        msg(r, state(i, 64), V1 | NEED_REPLY) for r in (SET_VRING_NUM, SET_VRING_BASE, SET_VRING_ENABLE)
        for i in (2, 255, 0x10000, 0xFFFFFFFF)) + msg(SET_VRING_KICK, u64(0xFE), nfds=1) + \
        msg(SET_VRING_CALL, u64(0x1FF)) + msg(GET_VRING_BASE, state(77, 0))
    # CVE-2022-0669: fds on messages that take none
    s["cve-2022-0669-stray-fds"] = (negotiate(FEATS, PROTO) + msg(GET_FEATURES, nfds=3) +
                                    msg(SET_OWNER, nfds=2, kind=FD_MEM0) +
                                    msg(SET_VRING_NUM, state(0, 256), nfds=4, kind=FD_MIX) +
                                    msg(REM_MEM_REG, u64(0) + region(0, 4096, UVA), nfds=2))
    # memory regions: overlapping, zero-sized, wrapping, more than the slots, file too small
    s["mem-overlap"] = negotiate(FEATS, PROTO) + msg(
        SET_MEM_TABLE, mem_table([region(0, 1 << 20, UVA), region(1 << 19, 256 << 10, UVA1)]), nfds=2,
        kind=FD_MEM0) + msg(SET_MEM_TABLE, mem_table([region(0, 256 << 10, UVA),
                                                      region(1 << 20, 256 << 10, UVA + 4096)]),
                            nfds=2, kind=FD_MIX)
    s["mem-zero-wrap"] = negotiate(FEATS, PROTO, V1 | NEED_REPLY) + msg(
        SET_MEM_TABLE, mem_table([region(0, 0, UVA)]), V1 | NEED_REPLY, 1, FD_MEM0) + msg(
        SET_MEM_TABLE, mem_table([region(0xFFFFFFFFFFF00000, 2 << 20, UVA)]), V1 | NEED_REPLY, 1,
        FD_MEM0) + msg(SET_MEM_TABLE, mem_table([region(0, 4096, UVA, 0xFFFFFFFFFFFFF000)]),
                       V1 | NEED_REPLY, 1, FD_MEM0)
    s["mem-tiny-fd-and-pipe"] = negotiate(FEATS, PROTO, V1 | NEED_REPLY) + msg(
        SET_MEM_TABLE, mem_table([region(0, 1 << 20, UVA)]), V1 | NEED_REPLY, 1, FD_TINY) + msg(
        SET_MEM_TABLE, mem_table([region(0, 4096, UVA)]), V1 | NEED_REPLY, 1, FD_PIPE)
    s["mem-slots"] = negotiate(FEATS, PROTO, V1 | NEED_REPLY) + b"".join(
        msg(ADD_MEM_REG, u64(0) + region(i * 0x1000, 0x1000, UVA + i * 0x1000, i * 0x1000),
            V1 | NEED_REPLY, 1, FD_MEM0) for i in range(34))
    # regression (found by fuzz_vu_msg): a region whose offset and user
    # address disagree modulo 16 made 16-aligned ring addresses misaligned
    s["mem-unaligned-offset"] = negotiate(FEATS, PROTO) + \
        msg(ADD_MEM_REG, u64(0) + region(0, 0x10000, UVA + 0x10000, 0x7), nfds=1, kind=FD_MEM0) + \
        msg(SET_VRING_NUM, state(1, 64)) + \
        msg(SET_VRING_ADDR, vring_addr(1, UVA + 0x10000, UVA + 0x12000, UVA + 0x11000)) + \
        msg(SET_VRING_KICK, u64(1), nfds=1) + msg(SET_VRING_ENABLE, state(1, 1)) + \
        poke(0x1007, struct.pack("<HHH", 0, 1, 0)) + data_op()
    nine = mem_table([region(i << 20, 4096, UVA + (i << 20)) for i in range(8)])
    s["mem-nine-regions"] = negotiate(FEATS, PROTO) + msg(SET_MEM_TABLE, struct.pack("<I", 9) +
                                                          nine[4:], nfds=8, kind=FD_MEM0)
    # messages shorter or longer than their type, EOF mid-message
    s["sizes"] = (msg(SET_FEATURES, u64(0)[:4]) + RECONNECT + msg(SET_VRING_ADDR, bytes(24)) +
                  RECONNECT + msg(SET_FEATURES, bytes(16)) + RECONNECT +
                  msg(SET_MEM_TABLE, MEM1[:-8], nfds=1, kind=FD_MEM0))
    s["huge-size"] = negotiate(FEATS, PROTO) + msg(SET_FEATURES, size=0xFFFFFFFF, wide=True)
    s["eof-mid-header"] = raw(struct.pack("<III", SET_FEATURES, V1, 8)[:6]) + EOF_OP
    s["eof-mid-payload-fd"] = raw(struct.pack("<III", SET_MEM_TABLE, V1, 40) + bytes(10), 1, FD_MEM0) + \
        EOF_OP
    s["bad-flags-unknown"] = (msg(GET_FEATURES, flags=0) + RECONNECT + msg(GET_FEATURES, flags=6) +
                              RECONNECT + msg(77, u64(0), V1 | NEED_REPLY) +
                              msg(0xFFFFFFFF, u64(0), V1 | NEED_REPLY, wide=True) + msg(26, bytes(8)))
    s["bad-notify-fds"] = (session() + msg(SET_VRING_KICK, u64(1), nfds=1, kind=FD_PIPE) +
                           msg(SET_VRING_CALL, u64(0), nfds=1, kind=FD_NULL) +
                           msg(SET_VRING_ERR, u64(0), nfds=1, kind=FD_SOCK) +
                           msg(SET_VRING_KICK, u64(1), nfds=2) + data_op())
    s["rings-outside-memory"] = negotiate(FEATS, PROTO, V1 | NEED_REPLY) + \
        msg(SET_MEM_TABLE, MEM1, V1 | NEED_REPLY, 1, FD_MEM0) + msg(SET_VRING_NUM, state(1, 256)) + \
        msg(SET_VRING_ADDR, vring_addr(1, UVA + (1 << 20) - 2048, UVA + 0x2000, UVA + 0x1000),
            V1 | NEED_REPLY) + \
        msg(SET_VRING_ADDR, vring_addr(1, 0xFFFFFFFFFFFFFFF0, UVA + 0x2000, UVA + 0x1000),
            V1 | NEED_REPLY) + \
        msg(SET_VRING_ADDR, vring_addr(1, UVA + 8, UVA + 0x2001, UVA + 0x1001), V1 | NEED_REPLY)
    # the datapath through the messages: bad chains on a ring set up by messages
    d, a, _ = ring_offsets(1)
    s["ring-loop"] = session() + poke(d, struct.pack("<QIHH", 0x80000, 12, 1, 0)) + \
        poke(a, struct.pack("<HHH", 0, 1, 0)) + data_op() + data_op()
    s["ring-avail-jump"] = session() + tx_frame() + poke(a, struct.pack("<HH", 0, 300)) + data_op()
    s["rx-outside-memory"] = session() + poke(ring_offsets(0)[0], struct.pack("<QIHH", 2 << 20, 2048, 2, 0)) + \
        poke(ring_offsets(0)[1], struct.pack("<HHH", 0, 1, 0)) + data_op()
    return s


# ---- datapath -------------------------------------------------------------
DP_REG = 32 << 10
GPA0 = 0x10000
DESC, AVAIL, USED = 0x0, 0x1000, 0x2000
# feature bits of the config bytes (fuzz_datapath.c)
D_V1, D_MRG, D_IND, D_EVT, D_CSUM, D_GCSUM, D_HTSO, D_GTSO = (1 << i for i in range(8))


def dp_cfg(afeat=D_V1, bfeat=D_V1 | D_MRG, alog=8, blog=8, alay=0, blay=0, rearm=False,
           passes=1, a_start=0, b_start=0, budget=0, qp1=False, apk=False, bpk=False, pnum=0):
    b3 = alay | (blay << 2) | (0x10 if rearm else 0) | ((passes - 1) << 5)
    return bytes([afeat, bfeat, alog | (blog << 4), b3]) + struct.pack("<HH", a_start, b_start) + \
        bytes([budget, 1 if qp1 else 0, (1 if apk else 0) | (2 if bpk else 0), pnum])


def w(guest, reg, off, data):
    out = b""
    while data:
        chunk, data = data[:255], data[255:]
        out += bytes([guest | (reg << 1)]) + struct.pack("<HB", off, len(chunk)) + chunk
        off += len(chunk)
    return out


def desc(addr, length, flags=0, nxt=0):
    return struct.pack("<QIHH", addr, length, flags, nxt)


NEXT, WRITE, INDIRECT = 1, 2, 4


def avail(heads, start=0, num=256):
    ring = bytearray(2 * num)
    for i, h in enumerate(heads):
        struct.pack_into("<H", ring, 2 * ((start + i) % num), h)
    return struct.pack("<HH", 0, (start + len(heads)) & 0xFFFF) + bytes(ring)


def a_desc(i, *args):
    return w(0, 0, DESC + 16 * i, desc(*args))


def b_desc(i, *args):
    return w(1, 0, DESC + 16 * i, desc(*args))


def a_avail(heads, start=0):
    return w(0, 0, AVAIL, avail(heads, start))


def b_rx(n=8, size=2048, start=0, at=0x3000, flags=WRITE, num=256):
    """n receive buffers of B (wrapping around inside region 0)."""
    out = b""
    for i in range(n):
        out += b_desc(i, GPA0 + at + (i * size) % (DP_REG - at - size), size, flags)
    return out + w(1, 0, AVAIL, avail(list(range(n)), start, num))


def net_hdr(flags=0, gso_type=0, hdr_len=0, gso_size=0, csum_start=0, csum_offset=0, nbuf=0):
    return struct.pack("<BBHHHHH", flags, gso_type, hdr_len, gso_size, csum_start, csum_offset, nbuf)


def udp_frame(payload=32):
    eth = b"\xff" * 6 + b"\x52\x54\x00\x00\x00\x0a" + b"\x08\x00"
    total = 20 + 8 + payload
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, total, 0, 0, 64, 17, 0, bytes([10, 0, 0, 1]),
                     bytes([10, 0, 0, 2]))
    udp = struct.pack(">HHHH", 1000, 2000, 8 + payload, 0)
    return eth + ip + udp + bytes(i & 0xFF for i in range(payload))


def tcp_frame(payload=3000):
    eth = b"\x52\x54\x00\x00\x00\x0b" + b"\x52\x54\x00\x00\x00\x0a" + b"\x08\x00"
    total = 20 + 20 + payload
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, total & 0xFFFF, 1, 0x4000, 64, 6, 0,
                     bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
    tcp = struct.pack(">HHIIBBHHH", 1000, 2000, 1, 0, 0x50, 0x18, 65535, 0, 0)
    return eth + ip + tcp + bytes(i & 0xFF for i in range(payload))


def datapath_seeds():
    s = {}
    data = GPA0 + 0x3000
    fr = udp_frame()
    hdr = net_hdr()
    # valid: header and frame in two descriptors, B has mergeable buffers
    s["valid-two-desc"] = dp_cfg() + w(0, 0, 0x3000, hdr + fr) + \
        a_desc(0, data, 12, NEXT, 1) + a_desc(1, data + 12, len(fr)) + a_avail([0]) + b_rx()
    s["valid-one-desc-legacy-hdr"] = dp_cfg(afeat=0, bfeat=0) + w(0, 0, 0x3000, hdr[:10] + fr) + \
        a_desc(0, data, 10 + len(fr)) + a_avail([0]) + b_rx()
    many = b"".join(a_desc(i, data, 12 + len(fr)) for i in range(16))
    s["valid-16-frames-event-idx"] = dp_cfg(afeat=D_V1 | D_EVT, bfeat=D_V1 | D_EVT | D_MRG, passes=3,
                                            budget=5, rearm=True) + \
        w(0, 0, 0x3000, hdr + fr) + many + a_avail(list(range(16))) + b_rx(n=32, size=256)
    tbl = desc(data + 0x100, 12, NEXT, 1) + desc(data + 0x100 + 12, len(fr))
    s["valid-indirect"] = dp_cfg(afeat=D_V1 | D_IND) + w(0, 0, 0x3000, tbl) + \
        w(0, 0, 0x3100, hdr + fr) + a_desc(0, data, 32, INDIRECT) + a_avail([0]) + b_rx()
    s["valid-wrapping-index"] = dp_cfg(a_start=0xFFFE, b_start=0xFFFF, alog=4, blog=4) + \
        w(0, 0, 0x3000, hdr + fr) + a_desc(3, data, 12 + len(fr)) + a_desc(4, data, 12 + len(fr)) + \
        w(0, 0, AVAIL, struct.pack("<HH", 0, 0) + bytes(28)) + \
        w(0, 0, AVAIL + 4 + 2 * 14, struct.pack("<HH", 3, 4)) + \
        b_rx(n=16, size=1024, start=0xFFFF, num=16)
    big = udp_frame(1400)
    s["rx-small-buffers-mergeable"] = dp_cfg(bfeat=D_V1 | D_MRG) + w(0, 0, 0x3000, hdr + big) + \
        a_desc(0, data, 12 + len(big)) + a_avail([0]) + b_rx(n=8, size=200)
    s["rx-too-small-not-mergeable"] = dp_cfg(bfeat=D_V1) + w(0, 0, 0x3000, hdr + fr) + \
        a_desc(0, data, 12 + len(fr)) + a_avail([0]) + b_rx(n=4, size=40)
    # descriptor range not fully mapped or spanning two regions (CVE-2018-1059, CVE-2013-0311)
    end = GPA0 + DP_REG
    s["desc-past-end"] = dp_cfg() + a_desc(0, end - 16, 76) + a_avail([0]) + b_rx()
    s["desc-spans-adjacent-regions"] = dp_cfg(alay=1) + w(0, 0, DP_REG - 40, hdr + fr[:28]) + \
        w(0, 1, 0, fr[28:]) + a_desc(0, end - 40, 12 + len(fr)) + a_avail([0]) + b_rx()
    s["desc-spans-hole"] = dp_cfg(alay=2) + a_desc(0, end - 40, 12 + len(fr)) + a_avail([0]) + b_rx()
    s["rx-spans-regions"] = dp_cfg(blay=1) + w(0, 0, 0x3000, hdr + fr) + a_desc(0, data, 12 + len(fr)) + \
        a_avail([0]) + b_desc(0, end - 50, 2048, WRITE) + w(1, 0, AVAIL, avail([0]))
    s["rx-outside-memory"] = dp_cfg() + w(0, 0, 0x3000, hdr + fr) + a_desc(0, data, 12 + len(fr)) + \
        a_avail([0]) + b_desc(0, 0x1000000, 2048, WRITE) + w(1, 0, AVAIL, avail([0]))
    # zero length with a bad address (CVE-2020-10725, CVE-2016-6490, CVE-2019-14835)
    s["zero-len-bad-addr"] = dp_cfg() + w(0, 0, 0x3000, hdr + fr) + \
        a_desc(0, 0xDEAD000000000000, 0, NEXT, 1) + a_desc(1, data, 12 + len(fr)) + a_avail([0]) + \
        b_desc(0, 0xFFFFFFFFFFFFF000, 0, WRITE | NEXT, 1) + b_desc(1, data, 2048, WRITE) + \
        w(1, 0, AVAIL, avail([0]))
    s["len-ffffffff"] = dp_cfg() + a_desc(0, data, 0xFFFFFFFF) + a_avail([0]) + b_rx()
    # header split over descriptors, chain no longer than the header (CVE-2022-2132)
    split = b"".join(a_desc(i, data + i * 3, 3, NEXT, i + 1) for i in range(4)) + \
        a_desc(4, data + 12, len(fr))
    s["hdr-split-4-desc"] = dp_cfg() + w(0, 0, 0x3000, hdr + fr) + split + a_avail([0]) + \
        b_rx(n=4, size=6) + b_desc(4, data, 2048, WRITE)
    s["chain-only-header"] = dp_cfg() + a_desc(0, data, 12) + a_desc(1, data, 11) + \
        a_desc(2, data, 12, NEXT, 3) + a_desc(3, data, 5) + a_avail([0, 1, 2]) + b_rx(size=12)
    # csum_start/csum_offset and gso fields beyond the packet (CVE-2024-11614)
    for name, h in (("csum-beyond", net_hdr(1, 0, 0, 0, 60, 200)),
                    ("csum-start-beyond", net_hdr(1, 0, 0, 0, 0xFFF0, 6)),
                    ("csum-valid-udp", net_hdr(1, 0, 0, 0, 34, 6)),
                    ("gso-beyond", net_hdr(1, 1, 0xFFFF, 1, 34, 16)),
                    ("gso-valid-tcp", net_hdr(1, 1, 54, 1448, 34, 16))):
        f = tcp_frame() if name.startswith("gso") else fr
        s[name] = dp_cfg(afeat=D_V1 | D_CSUM | D_HTSO, bfeat=D_V1 | D_MRG) + \
            w(0, 0, 0x3000, h + f[:DP_REG - 0x3000 - 12]) + \
            a_desc(0, data, 12 + len(f)) + a_avail([0]) + b_rx(n=32, size=1024)
    # indirect tables: straddling regions, nested, oversized, misaligned
    s["indirect-straddles"] = dp_cfg(afeat=D_V1 | D_IND, alay=1) + \
        a_desc(0, end - 16, 32, INDIRECT) + w(0, 0, DP_REG - 16, desc(data, 12 + len(fr))) + \
        a_avail([0]) + b_rx()
    s["indirect-nested"] = dp_cfg(afeat=D_V1 | D_IND) + w(0, 0, 0x3000, desc(data + 0x40, 16, INDIRECT)) + \
        w(0, 0, 0x3040, desc(data + 0x100, 76)) + a_desc(0, data, 16, INDIRECT) + a_avail([0]) + b_rx()
    s["indirect-oversized"] = dp_cfg(afeat=D_V1 | D_IND, alog=4) + a_desc(0, data, 17 * 16, INDIRECT) + \
        a_avail([0]) + b_rx()
    s["indirect-misaligned"] = dp_cfg(afeat=D_V1 | D_IND) + a_desc(0, data + 4, 32, INDIRECT) + \
        a_avail([0]) + b_rx()
    s["indirect-loop"] = dp_cfg(afeat=D_V1 | D_IND) + \
        w(0, 0, 0x3000, desc(data + 0x100, 12, NEXT, 1) + desc(data + 0x100, 12, NEXT, 0)) + \
        a_desc(0, data, 32, INDIRECT) + a_avail([0]) + b_rx()
    s["rx-indirect"] = dp_cfg(bfeat=D_V1 | D_IND | D_MRG) + w(0, 0, 0x3000, hdr + fr) + \
        a_desc(0, data, 12 + len(fr)) + a_avail([0]) + \
        w(1, 0, 0x3000, desc(data + 0x100, 12, WRITE | NEXT, 1) + desc(data + 0x200, 1500, WRITE)) + \
        b_desc(0, data, 32, INDIRECT) + w(1, 0, AVAIL, avail([0]))
    # chain loops, next >= ring size, avail index jumping
    s["chain-loop"] = dp_cfg() + a_desc(0, data, 12, NEXT, 1) + a_desc(1, data, 64, NEXT, 0) + \
        a_avail([0]) + b_rx()
    s["next-beyond-ring"] = dp_cfg(alog=4) + a_desc(0, data, 12, NEXT, 16) + a_avail([0]) + b_rx()
    s["head-beyond-ring"] = dp_cfg(alog=4) + a_avail([1000]) + b_rx()
    s["avail-jump"] = dp_cfg() + w(0, 0, 0x3000, hdr + fr) + a_desc(0, data, 12 + len(fr)) + \
        w(0, 0, AVAIL, struct.pack("<HH", 0, 300)) + b_rx()
    s["rx-avail-jump"] = dp_cfg() + w(0, 0, 0x3000, hdr + fr) + a_desc(0, data, 12 + len(fr)) + \
        a_avail([0]) + b_rx() + w(1, 0, AVAIL, struct.pack("<HH", 0, 0x8000))
    # a full ring of frames served over several passes
    full = b"".join(a_desc(i, data, 12 + len(fr)) for i in range(256))
    s["ring-full"] = dp_cfg(passes=4, budget=64) + w(0, 0, 0x3000, hdr + fr) + full + \
        a_avail(list(range(256))) + b_rx(n=64, size=128)
    s["tx-writable-desc"] = dp_cfg() + a_desc(0, data, 76, WRITE) + a_avail([0]) + b_rx()
    s["rx-readonly-desc"] = dp_cfg() + w(0, 0, 0x3000, hdr + fr) + a_desc(0, data, 12 + len(fr)) + \
        a_avail([0]) + b_rx(flags=0)
    s["qp1-to-single-rx"] = dp_cfg(qp1=True) + w(0, 0, 0x3000, hdr + fr) + \
        a_desc(0, data, 12 + len(fr)) + a_avail([0]) + b_rx()
    return s


# packed rings (fuzz_datapath.c byte 10): the descriptor ring at DESC, the
# driver's event structure at AVAIL, the device's at USED
P_AVAIL, P_USED = 1 << 7, 1 << 15
EV_ENABLE, EV_DISABLE, EV_DESC = 0, 1, 2
W1 = 0x8000          # a starting state's wrap counter bit


def pdesc(addr, length, bid=0, flags=0):
    return struct.pack("<QIHH", addr, length, bid, flags)


def avail_bits(wrap):
    return P_AVAIL if wrap else P_USED


def p_chain(guest, pos, wrap, segs, bid, num=256):
    """A chain of (addr, len, flags) made available from pos in lap wrap."""
    out = b""
    for i, (a, l, f) in enumerate(segs):
        f |= (NEXT if i + 1 < len(segs) else 0) | avail_bits(wrap)
        out += w(guest, 0, DESC + 16 * pos, pdesc(a, l, bid if i + 1 == len(segs) else 0xBEEF, f))
        pos += 1
        if pos == num:
            pos, wrap = 0, not wrap
    return out


def b_prx(n=8, size=2048, at=0x3000, pos=0, wrap=True, num=256):
    """n single-buffer receive chains of B's packed ring, IDs 0..n-1."""
    out = b""
    for i in range(n):
        out += p_chain(1, pos, wrap, [(GPA0 + at + (i * size) % (DP_REG - at - size), size, WRITE)],
                       i, num)
        pos += 1
        if pos == num:
            pos, wrap = 0, not wrap
    return out


def packed_seeds():
    s = {}
    data = GPA0 + 0x3000
    fr = udp_frame()
    hdr = net_hdr()
    end = GPA0 + DP_REG
    body = w(0, 0, 0x3000, hdr + fr)
    one = [(data, 12 + len(fr), 0)]
    pk = dict(apk=True, a_start=W1)
    s["pk-valid-one-desc"] = dp_cfg(**pk) + body + p_chain(0, 0, True, one, 0) + b_rx()
    s["pk-valid-two-desc-rearm"] = dp_cfg(rearm=True, passes=2, **pk) + body + \
        p_chain(0, 0, True, [(data, 12, 0), (data + 12, len(fr), 0)], 3) + b_rx()
    # a chain past the end of a ring of 8 (254, 255, 0 in a ring of 256 alike)
    s["pk-chain-wraps"] = dp_cfg(apk=True, a_start=W1 | 6, pnum=8) + body + \
        p_chain(0, 6, True, [(data, 12, 0), (data + 12, 30, 0), (data + 42, len(fr) - 30, 0)], 5, 8) + \
        p_chain(0, 1, False, one, 6, 8) + b_rx()
    s["pk-lap0-start"] = dp_cfg(apk=True, a_start=4, pnum=100) + body + \
        p_chain(0, 4, False, one, 99, 100) + p_chain(0, 5, False, one, 98, 100) + b_rx()
    many = b"".join(p_chain(0, i, True, one, i, 100) for i in range(100))
    s["pk-ring-full-100"] = dp_cfg(passes=4, budget=40, pnum=100, **pk) + body + many + \
        b_rx(n=64, size=128)
    s["pk-event-idx"] = dp_cfg(afeat=D_V1 | D_EVT, rearm=True, passes=2, **pk) + body + \
        p_chain(0, 0, True, one, 0) + p_chain(0, 1, True, one, 1) + \
        w(0, 0, AVAIL, struct.pack("<HH", W1 | 1, EV_DESC)) + b_rx()
    s["pk-driver-event-disable"] = dp_cfg(**pk) + body + p_chain(0, 0, True, one, 0) + \
        w(0, 0, AVAIL, struct.pack("<HH", 0, EV_DISABLE)) + b_rx()
    tbl = pdesc(data + 0x100, 12) + pdesc(data + 0x100 + 12, len(fr))
    s["pk-valid-indirect"] = dp_cfg(afeat=D_V1 | D_IND, **pk) + w(0, 0, 0x3000, tbl) + \
        w(0, 0, 0x3100, hdr + fr) + p_chain(0, 0, True, [(data, 32, INDIRECT)], 0) + b_rx()
    # packed receivers
    s["pk-rx-mergeable"] = dp_cfg(bpk=True, b_start=W1) + w(0, 0, 0x3000, hdr + udp_frame(1400)) + \
        a_desc(0, data, 12 + 1400 + 42) + a_avail([0]) + b_prx(n=8, size=512)
    s["pk-both-100"] = dp_cfg(apk=True, bpk=True, a_start=W1 | 98, b_start=W1 | 97, pnum=100) + \
        body + p_chain(0, 98, True, [(data, 12, 0), (data + 12, len(fr), 0)], 7, 100) + \
        p_chain(0, 0, False, one, 8, 100) + b_prx(n=5, size=1024, pos=97, num=100)
    s["pk-rx-chain-wraps"] = dp_cfg(bpk=True, b_start=W1 | 7, pnum=8) + body + \
        a_desc(0, data, 12 + len(fr)) + a_avail([0]) + \
        p_chain(1, 7, True, [(data, 40, WRITE), (data + 0x100, 1000, WRITE)], 2, 8)
    # hostile: wrap counters that lie, IDs beyond the ring or reused in
    # flight, chains longer than the ring, indirect tables
    s["pk-wrap-lie-hidden"] = dp_cfg(**pk) + body + \
        w(0, 0, DESC, pdesc(data, 12 + len(fr), 0, P_AVAIL | P_USED)) + b_rx()
    s["pk-unfilled-offered"] = dp_cfg(**pk) + body + p_chain(0, 0, True, one, 1) + \
        w(0, 0, DESC + 16, pdesc(0, 0, 0, P_AVAIL)) + w(0, 0, DESC + 32, pdesc(end + 0x1000, 64, 2, P_AVAIL)) + \
        b_rx()
    s["pk-id-beyond-ring"] = dp_cfg(pnum=16, **pk) + body + p_chain(0, 0, True, one, 0, 16) + \
        p_chain(0, 1, True, one, 16, 16) + b_rx()
    s["pk-id-reused"] = dp_cfg(**pk) + body + p_chain(0, 0, True, one, 4) + \
        p_chain(0, 1, True, one, 4) + b_rx()
    longc = b"".join(w(0, 0, DESC + 16 * i, pdesc(data, 12, 1, NEXT | P_AVAIL)) for i in range(8))
    s["pk-chain-longer-than-ring"] = dp_cfg(pnum=8, **pk) + body + longc + b_rx()
    s["pk-indirect-nested"] = dp_cfg(afeat=D_V1 | D_IND, **pk) + \
        w(0, 0, 0x3000, pdesc(data + 0x40, 16, 0, INDIRECT)) + \
        p_chain(0, 0, True, [(data, 16, INDIRECT)], 0) + b_rx()
    s["pk-indirect-straddles"] = dp_cfg(afeat=D_V1 | D_IND, alay=1, **pk) + \
        w(0, 0, DP_REG - 16, pdesc(data, 12 + len(fr))) + w(0, 1, 0, pdesc(data, 12)) + \
        p_chain(0, 0, True, [(end - 16, 32, INDIRECT)], 0) + body + b_rx()
    s["pk-indirect-with-next"] = dp_cfg(afeat=D_V1 | D_IND, **pk) + w(0, 0, 0x3000, tbl) + \
        w(0, 0, DESC, pdesc(data, 32, 0, INDIRECT | NEXT | P_AVAIL)) + b_rx()
    s["pk-rx-id-beyond-ring"] = dp_cfg(bpk=True, b_start=W1, pnum=16) + body + \
        a_desc(0, data, 12 + len(fr)) + a_desc(1, data, 12 + len(fr)) + a_avail([0, 1]) + \
        p_chain(1, 0, True, [(data, 2048, WRITE)], 0, 16) + p_chain(1, 1, True, [(data + 0x800, 2048, WRITE)], 40, 16)
    return s


# ---- config and control commands ------------------------------------------
def config_seeds():
    s = {}
    text = [
        ("text-full", "# two ports\nport vm1,path=/tmp/1.sock,queues=4,client=on,mac=52:54:00:12:34:56,"
                      "policy=adaptive:80\n\n  tap lwv1  # host\nworkers 2\nlog-level debug\n"
                      "ctl /tmp/ctl.sock\npolicy interval:100\nidle-us 500\n"),
        ("text-include", "config inc.conf\nport b,path=b.sock\n"),
        ("text-include-loop", "config loop.conf\n"),
        ("text-include-big", "config big.conf\n"),
        ("text-errors", "port vm1,path=/a\nworkers\nport a,path=/a extra\n"),
        ("text-dup", "port a,path=/x\nport a,path=/y\nport b,path=/x\n"),
        ("text-bad-values", "port vm1,path=/a,queues=17\nport v,path=/a,mac=01:00:5e:00:00:01\n"
                            "workers 65\nidle-us 0\npolicy interval:0\nlog-level loud\n"),
        ("text-long", "port " + "x" * 40 + ",path=" + "p" * 200 + "\n"),
        ("text-multihost", "uplink up0,ifname=eth1,mode=packet,qdisc_bypass=on\n"
                           "vxlan vx0,local=10.0.0.1,remote=10.0.0.2,remote=10.0.0.3,vni=42,"
                           "dstport=4789,learn=on,mtu=1450\n"),
        ("text-multihost-bad", "uplink up0\nuplink up1,ifname=,mode=xdp,queue=99\n"
                               "vxlan vx0,local=10.0.0.1,vni=16777216\n"
                               "vxlan vx1,local=2001:db8::1,remote=10.0.0.2,vni=1\n"
                               "vxlan vx2,local=10.0.0.1,remote=10.0.0.1,vni=1,dstport=0,mtu=9\n"),
        ("text-vxlan-v6", "vxlan vx0,local=2001:db8::1,remote=2001:db8::2,remote=2001:db8::3,"
                          "vni=7\n"),
    ]
    for name, t in text:
        s[name] = b"\x00" + t.encode()
    args = [
        ("args-full", ["--port", "vm1,path=/tmp/a.sock,queues=4,client=on,mac=52:54:00:12:34:56",
                       "--tap", "lwv0", "--workers", "3", "--ctl", "/tmp/c", "--policy", "poll"]),
        ("args-equals", ["--port=a,path=x", "--workers=2", "--config=inc.conf"]),
        ("args-cluster", ["-xx"]),
        ("args-help", ["-hV"]),
        ("args-missing", ["--port"]),
        ("args-extra", ["--port", "a,path=x", "stray"]),
        ("args-multihost", ["--uplink", "up0,ifname=veth0", "--vxlan",
                            "vx0,local=10.0.0.1,remote=10.0.0.2,vni=42", "--vxlan=vx1,local=x"]),
    ]
    for name, a in args:
        s[name] = b"\x01" + "\n".join(a).encode()
    cmds = ["ports", "ports json", "stats", "stats json", "stats delta", "stats prometheus",
            "policy", "policy vm1 poll", "policy all interval:50", "policy nosuch notify",
            "policy vm2 adaptive:20", "trace start", "trace dump", "trace summary 0", "trace stop",
            "trace dump 7", "help", "bogus command with many words", "stats json extra"]
    for i, c in enumerate(cmds):
        s["ctl-%02d-%s" % (i, c.split()[0])] = b"\x02" + c.encode() + b"\n"
    return s


# ---- vxlan ------------------------------------------------------------------

def vx_cfg(learn=False, remotes=1, mtu_sel=43, vni=42, gro=False, v6=False):
    """fuzz_vxlan.c's 3-byte configuration (mtu_sel 43: MTU 1444)."""
    return bytes([(1 if learn else 0) | (remotes << 1) | (8 if gro else 0) | (16 if v6 else 0),
                  mtu_sel, vni])


def vx_gro(buf, gso, cut=False, burst=32, more=False, sender=0, step=0):
    """One GRO-mode buffer record: sender, clock step, GRO size (signed), flags, length."""
    fl = (1 if cut else 0) | ((burst - 1) & 31) << 1 | (0x40 if more else 0)
    return bytes([sender, step]) + struct.pack("<hBH", gso, fl, len(buf)) + buf


def vx_dgram(payload, sender=0, step=0, addr=None, addr6=None):
    """One datagram record: sender byte (or an explicit IPv4 or 16-byte IPv6
    address), clock step, length."""
    explicit = addr is not None or addr6 is not None
    who = sender if not explicit else 0x80 | sender
    rec = bytes([who])
    if addr is not None:
        rec += struct.pack(">I", addr)
    if addr6 is not None:
        rec += addr6
    return rec + bytes([step]) + struct.pack("<H", len(payload)) + payload


def vx_frame(vni=42, flags=0x08, dst=b"\xff" * 6, src=b"\x02\x00\x00\x00\x00\x0a",
             length=60, ip=True):
    hdr = bytes([flags, 0, 0, 0]) + struct.pack(">I", vni << 8)
    eth = dst + src + (b"\x08\x00" if ip else b"\x08\x06")
    body = b""
    if ip:
        body = bytes([0x45, 0, 0, 46, 0, 1, 0, 0, 64, 6, 0, 0, 10, 42, 0, 1, 10, 42, 0, 2]) + \
            struct.pack(">HH", 40000, 80)
    frame = eth + body
    return hdr + frame + bytes(max(0, length - len(frame)))


def vxlan_seeds():
    s = {}
    s["good-bcast"] = vx_cfg() + vx_dgram(vx_frame())
    s["good-unicast-after-learn"] = vx_cfg() + vx_dgram(vx_frame()) + \
        vx_dgram(vx_frame(dst=b"\x02\x00\x00\x00\x00\x0a", src=b"\x02\x00\x00\x00\x00\x0b"))
    s["bad-flags"] = vx_cfg() + vx_dgram(vx_frame(flags=0x00)) + vx_dgram(vx_frame(flags=0xf7))
    s["reserved-set"] = vx_cfg() + vx_dgram(b"\xff\xff\xff\xff\x00\x00\x2a\xff" + vx_frame()[8:])
    s["wrong-vni"] = vx_cfg() + vx_dgram(vx_frame(vni=43))
    s["short"] = vx_cfg() + b"".join(vx_dgram(vx_frame()[:n]) for n in (0, 1, 8, 21, 22))
    s["too-long"] = vx_cfg() + vx_dgram(vx_frame(length=1444 + 18)) + \
        vx_dgram(vx_frame(length=1444 + 19))
    s["stranger"] = vx_cfg() + vx_dgram(vx_frame(), sender=9) + vx_dgram(vx_frame(), sender=0x40)
    s["learn-many"] = vx_cfg(learn=True, remotes=0) + \
        b"".join(vx_dgram(vx_frame(src=bytes([2, 0, 0, 0, 1, i])), addr=0x0a640000 + i)
                 for i in range(70))
    s["learn-multicast-sender"] = vx_cfg(learn=True) + vx_dgram(vx_frame(), addr=0xe0000005) + \
        vx_dgram(vx_frame(), addr=0)
    s["mac-moves-and-ages"] = vx_cfg(remotes=3) + vx_dgram(vx_frame(), sender=0) + \
        vx_dgram(vx_frame(), sender=1, step=10) + vx_dgram(vx_frame(), sender=2, step=255) + \
        vx_dgram(vx_frame(dst=b"\x02\x00\x00\x00\x00\x0a"), sender=1, step=200)
    s["mtu-min-max"] = vx_cfg(mtu_sel=0) + vx_dgram(vx_frame(length=86)) + \
        vx_dgram(vx_frame(length=87))
    s["arp"] = vx_cfg(vni=0) + vx_dgram(vx_frame(vni=0, ip=False))
    # UDP GRO: buffers of coalesced datagrams
    seg = vx_frame(length=100)
    s["gro-40-burst-32"] = vx_cfg(gro=True) + vx_gro(seg * 40, len(seg))
    s["gro-short-last-burst-7"] = vx_cfg(gro=True) + \
        vx_gro(seg * 9 + vx_frame(length=60), len(seg), burst=7)
    s["gro-wrong-vni-cut"] = vx_cfg(gro=True) + \
        vx_gro(seg * 3 + vx_frame(vni=43, length=100) + seg * 2 + seg[:30], len(seg), cut=True)
    s["gro-hostile-sizes"] = vx_cfg(gro=True) + vx_gro(seg * 2, 0) + vx_gro(seg * 2, -1) + \
        vx_gro(seg * 2, 1, burst=1) + vx_gro(seg * 2, 5000) + vx_gro(b"", 100) + \
        vx_gro(seg * 2, 5)
    s["gro-one-read-4-buffers"] = vx_cfg(gro=True, learn=True) + \
        vx_gro(seg * 5, len(seg), more=True, burst=3) + vx_gro(seg, 0, more=True, sender=7) + \
        vx_gro(vx_frame(length=1444 + 19) * 3, len(vx_frame(length=1444 + 19)), more=True) + \
        vx_gro(seg * 64, len(seg), sender=9)
    # IPv6 underlay: remotes 2001:db8::1-3, learned ones, other-family senders
    doc6 = bytes.fromhex("20010db8000000000000000000000000")
    s["v6-good-and-learn"] = vx_cfg(v6=True, learn=True, remotes=2) + \
        vx_dgram(vx_frame(), sender=1) + \
        vx_dgram(vx_frame(src=b"\x02\x00\x00\x00\x00\x0c"), addr6=doc6[:15] + b"\x99")
    s["v6-refused-senders"] = vx_cfg(v6=True, learn=True) + \
        vx_dgram(vx_frame(), sender=0x40) + \
        vx_dgram(vx_frame(), addr6=bytes.fromhex("ff020000000000000000000000000001")) + \
        vx_dgram(vx_frame(), addr6=bytes.fromhex("fe800000000000000000000000000001")) + \
        vx_dgram(vx_frame(), addr6=bytes(16)) + \
        vx_dgram(vx_frame(), addr6=bytes.fromhex("00000000000000000000ffff0a000001"))
    s["v6-gro"] = vx_cfg(v6=True, gro=True) + vx_gro(seg * 12, len(seg), burst=5)
    s["v4-port-v6-sender"] = vx_cfg(learn=True) + vx_dgram(vx_frame(), sender=0x41)
    return s


def write(target, seeds):
    d = os.path.join(ROOT, target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for name, data in sorted(seeds.items()):
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
    print("%s: %d seeds, %d bytes" % (target, len(seeds), sum(len(v) for v in seeds.values())))


def main():
    write("fuzz_vu_msg", vu_msg_seeds())
    write("fuzz_datapath", {**datapath_seeds(), **packed_seeds()})
    write("fuzz_config", config_seeds())
    write("fuzz_vxlan", vxlan_seeds())
    return 0


if __name__ == "__main__":
    sys.exit(main())
