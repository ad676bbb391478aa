"""pvdd's rules and routes on plain rtnetlink sockets: encoded, decoded, changed in batches.

pyroute2 costs 0.2-0.3 ms of Python per request; a PvD that appears needs about ten rules
and routes, so pvdd sends its own messages instead (:class:`Requests`): every change of one
sync in as few datagrams as fit, each message acknowledged on its own (the kernel handles
the messages of a datagram in order, one after the other, and answers each).  The same
decoders read a dump (:meth:`Requests.dump_rules`, :meth:`Requests.dump_routes`, the latter
filtered by the kernel to ``proto 153`` where it can) and a notification
(:class:`Notifications`), so what pvdd remembers and what a dump shows compare equal.
"""
from __future__ import annotations

import errno
import ipaddress
import socket
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from pvdrun.discovery.rtnl import (
    NETLINK_GET_STRICT_CHK,
    NLM_F_DUMP,
    NLM_F_REPLACE,
    NLM_F_REQUEST,
    NLMSG_DONE,
    NLMSG_ERROR,
    NLMSG_HDR,
    RTM_DELROUTE,
    RTM_GETROUTE,
    RTM_NEWROUTE,
    RTMSG,
    SOL_NETLINK,
    Attrs,
    address,
    cstring,
    messages,
    next_hops,
    split,
    u32,
)
from pvdrun.routing.plan import (
    ACTION_LOOKUP,
    ACTION_UNREACHABLE,
    KIND_THROW,
    KIND_UNICAST,
    RTPROT_PVDD,
    RouteSpec,
    RuleSpec,
)

RTM_NEWRULE, RTM_DELRULE, RTM_GETRULE = 32, 33, 34
NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL = 0x4, 0x400, 0x200
NLM_F_DUMP_INTR = 0x10
NETLINK_ADD_MEMBERSHIP = 1
NETLINK_CAP_ACK = 10
#: struct fib_rule_hdr: family, dst_len, src_len, tos, table, res1, res2, action, flags
FIB_RULE_HDR = struct.Struct("=BBBBBBBBI")
FRA_SRC, FRA_PRIORITY, FRA_FWMARK, FRA_TABLE, FRA_FWMASK, FRA_OIFNAME, FRA_PROTOCOL = 2, 6, 10, 15, 16, 17, 21
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_PRIORITY, RTA_MULTIPATH, RTA_TABLE = 1, 4, 5, 6, 9, 15
FR_ACT_TO_TBL, FR_ACT_UNREACHABLE = 1, 7
RT_TABLE_COMPAT, RT_TABLE_MAIN, RT_TABLE_LOCAL = 252, 254, 255
RTN_UNICAST, RTN_THROW = 1, 9
_RTN_TYPES = {KIND_UNICAST: RTN_UNICAST, KIND_THROW: RTN_THROW}
_RTN_KINDS = {number: kind for kind, number in _RTN_TYPES.items()}
#: rtnetlink multicast groups (numbers, not masks): rules, routes, links, IPv4 addresses
RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV4_RULE = 1, 5, 7, 8
RTNLGRP_IPV6_ROUTE, RTNLGRP_IPV6_RULE = 11, 19
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_DELADDR = 16, 17, 18, 21
FAMILIES = (int(socket.AF_INET), int(socket.AF_INET6))
#: Bytes of requests per datagram (the kernel refuses one larger than the send buffer).
BATCH_BYTES = 16384
_IFF_UP, _IFF_LOWER_UP = 0x1, 0x10000
#: Seconds to wait for the kernel's answer to a request or a dump.
REPLY_TIMEOUT = 5.0
SO_RCVBUFFORCE = 33
#: The notification socket's receive buffer (bytes).
NOTIFY_RCVBUF = 1 << 21


def default_metric(family: int) -> int:
    return 1024 if family == socket.AF_INET6 else 0


def _attr(kind: int, payload: bytes) -> bytes:
    data = struct.pack("=HH", 4 + len(payload), kind) + payload
    return data + b"\0" * (-len(data) % 4)


def _u32(value: int) -> bytes:
    return struct.pack("=I", value)


def _host_len(family: int) -> int:
    return 128 if family == socket.AF_INET6 else 32


def encode_rule(spec: RuleSpec) -> tuple[bytes, bytes]:
    """(fixed header, attributes) of ``spec`` tagged ``proto 153``: what ``ip rule`` sends."""
    lookup = spec.action == ACTION_LOOKUP
    table = spec.table if lookup else 0
    header = FIB_RULE_HDR.pack(spec.family, 0, _host_len(spec.family) if spec.src else 0, 0,
                               table if table < 256 else RT_TABLE_COMPAT, 0, 0,
                               FR_ACT_TO_TBL if lookup else FR_ACT_UNREACHABLE, 0)
    attrs = _attr(FRA_PRIORITY, _u32(spec.priority)) + _attr(FRA_PROTOCOL, bytes([RTPROT_PVDD]))
    if lookup:
        attrs += _attr(FRA_TABLE, _u32(table))
    if spec.src:
        attrs += _attr(FRA_SRC, socket.inet_pton(spec.family, spec.src))
    if spec.oifname:
        attrs += _attr(FRA_OIFNAME, spec.oifname.encode() + b"\0")
    if spec.fwmark is not None:
        attrs += _attr(FRA_FWMARK, _u32(spec.fwmark)) + _attr(FRA_FWMASK, _u32(spec.fwmask or 0))
    return header, attrs


def encode_route(spec: RouteSpec) -> tuple[bytes, bytes]:
    """(fixed header, attributes) of ``spec`` tagged ``proto 153``."""
    if spec.dst == "default":
        dst, dst_len = None, 0
    else:
        network = ipaddress.ip_network(spec.dst, strict=False)
        dst, dst_len = network.network_address.packed, network.prefixlen
    kind = _RTN_TYPES.get(spec.kind) or int(spec.kind)
    header = RTMSG.pack(spec.family, dst_len, 0, 0, spec.table if spec.table < 256 else 0, RTPROT_PVDD, 0, kind, 0)
    attrs = _attr(RTA_TABLE, _u32(spec.table))
    if dst is not None:
        attrs += _attr(RTA_DST, dst)
    if spec.oif:
        attrs += _attr(RTA_OIF, _u32(spec.oif))
    if spec.gateway:
        attrs += _attr(RTA_GATEWAY, socket.inet_pton(spec.family, spec.gateway))
    metric = spec.metric if spec.metric is not None else default_metric(spec.family)
    attrs += _attr(RTA_PRIORITY, _u32(metric))
    return header, attrs


def decode_rule(head: bytes, attrs: Attrs) -> tuple[RuleSpec | None, int]:
    """A rule message as (RuleSpec, its protocol); None for an action pvdd never uses."""
    family, _dst_len, _src_len, _tos, header_table, _r1, _r2, action_no, _flags = FIB_RULE_HDR.unpack(head)
    protocol = attrs[FRA_PROTOCOL][0] if FRA_PROTOCOL in attrs else 0
    action = {FR_ACT_TO_TBL: ACTION_LOOKUP, FR_ACT_UNREACHABLE: ACTION_UNREACHABLE}.get(action_no)
    if action is None:
        return None, protocol
    table = (u32(attrs[FRA_TABLE]) if FRA_TABLE in attrs else header_table) if action == ACTION_LOOKUP else 0
    return RuleSpec(family=family, priority=u32(attrs[FRA_PRIORITY]) if FRA_PRIORITY in attrs else 0,
                    action=action, table=table,
                    src=address(family, attrs[FRA_SRC]) if FRA_SRC in attrs else None,
                    oifname=cstring(attrs[FRA_OIFNAME]) if FRA_OIFNAME in attrs else None,
                    fwmark=u32(attrs[FRA_FWMARK]) if FRA_FWMARK in attrs else None,
                    fwmask=u32(attrs[FRA_FWMASK]) if FRA_FWMASK in attrs else None), protocol


def rule_priority(head: bytes, attrs: Attrs) -> int:
    return u32(attrs[FRA_PRIORITY]) if FRA_PRIORITY in attrs else 0


def rule_protocol(attrs: Attrs) -> int:
    return attrs[FRA_PROTOCOL][0] if FRA_PROTOCOL in attrs else 0


def route_table(head: bytes, attrs: Attrs) -> int:
    return u32(attrs[RTA_TABLE]) if RTA_TABLE in attrs else RTMSG.unpack(head)[4]


def decode_routes(head: bytes, attrs: Attrs) -> tuple[list[RouteSpec], int]:
    """A route message as (one RouteSpec per next hop, its protocol)."""
    family, dst_len, _src_len, _tos, _table, protocol, _scope, rtype, _flags = RTMSG.unpack(head)
    kind = _RTN_KINDS.get(rtype, str(rtype))
    dst = f"{address(family, attrs[RTA_DST])}/{dst_len}" if RTA_DST in attrs else "default"
    table = route_table(head, attrs)
    metric = u32(attrs[RTA_PRIORITY]) if RTA_PRIORITY in attrs else 0
    metric = metric or default_metric(family)
    if RTA_MULTIPATH in attrs and kind == KIND_UNICAST:
        hops = [(index, address(family, hop[RTA_GATEWAY]) if RTA_GATEWAY in hop else None)
                for index, hop in next_hops(attrs[RTA_MULTIPATH])]
    else:
        gateway = address(family, attrs[RTA_GATEWAY]) if RTA_GATEWAY in attrs else None
        # the kernel reports lo as the device of an IPv6 throw route
        hops = [(u32(attrs[RTA_OIF]) if RTA_OIF in attrs and kind == KIND_UNICAST else 0, gateway)]
    return [RouteSpec(family, table, dst, gateway, oif, metric, kind) for oif, gateway in hops], protocol


class Requests:
    """One NETLINK_ROUTE socket for pvdd's requests and dumps."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.settimeout(REPLY_TIMEOUT)  # a reply that never comes raises, it does not hang pvdd
        for option in (NETLINK_GET_STRICT_CHK, NETLINK_CAP_ACK):
            try:  # strict: the kernel filters route dumps; cap_ack: errors without the request
                self.sock.setsockopt(SOL_NETLINK, option, 1)
            except OSError:
                pass
        self.sock.bind((0, 0))
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def _next(self) -> int:
        self.seq = (self.seq + 1) & 0xFFFFFFFF or 1
        return self.seq

    def apply(self, changes: Iterable[tuple[str, RuleSpec | RouteSpec]]) -> list[int]:
        """Send each ("add" or "del", spec) in order; the errno of each (0: done)."""
        items = list(changes)
        results = [0] * len(items)
        batch: list[tuple[int, int]] = []  # (seq, position)
        data = bytearray()
        for position, (action, spec) in enumerate(items):
            if isinstance(spec, RuleSpec):
                kind = RTM_NEWRULE if action == "add" else RTM_DELRULE
                header, attrs = encode_rule(spec)
            else:
                kind = RTM_NEWROUTE if action == "add" else RTM_DELROUTE
                header, attrs = encode_route(spec)
            flags = NLM_F_REQUEST | NLM_F_ACK | (NLM_F_CREATE | NLM_F_EXCL if action == "add" else 0)
            seq = self._next()
            body = header + attrs
            message = NLMSG_HDR.pack(NLMSG_HDR.size + len(body), kind, flags, seq, 0) + body
            if data and len(data) + len(message) > BATCH_BYTES:
                self._send(bytes(data), batch, results)
                data, batch = bytearray(), []
            data += message
            batch.append((seq, position))
        if data:
            self._send(bytes(data), batch, results)
        return results

    def _send(self, data: bytes, batch: list[tuple[int, int]], results: list[int]) -> None:
        self.sock.send(data)
        waiting = dict(batch)
        while waiting:
            for kind, _flags, seq, body in self._recv():
                if kind == NLMSG_ERROR and seq in waiting:
                    code = -struct.unpack_from("=i", body)[0] if len(body) >= 4 else errno.EIO
                    results[waiting.pop(seq)] = code

    def _recv(self) -> Iterator[tuple[int, int, int, bytes]]:
        data = self.sock.recv(1 << 20)
        offset = 0
        while offset + NLMSG_HDR.size <= len(data):
            length, kind, flags, seq, _pid = NLMSG_HDR.unpack_from(data, offset)
            if length < NLMSG_HDR.size or offset + length > len(data):
                return
            yield kind, flags, seq, data[offset + NLMSG_HDR.size:offset + length]
            offset += (length + 3) & ~3

    def _dump(self, kind: int, header: bytes, attrs: bytes = b"") -> list[bytes]:
        """The bodies of one dump (started again when the kernel says it was interrupted)."""
        for _attempt in range(5):
            seq = self._next()
            body = header + attrs
            self.sock.send(NLMSG_HDR.pack(NLMSG_HDR.size + len(body), kind, NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + body)
            found: list[bytes] = []
            interrupted = False
            done = False
            while not done:
                for mtype, flags, mseq, mbody in self._recv():
                    if mseq != seq:
                        continue
                    interrupted |= bool(flags & NLM_F_DUMP_INTR)
                    if mtype == NLMSG_DONE:
                        done = True
                        break
                    if mtype == NLMSG_ERROR:
                        code = -struct.unpack_from("=i", mbody)[0] if len(mbody) >= 4 else errno.EIO
                        if code:
                            raise OSError(code, f"rtnetlink dump: {errno.errorcode.get(code, code)}")
                        done = True
                        break
                    found.append(mbody)
            if not interrupted:
                return found
        return found

    def link_states(self) -> dict[int, tuple[bool, bool]]:
        """ifindex -> (up, lower up) of every link."""
        states: dict[int, tuple[bool, bool]] = {}
        for body in self._dump(RTM_GETLINK, struct.pack("=BxHiII", 0, 0, 0, 0, 0)):
            if len(body) >= 16:
                _family, _type, index, flags, _change = struct.unpack_from("=BxHiII", body)
                states[index] = (bool(flags & _IFF_UP), bool(flags & _IFF_LOWER_UP))
        return states

    def dump_rules(self, family: int) -> list[tuple[bytes, Attrs]]:
        """Every rule of ``family``: (fixed header, attributes)."""
        header = FIB_RULE_HDR.pack(family, 0, 0, 0, 0, 0, 0, 0, 0)
        return [parts for body in self._dump(RTM_GETRULE, header)
                if (parts := split(body, FIB_RULE_HDR.size)) is not None]

    def dump_routes(self, family: int, protocol: int = 0) -> list[tuple[bytes, Attrs]]:
        """Every route of ``family`` in every table (only ``protocol``'s where the kernel
        filters: Linux 4.20+; the caller checks the protocol anyway)."""
        header = RTMSG.pack(family, 0, 0, 0, 0, protocol, 0, 0, 0)
        extra = _attr(RTA_TABLE, _u32(0))  # every table (strict dumps read the header's otherwise)
        try:
            bodies = self._dump(RTM_GETROUTE, header, extra)
        except OSError:  # an older kernel refuses a filter it does not know
            bodies = self._dump(RTM_GETROUTE, RTMSG.pack(family, 0, 0, 0, 0, 0, 0, 0, 0))
        return [parts for body in bodies if (parts := split(body, RTMSG.size)) is not None]


@dataclass
class Seen:
    """What :meth:`Notifications.drain` read."""

    rules: list[tuple[bool, RuleSpec]]     # (added, rule) of pvdd's rules, in order
    routes: list[tuple[bool, RouteSpec]]   # (added, route) of pvdd's routes, in order
    routes_stale: set[int]                 # families whose routes the kernel may have flushed silently
    lost: bool                             # the socket overran: messages are missing


class Notifications:
    """A socket subscribed to rule, route, link and IPv4 address notifications: what changed
    pvdd's rules and routes (its own changes included), and when the kernel may have removed
    routes without saying so (IPv4 flushes a link's routes when it goes down or loses its
    last address; a link that goes away takes its routes; a route replaced in a table other
    than main and local takes the one it replaces)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
                                  socket.NETLINK_ROUTE)
        try:  # beyond net.core.rmem_max (root): an overrun costs a full dump
            self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, NOTIFY_RCVBUF)
        except OSError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, NOTIFY_RCVBUF)
        self.sock.bind((0, 0))
        for group in (RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV4_RULE,
                      RTNLGRP_IPV6_ROUTE, RTNLGRP_IPV6_RULE):
            self.sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group)
        self.links: dict[int, tuple[bool, bool]] = {}  # ifindex -> (up, lower up) as last told

    def close(self) -> None:
        self.sock.close()

    def drain(self) -> Seen:
        """Everything queued, in order."""
        seen = Seen([], [], set(), False)
        while True:
            try:
                data = self.sock.recv(1 << 20)
            except BlockingIOError:
                return seen
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    seen.lost = True
                    continue
                raise
            for kind, flags, body in messages(data):
                self._take(kind, flags, body, seen)

    def _take(self, kind: int, flags: int, body: bytes, seen: Seen) -> None:
        if kind in (RTM_NEWRULE, RTM_DELRULE):
            parts = split(body, FIB_RULE_HDR.size)
            if parts is not None:
                rule, protocol = decode_rule(*parts)
                if rule is not None and protocol == RTPROT_PVDD:
                    seen.rules.append((kind == RTM_NEWRULE, rule))
        elif kind in (RTM_NEWROUTE, RTM_DELROUTE):
            parts = split(body, RTMSG.size)
            if parts is not None:
                routes, protocol = decode_routes(*parts)
                if protocol == RTPROT_PVDD:
                    seen.routes += [(kind == RTM_NEWROUTE, route) for route in routes]
                if kind == RTM_NEWROUTE and flags & NLM_F_REPLACE and \
                        route_table(*parts) not in (RT_TABLE_MAIN, RT_TABLE_LOCAL):
                    seen.routes_stale.add(parts[0][0])  # what it replaced went without a message
        elif kind == RTM_DELADDR:
            if body and body[0] == socket.AF_INET:
                seen.routes_stale.add(int(socket.AF_INET))
        elif kind in (RTM_NEWLINK, RTM_DELLINK):
            parts = split(body, 16)
            if parts is None:
                return
            family, _type, index, flags, _change = struct.unpack("=BxHiII", parts[0])
            if family != socket.AF_UNSPEC:
                return
            state = (bool(flags & _IFF_UP), bool(flags & _IFF_LOWER_UP))
            if kind == RTM_DELLINK or self.links.get(index) != state:  # a new link too: not known before
                seen.routes_stale.update(FAMILIES)
            if kind == RTM_DELLINK:
                self.links.pop(index, None)
            else:
                self.links[index] = state
