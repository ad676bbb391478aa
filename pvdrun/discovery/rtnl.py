"""rtnetlink dumps on a plain socket: what kernel.py reads, without importing pyroute2.

Importing pyroute2 costs about 90 ms, most of a one-shot discovery; the four dumps
discovery needs (links, addresses, routes, IPv6 neighbours) are a request each and a
stream of ``nlmsghdr`` + fixed header + attributes back.  ``Rtnl.dump`` yields each
message's type, fixed header bytes and attributes (``{type: payload}``, the last of a type
wins); a dump the kernel marks interrupted (NLM_F_DUMP_INTR: the table changed meanwhile) is
started again.  With ``strict`` (NETLINK_GET_STRICT_CHK, Linux 4.20+) the kernel filters
a dump by what its request header asks (a route dump by table), so less comes back.
:func:`messages` splits a datagram of notifications the same way.
"""
from __future__ import annotations

import errno
import socket
import struct
from collections.abc import Callable, Iterator

NLMSG_HDR = struct.Struct("=IHHII")
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_DUMP_INTR = 0x10
NLM_F_DUMP = 0x300
NLM_F_REPLACE = 0x100
NLA_TYPE_MASK = 0x3FFF
SOL_NETLINK = 270
NETLINK_GET_STRICT_CHK = 12

RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26
RTM_NEWNEIGH, RTM_DELNEIGH, RTM_GETNEIGH = 28, 29, 30

IFINFOMSG = struct.Struct("=BxHiII")     # family, type, index, flags, change
IFADDRMSG = struct.Struct("=BBBBI")      # family, prefixlen, flags, scope, index
RTMSG = struct.Struct("=BBBBBBBBI")      # family, dst_len, src_len, tos, table, protocol, scope, type, flags
NDMSG = struct.Struct("=BxxxiHBB")       # family, ifindex, state, flags, type
RTNEXTHOP = struct.Struct("=HBBi")       # len, flags, hops, ifindex

#: Tries of a dump the kernel reports interrupted, before its last answer is taken as it is.
DUMP_TRIES = 5

Attrs = dict[int, bytes]
_ATTR_HDR = struct.Struct("=HH")


def _align(length: int) -> int:
    return (length + 3) & ~3


def parse_attrs(data: bytes, offset: int = 0, end: int | None = None) -> Attrs:
    """rtattr/nlattr list -> {type: payload} (nested flag masked off)."""
    end = len(data) if end is None else end
    attrs: Attrs = {}
    unpack = _ATTR_HDR.unpack_from
    while offset + 4 <= end:
        length, kind = unpack(data, offset)
        if length < 4 or offset + length > end:
            break
        attrs[kind & NLA_TYPE_MASK] = data[offset + 4:offset + length]
        offset += (length + 3) & ~3
    return attrs


def next_hops(data: bytes) -> list[tuple[int, Attrs]]:
    """RTA_MULTIPATH payload -> [(ifindex, attributes of that next hop)]."""
    hops: list[tuple[int, Attrs]] = []
    offset = 0
    while offset + RTNEXTHOP.size <= len(data):
        length, _flags, _hops, ifindex = RTNEXTHOP.unpack_from(data, offset)
        if length < RTNEXTHOP.size or offset + length > len(data):
            break
        hops.append((ifindex, parse_attrs(data, offset + RTNEXTHOP.size, offset + length)))
        offset += _align(length)
    return hops


def address(family: int, data: bytes) -> str:
    return socket.inet_ntop(family, data)


def cstring(data: bytes) -> str:
    return data.split(b"\0", 1)[0].decode("utf-8", "replace")


def u32(data: bytes) -> int:
    return struct.unpack_from("=I", data)[0]


def messages(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """The (type, flags, body) of each netlink message in one datagram (bound-checked)."""
    offset = 0
    unpack = NLMSG_HDR.unpack_from
    while offset + NLMSG_HDR.size <= len(data):
        length, kind, flags, _seq, _pid = unpack(data, offset)
        if length < NLMSG_HDR.size or offset + length > len(data):
            return
        yield kind, flags, data[offset + NLMSG_HDR.size:offset + length]
        offset += (length + 3) & ~3


def split(body: bytes, fixed: int) -> tuple[bytes, Attrs] | None:
    """A message body -> (its fixed header of ``fixed`` bytes, its attributes); None if short."""
    if len(body) < fixed:
        return None
    return body[:fixed], parse_attrs(body, _align(fixed))


class Rtnl:
    """One NETLINK_ROUTE socket for dumps."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                  socket.NETLINK_ROUTE)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        try:  # the kernel then filters dumps by their request header (route dumps by table)
            self.sock.setsockopt(SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1)
            self.strict = True
        except OSError:
            self.strict = False
        self.sock.bind((0, 0))
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def dump(self, msg_type: int, header: bytes, fixed: int,
             keep: Callable[[bytes], bool] | None = None) -> list[tuple[int, bytes, Attrs]]:
        """Every message of one dump: (type, fixed header of ``fixed`` bytes, attributes);
        ``keep`` (of the fixed header) skips the others before their attributes are parsed."""
        for attempt in range(DUMP_TRIES):
            found, interrupted = self._dump_once(msg_type, header, fixed, keep)
            if not interrupted or attempt == DUMP_TRIES - 1:
                return found
        raise AssertionError("unreachable")

    def _dump_once(self, msg_type: int, header: bytes, fixed: int,
                   keep: Callable[[bytes], bool] | None
                   ) -> tuple[list[tuple[int, bytes, Attrs]], bool]:
        self.seq += 1
        request = NLMSG_HDR.pack(NLMSG_HDR.size + len(header), msg_type,
                                 NLM_F_REQUEST | NLM_F_DUMP, self.seq, 0) + header
        self.sock.send(request)
        found: list[tuple[int, bytes, Attrs]] = []
        interrupted = False
        start = _align(fixed)
        for kind, flags, body in self._replies():
            interrupted |= bool(flags & NLM_F_DUMP_INTR)
            if kind == NLMSG_DONE:
                return found, interrupted
            if kind == NLMSG_ERROR:
                code = -struct.unpack_from("=i", body)[0] if len(body) >= 4 else errno.EIO
                if code:
                    raise OSError(code, f"rtnetlink dump: {errno.errorcode.get(code, code)}")
                return found, interrupted
            if len(body) >= fixed:
                head = body[:fixed]
                if keep is None or keep(head):
                    found.append((kind, head, parse_attrs(body, start)))
        return found, interrupted

    def _replies(self) -> Iterator[tuple[int, int, bytes]]:
        while True:
            data = self.sock.recv(1 << 20)
            offset = 0
            while offset + NLMSG_HDR.size <= len(data):
                length, kind, flags, seq, _pid = NLMSG_HDR.unpack_from(data, offset)
                if length < NLMSG_HDR.size:
                    return
                if seq == self.seq:
                    yield kind, flags, data[offset + NLMSG_HDR.size:offset + length]
                    if kind in (NLMSG_DONE, NLMSG_ERROR):
                        return
                offset += _align(length)
