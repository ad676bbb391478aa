"""Sockets for DNS queries that can only leave through the PvD (R25).

Each socket is bound to the PvD's interface (SO_BINDTODEVICE) when the PvD
has exactly one (or the server's zone names one), to one of the PvD's own
source addresses of the server's family, and carries the PvD's mark when it
has one (set directly as root, else by pvdd).  A server of a family the PvD
has no address of is not usable: asking it would need another PvD's source.
"""
from __future__ import annotations

import errno
import ipaddress
import select
import socket

from pvdrun.daemon.protocol import Client, DaemonError, DaemonUnavailable
from pvdrun.model import Pvd
from pvdrun.resolve.errors import NO_SERVER, ResolveError

DNS_PORT = 53


def _split_zone(address: str) -> tuple[str, str | None]:
    if "%" in address:
        host, zone = address.split("%", 1)
        return host, zone
    return address, None


def _is_link_local(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return address.version == 6 and address.is_link_local


def pick_source(pvd: Pvd, server: str) -> str | None:
    """The PvD address to send from towards ``server``, or None."""
    host, _ = _split_zone(server)
    target = ipaddress.ip_address(host)
    fallback = None
    for candidate in pvd.ip_addresses():
        addr = ipaddress.ip_address(_split_zone(candidate)[0])
        if addr.version != target.version:
            continue
        if _is_link_local(addr) == _is_link_local(target):
            return candidate
        if fallback is None and not _is_link_local(target):
            fallback = candidate
    return fallback


def _device_for(pvd: Pvd, server: str) -> str | None:
    _, zone = _split_zone(server)
    if zone:
        if zone.isdigit():
            for name, index in zip(pvd.interfaces, pvd.ifindexes):
                if index == int(zone):
                    return name
            return socket.if_indextoname(int(zone))
        return zone
    return pvd.interfaces[0] if len(pvd.interfaces) == 1 else None


def server_address(server: str) -> tuple:
    """The sockaddr tuple of ``server`` port 53 (IPv6 zones become scope ids)."""
    host, zone = _split_zone(server)
    if ipaddress.ip_address(host).version == 4:
        return (host, DNS_PORT)
    scope_id = 0
    if zone:
        scope_id = int(zone) if zone.isdigit() else socket.if_nametoindex(zone)
    return (host, DNS_PORT, 0, scope_id)


def _pvdd_mark(sock: socket.socket, pvd: Pvd) -> str | None:
    """Ask pvdd to set the PvD's mark on ``sock``; None on success, else pvdd's reason."""
    try:
        with Client(timeout=5) as client:
            client.mark(sock, pvd.handle)
    except DaemonUnavailable as exc:
        return str(exc)
    except DaemonError as exc:
        return f"pvdd: {exc.message or exc.code or 'refused'}"
    return None


def apply_mark(sock: socket.socket, pvd: Pvd) -> None:
    """Give ``sock`` the PvD's mark (its routing table is reached through it): directly when we
    may (CAP_NET_ADMIN), else through pvdd, as the shim does.  Neither: ResolveError(NO_SERVER),
    the PvD's DNS cannot be reached correctly, so it is not used (fail closed)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, pvd.mark)
        return
    except PermissionError:
        pass
    why = _pvdd_mark(sock, pvd)
    if why is not None:
        raise ResolveError(NO_SERVER, f"PvD {pvd.pvd_id}: cannot mark a DNS socket (not root; {why})")


def scoped_socket(pvd: Pvd, server: str, kind: int = socket.SOCK_DGRAM) -> socket.socket:
    """A non-blocking socket bound to the PvD's device and source for ``server``.

    Raises ResolveError(NO_SERVER) when the PvD has no source address of the
    server's family, OSError when binding fails.
    """
    source = pick_source(pvd, server)
    if source is None:
        raise ResolveError(NO_SERVER, f"PvD {pvd.pvd_id} has no address to reach DNS server {server} from")
    host, _ = _split_zone(server)
    family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    sock = socket.socket(family, kind)
    try:
        sock.setblocking(False)
        device = _device_for(pvd, server)
        if device:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, device.encode() + b"\0")
        if pvd.mark:
            apply_mark(sock, pvd)
        src_host, src_zone = _split_zone(source)
        if family == socket.AF_INET6:
            scope_id = 0
            if src_zone:
                scope_id = int(src_zone) if src_zone.isdigit() else socket.if_nametoindex(src_zone)
            elif ipaddress.ip_address(src_host).is_link_local and device:
                scope_id = socket.if_nametoindex(device)
            sock.bind((src_host, 0, 0, scope_id))
        else:
            sock.bind((src_host, 0))
        return sock
    except BaseException:
        sock.close()
        raise


def connected_tcp_socket(pvd: Pvd, server: str, timeout: float) -> socket.socket:
    """A scoped TCP socket connected to ``server`` port 53 (dnspython's tcp(sock=) wants one)."""
    sock = scoped_socket(pvd, server, socket.SOCK_STREAM)
    try:
        rc = sock.connect_ex(server_address(server))
        if rc not in (0, errno.EINPROGRESS):
            raise OSError(rc, f"connect to {server}: {errno.errorcode.get(rc, rc)}")
        if rc == errno.EINPROGRESS:
            _, writable, _ = select.select([], [sock], [], timeout)
            if not writable:
                raise TimeoutError(f"TCP connect to {server} timed out")
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                raise OSError(err, f"connect to {server}: {errno.errorcode.get(err, err)}")
        return sock
    except BaseException:
        sock.close()
        raise
