"""Strict mode's cgroup programs, written from one PvD's :class:`Policy` (docs/strict.md).

One program per hook; each takes its addresses, mark and ports as immediates, so a PvD that
changes gets new programs (pvdrun/strict/holder.py replaces them).  What each one does:

* ``sock_create``: every IPv4/IPv6 socket gets the PvD's mark (pvdd's table, then
  ``fwmark M unreachable``: never the main table), or, without a mark (no pvdd), the PvD's
  interface; a PvD that went away: no socket at all.
* ``bind4``/``bind6``: only the wildcard, loopback, link-local or the PvD's own addresses.
* ``connect4|6``/``sendmsg4|6``: DNS (port 53) to a server that is not the PvD's is sent to
  the PvD's (pvdd's forwarder, or without pvdd a PvD server of the socket's family); the
  original destination is kept per socket (by socket cookie) so that ``recvmsg``/``getpeername``
  report it; a PvD sharing its interface gets its source address set; without a mark, an
  IPv4 loopback destination is refused (the kernel would send it out of the bound device).
* ``recvmsg4|6``/``getpeername4|6``: the reverse of the DNS rewrite.
* ``setsockopt``: ``SO_MARK``, ``SO_BINDTOIFINDEX`` only to the PvD's own values;
  ``SO_BINDTODEVICE`` refused: not even root moves a socket out of the PvD.

Refusals set the errno with ``bpf_set_retval``: ENETUNREACH for a destination, EADDRNOTAVAIL
for a bind, EPERM for a socket option.
"""
from __future__ import annotations

import errno
import ipaddress
import socket
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pvdrun.strict import bpf
from pvdrun.strict.asm import DW, JEQ, JGT, JNE, R0, R1, R2, R3, R4, R5, R6, R7, R10, W, Program

# helpers (enum bpf_func_id)
MAP_LOOKUP_ELEM, MAP_UPDATE_ELEM, GET_SOCKET_COOKIE, SETSOCKOPT, BIND, SET_RETVAL = 1, 2, 46, 49, 64, 187
# struct bpf_sock
SK_BOUND_DEV_IF, SK_MARK = 0, 16
# struct bpf_sock_addr
USER_IP4, USER_IP6, USER_PORT, MSG_SRC_IP4, MSG_SRC_IP6 = 4, 8, 24, 40, 44
# struct bpf_sockopt
OPTVAL, OPTVAL_END, LEVEL, OPTNAME = 8, 16, 24, 28
SOL_SOCKET, SO_BINDTODEVICE, SO_MARK, SO_BINDTOIFINDEX = 1, 25, 36, 62

DNS_PORT = 53
#: Entries of the per-PvD map that remembers the destination a DNS socket asked for.
REVNAT_ENTRIES = 4096
# stack layout: key (cookie) at -8, value (ip6 words, port) at -32..-12, a sockaddr at -64,
# an option value at -72
KEY, VALUE, SOCKADDR, OPTION = -8, -32, -64, -72
VALUE_SIZE = 20


@dataclass(frozen=True)
class Policy:
    """What the programs of one PvD's cgroup enforce (built by :func:`pvdrun.strict.holder.policy_for`)."""

    mark: int = 0
    ifindex: int = 0  # the socket's device, only without a mark
    ifindexes: tuple[int, ...] = ()  # SO_BINDTOIFINDEX may name these
    own4: tuple[str, ...] = ()  # bind may name these
    own6: tuple[str, ...] = ()
    source4: str | None = None  # set as the source (a PvD sharing its interface)
    source6: str | None = None
    servers4: tuple[str, ...] = ()  # port 53 to these is left alone
    servers6: tuple[str, ...] = ()
    dns4: tuple[str, int] | None = None  # where other port-53 traffic goes (None: refused)
    dns6: tuple[str, int] | None = None
    deny: bool = False  # the PvD went away: no socket, no send


def word4(address: str) -> int:
    """An IPv4 address as the u32 the kernel's context holds (network order, read little-endian)."""
    return struct.unpack("<I", socket.inet_pton(socket.AF_INET, address))[0]


def words6(address: str) -> tuple[int, int, int, int]:
    return struct.unpack("<IIII", socket.inet_pton(socket.AF_INET6, address))  # type: ignore[return-value]


def port_word(port: int) -> int:
    return struct.unpack("<H", struct.pack(">H", port))[0]


def mapped6(address: str) -> str:
    """``192.0.2.1`` -> ``::ffff:192.0.2.1``"""
    return str(ipaddress.IPv6Address(b"\0" * 10 + b"\xff\xff" + socket.inet_pton(socket.AF_INET, address)))


class _Writer:
    """A program and the labels it has handed out."""

    def __init__(self) -> None:
        self.p = Program()
        self.count = 0

    def new(self, stem: str) -> str:
        self.count += 1
        return f"{stem}{self.count}"

    def refuse(self, err: int) -> None:
        self.p.mov_imm(R1, -err).call(SET_RETVAL).ret(0)

    def match4(self, reg: int, addresses: Sequence[str], hit: str) -> None:
        for address in addresses:
            self.p.jump32_if(JEQ, reg, word4(address), hit)

    def load6(self, off: int) -> None:
        """r2..r5 = the four words of the IPv6 address at ctx + off."""
        for index, reg in enumerate((R2, R3, R4, R5)):
            self.p.load(W, reg, R6, off + 4 * index)

    def match6(self, addresses: Sequence[str], hit: str) -> None:
        """Go to ``hit`` when r2..r5 hold one of ``addresses``."""
        for address in addresses:
            miss = self.new("miss")
            for reg, word in zip((R2, R3, R4, R5), words6(address)):
                self.p.jump32_if(JNE, reg, word, miss)
            self.p.jump(hit)
            self.p.label(miss)

    def zero6(self, hit: str) -> None:
        miss = self.new("nonzero")
        for reg in (R2, R3, R4, R5):
            self.p.jump32_if(JNE, reg, 0, miss)
        self.p.jump(hit)
        self.p.label(miss)

    def mapped_v4(self, miss: str) -> None:
        """Fall through when r2..r5 hold an IPv4-mapped address (its IPv4 word in r5)."""
        self.p.jump32_if(JNE, R2, 0, miss).jump32_if(JNE, R3, 0, miss)
        self.p.jump32_if(JNE, R4, 0xFFFF0000, miss)

    def loopback4(self, reg: int, hit: str) -> None:
        self.p.mov(R0, reg).and_imm(R0, 0xFF).jump_if(JEQ, R0, 127, hit)

    def remember(self, family: int) -> None:
        """Store the context's destination under the socket's cookie (r6: the context)."""
        p = self.p
        p.mov(R1, R6).call(GET_SOCKET_COOKIE).store(DW, R10, KEY, R0)
        if family == 4:
            p.load(W, R2, R6, USER_IP4).store(W, R10, VALUE, R2)
            for index in (1, 2, 3):
                p.store_imm(W, R10, VALUE + 4 * index, 0)
        else:
            for index in range(4):
                p.load(W, R2, R6, USER_IP6 + 4 * index).store(W, R10, VALUE + 4 * index, R2)
        p.load(W, R2, R6, USER_PORT).store(W, R10, VALUE + 16, R2)

    def update_map(self, map_fd: int) -> None:
        p = self.p
        p.load_map(R1, map_fd).mov(R2, R10).add_imm(R2, KEY).mov(R3, R10).add_imm(R3, VALUE)
        p.mov_imm(R4, 0).call(MAP_UPDATE_ELEM)

    def set_destination(self, family: int, address: str, port: int) -> None:
        p = self.p
        if family == 4:
            p.mov32_imm(R2, word4(address)).store(W, R6, USER_IP4, R2)
        else:
            for index, word in enumerate(words6(address)):
                p.mov32_imm(R2, word).store(W, R6, USER_IP6 + 4 * index, R2)
        p.mov32_imm(R2, port_word(port)).store(W, R6, USER_PORT, R2)


def _ret_ok(w: _Writer) -> bytes:
    w.p.ret(1)
    return w.p.assemble()


def sock_create(policy: Policy) -> bytes:
    w = _Writer()
    if policy.deny:
        w.refuse(errno.ENETUNREACH)
        return w.p.assemble()
    if policy.mark:
        w.p.mov32_imm(R2, policy.mark).store(W, R1, SK_MARK, R2)
    elif policy.ifindex:
        w.p.mov32_imm(R2, policy.ifindex).store(W, R1, SK_BOUND_DEV_IF, R2)
    return _ret_ok(w)


def bind4(policy: Policy) -> bytes:
    w = _Writer()
    w.p.mov(R6, R1).load(W, R2, R6, USER_IP4)
    w.p.jump32_if(JEQ, R2, 0, "ok")
    w.loopback4(R2, "ok")
    w.match4(R2, policy.own4, "ok")
    w.refuse(errno.EADDRNOTAVAIL)
    w.p.label("ok")
    return _ret_ok(w)


def bind6(policy: Policy) -> bytes:
    w = _Writer()
    w.p.mov(R6, R1)
    w.load6(USER_IP6)
    w.zero6("ok")
    w.match6(["::1"], "ok")
    w.p.mov(R0, R2).and_imm(R0, 0xC0FF).jump_if(JEQ, R0, 0x80FE, "ok")  # fe80::/10
    w.match6(policy.own6, "ok")
    w.mapped_v4("refuse")
    w.p.jump32_if(JEQ, R5, 0, "ok")
    w.loopback4(R5, "ok")
    w.match4(R5, policy.own4, "ok")
    w.p.label("refuse")
    w.refuse(errno.EADDRNOTAVAIL)
    w.p.label("ok")
    return _ret_ok(w)


def _dns_target6(policy: Policy) -> tuple[str, int] | None:
    """Where an IPv6 socket's DNS goes: the IPv6 target, else the IPv4 one, mapped."""
    if policy.dns6 is not None:
        return policy.dns6
    if policy.dns4 is not None:
        return mapped6(policy.dns4[0]), policy.dns4[1]
    return None


def _destination(policy: Policy, family: int, map_fd: int, sending: bool) -> bytes:
    """connect (sending=False) or sendmsg (True), IPv4 (family 4) or IPv6."""
    w = _Writer()
    p = w.p
    p.mov(R6, R1)
    if policy.deny:
        w.refuse(errno.ENETUNREACH)
        return p.assemble()
    servers = policy.servers4 if family == 4 else list(policy.servers6) + [mapped6(s) for s in policy.servers4]
    target = policy.dns4 if family == 4 else _dns_target6(policy)
    if family == 4:
        p.load(W, R7, R6, USER_IP4)
        if not policy.mark:
            w.loopback4(R7, "unreachable")
    elif not policy.mark:
        w.load6(USER_IP6)
        w.mapped_v4("not_mapped")
        w.loopback4(R5, "unreachable")
        p.label("not_mapped")
    p.load(W, R2, R6, USER_PORT).jump32_if(JNE, R2, port_word(DNS_PORT), "source")
    if family == 4:
        w.match4(R7, servers, "source")
    else:
        w.load6(USER_IP6)
        w.match6(servers, "source")
    if target is None:
        p.jump("unreachable")
    else:
        w.remember(family)
        w.update_map(map_fd)
        w.set_destination(family, *target)
        if policy.mark and ipaddress.ip_address(target[0]).is_loopback:
            # pvdd's forwarder is on loopback; a socket bound to the PvD's device (the shim
            # binds those it ties) would send there out of the device.  The mark holds it.
            p.store_imm(W, R10, OPTION, 0).mov(R1, R6).mov_imm(R2, SOL_SOCKET).mov_imm(R3, SO_BINDTOIFINDEX)
            p.mov(R4, R10).add_imm(R4, OPTION).mov_imm(R5, 4).call(SETSOCKOPT)
    p.label("source")
    source = policy.source4 if family == 4 else policy.source6
    if sending:
        _sendmsg_source(w, policy, family, source)
    elif source is not None:
        _bind_source(w, family, source)
    p.ret(1)
    if p.used("unreachable"):
        p.label("unreachable")
        w.refuse(errno.ENETUNREACH)
    return p.assemble()


def _bind_source(w: _Writer, family: int, source: str) -> None:
    """bpf_bind(ctx, the PvD's source, port 0); fails harmlessly on a socket already bound."""
    p = w.p
    if family == 4:
        p.store_imm(W, R10, SOCKADDR, socket.AF_INET).store_imm(W, R10, SOCKADDR + 4, word4(source))
        for off in (8, 12):
            p.store_imm(W, R10, SOCKADDR + off, 0)
        size = 16
    else:
        p.store_imm(W, R10, SOCKADDR, socket.AF_INET6).store_imm(W, R10, SOCKADDR + 4, 0)
        for index, word in enumerate(words6(source)):
            p.store_imm(W, R10, SOCKADDR + 8 + 4 * index, word)
        p.store_imm(W, R10, SOCKADDR + 24, 0)
        size = 28
    p.mov(R1, R6).mov(R2, R10).add_imm(R2, SOCKADDR).mov_imm(R3, size).call(BIND)


def _sendmsg_source(w: _Writer, policy: Policy, family: int, source: str | None) -> None:
    """The datagram's source (the socket's bound address, or one chosen with IP_PKTINFO) must be
    the PvD's, loopback or link-local; without one the PvD's source is set (when it shares its
    link)."""
    p = w.p
    if family == 4:
        p.load(W, R2, R6, MSG_SRC_IP4).jump32_if(JEQ, R2, 0, "no_src")
        w.loopback4(R2, "src_ok")
        w.match4(R2, policy.own4, "src_ok")
        p.jump("unreachable")
        p.label("no_src")
        if source is not None:
            p.mov32_imm(R2, word4(source)).store(W, R6, MSG_SRC_IP4, R2)
    else:
        w.load6(MSG_SRC_IP6)
        w.zero6("no_src")
        w.match6(["::1"] + list(policy.own6) + [mapped6(a) for a in policy.own4], "src_ok")
        p.mov(R0, R2).and_imm(R0, 0xC0FF).jump_if(JEQ, R0, 0x80FE, "src_ok")
        w.mapped_v4("unreachable")
        w.loopback4(R5, "src_ok")
        p.jump("unreachable")
        p.label("no_src")
        if source is not None:
            for index, word in enumerate(words6(source)):
                p.mov32_imm(R2, word).store(W, R6, MSG_SRC_IP6 + 4 * index, R2)
    p.label("src_ok")


def connect4(policy: Policy, map_fd: int) -> bytes:
    return _destination(policy, 4, map_fd, sending=False)


def connect6(policy: Policy, map_fd: int) -> bytes:
    return _destination(policy, 6, map_fd, sending=False)


def sendmsg4(policy: Policy, map_fd: int) -> bytes:
    return _destination(policy, 4, map_fd, sending=True)


def sendmsg6(policy: Policy, map_fd: int) -> bytes:
    return _destination(policy, 6, map_fd, sending=True)


def _restore(policy: Policy, family: int, map_fd: int) -> bytes:
    """recvmsg/getpeername: a DNS reply from the rewritten target reads as from the server the
    program asked."""
    w = _Writer()
    p = w.p
    target = policy.dns4 if family == 4 else _dns_target6(policy)
    if target is None:
        return _ret_ok(w)
    p.mov(R6, R1)
    p.load(W, R2, R6, USER_PORT).jump32_if(JNE, R2, port_word(target[1]), "out")
    if family == 4:
        p.load(W, R2, R6, USER_IP4).jump32_if(JNE, R2, word4(target[0]), "out")
    else:
        w.load6(USER_IP6)
        w.match6([target[0]], "hit")
        p.jump("out")
        p.label("hit")
    p.mov(R1, R6).call(GET_SOCKET_COOKIE).store(DW, R10, KEY, R0)
    p.load_map(R1, map_fd).mov(R2, R10).add_imm(R2, KEY).call(MAP_LOOKUP_ELEM)
    p.jump_if(JEQ, R0, 0, "out")
    if family == 4:
        p.load(W, R2, R0, 0).store(W, R6, USER_IP4, R2)
    else:
        for index in range(4):
            p.load(W, R2, R0, 4 * index).store(W, R6, USER_IP6 + 4 * index, R2)
    p.load(W, R2, R0, 16).store(W, R6, USER_PORT, R2)
    p.label("out")
    return _ret_ok(w)


def restore4(policy: Policy, map_fd: int) -> bytes:
    return _restore(policy, 4, map_fd)


def restore6(policy: Policy, map_fd: int) -> bytes:
    return _restore(policy, 6, map_fd)


def sockopt(policy: Policy) -> bytes:
    w = _Writer()
    p = w.p
    p.mov(R6, R1).load(W, R2, R6, LEVEL).jump32_if(JNE, R2, SOL_SOCKET, "ok")
    p.load(W, R2, R6, OPTNAME)
    p.jump32_if(JEQ, R2, SO_BINDTODEVICE, "refuse")
    p.jump32_if(JEQ, R2, SO_MARK, "mark").jump32_if(JEQ, R2, SO_BINDTOIFINDEX, "ifindex").jump("ok")
    for label, allowed in (("mark", (policy.mark,)), ("ifindex", policy.ifindexes)):
        p.label(label)
        p.load(DW, R2, R6, OPTVAL).load(DW, R3, R6, OPTVAL_END).mov(R4, R2).add_imm(R4, 4)
        p.jump_if_reg(JGT, R4, R3, "refuse")
        p.load(W, R5, R2, 0)
        for value in allowed:
            p.jump32_if(JEQ, R5, value, "ok")
        p.jump("refuse")
    p.label("refuse")
    w.refuse(errno.EPERM)
    p.label("ok")
    return _ret_ok(w)


@dataclass(frozen=True)
class Hook:
    """One program of a PvD's set: where it attaches and how it is written."""

    name: str  # the kernel's program name, NAME_PREFIX + this
    prog_type: int
    attach_type: int
    build: Callable[[Policy, int], bytes]


def _no_map(build: Callable[[Policy], bytes]) -> Callable[[Policy, int], bytes]:
    return lambda policy, _map_fd: build(policy)


#: The programs of every PvD's cgroup, in the order they are attached.
HOOKS: tuple[Hook, ...] = (
    Hook("create", bpf.PROG_TYPE_CGROUP_SOCK, bpf.INET_SOCK_CREATE, _no_map(sock_create)),
    Hook("bind4", bpf.PROG_TYPE_CGROUP_SOCK_ADDR, bpf.INET4_BIND, _no_map(bind4)),
    Hook("bind6", bpf.PROG_TYPE_CGROUP_SOCK_ADDR, bpf.INET6_BIND, _no_map(bind6)),
    Hook("connect4", bpf.PROG_TYPE_CGROUP_SOCK_ADDR, bpf.INET4_CONNECT, connect4),
    Hook("connect6", bpf.PROG_TYPE_CGROUP_SOCK_ADDR, bpf.INET6_CONNECT, connect6),
    Hook("sendmsg4", bpf.PROG_TYPE_CGROUP_SOCK_ADDR, bpf.UDP4_SENDMSG, sendmsg4),
    Hook("sendmsg6", bpf.PROG_TYPE_CGROUP_SOCK_ADDR, bpf.UDP6_SENDMSG, sendmsg6),
    Hook("recvmsg4", bpf.PROG_TYPE_CGROUP_SOCK_ADDR, bpf.UDP4_RECVMSG, restore4),
    Hook("recvmsg6", bpf.PROG_TYPE_CGROUP_SOCK_ADDR, bpf.UDP6_RECVMSG, restore6),
    Hook("peer4", bpf.PROG_TYPE_CGROUP_SOCK_ADDR, bpf.INET4_GETPEERNAME, restore4),
    Hook("peer6", bpf.PROG_TYPE_CGROUP_SOCK_ADDR, bpf.INET6_GETPEERNAME, restore6),
    Hook("sockopt", bpf.PROG_TYPE_CGROUP_SOCKOPT, bpf.SETSOCKOPT, _no_map(sockopt)),
)


def _host_resolvers(_policy: Policy, _map_fd: int) -> bytes:
    from pvdrun.shim.binding import host_resolver_sockets
    from pvdrun.strict.unix import unix_connect

    return unix_connect(host_resolver_sockets())


#: Where the kernel has ``cgroup/connect_unix`` (Linux 6.7): connect() to the host's resolver
#: daemons' sockets is refused (pvdrun/strict/unix.py).
UNIX_HOOK = Hook("unix", bpf.PROG_TYPE_CGROUP_SOCK_ADDR, 49, _host_resolvers)


def hooks() -> tuple[Hook, ...]:
    """The programs this kernel takes."""
    from pvdrun.strict.unix import UNIX_CONNECT, available

    assert UNIX_HOOK.attach_type == UNIX_CONNECT
    return HOOKS + (UNIX_HOOK,) if available() else HOOKS
