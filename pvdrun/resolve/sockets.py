"""Sockets for DNS queries that can only leave through the PvD (R25).

How a socket is tied to its PvD (device, source address, mark) is the shim's rule, written
once in C (``shim/core/tie.c``) and reached through the C API's ``pvd_tie_socket``
(:func:`pvdrun.shim.binding.tie_socket`): the sockets of the Python resolver and those of
the shim's own resolver are tied by the same code, with or without LD_PRELOAD.  Which servers
a PvD can use at all is the shim's rule too (``pvd_dns_server_usable``,
:func:`pvdrun.shim.binding.dns_server_usable`).  Here: their socket addresses, and the
sockets themselves.
"""
from __future__ import annotations

import errno
import ipaddress
import select
import socket

from pvdrun.model import Pvd, split_zone
from pvdrun.resolve.errors import NO_SERVER, ResolveError

DNS_PORT = 53


def usable_servers(pvd: Pvd) -> list[str]:
    """The PvD's DNS servers it can ask, in order, by the shim's rule (``pvd_dns_server_usable``):
    a link-local server only on one of the PvD's links, any other only when the PvD holds an
    address of its family (asking it would need another PvD's source).  Raises
    ResolveError(NO_SERVER) when the PvD has no scope line."""
    if not pvd.dns_servers:
        return []
    scope_line = _scope_line(pvd)
    from pvdrun.shim import binding  # cffi and pvd.h (~60 ms): only once a server is asked

    return [server for server in pvd.dns_servers if binding.dns_server_usable(scope_line, server)]


def _scope_line(pvd: Pvd) -> str:
    try:
        return pvd.to_scope()
    except ValueError as exc:
        raise ResolveError(NO_SERVER, str(exc)) from None


def server_address(server: str) -> tuple:
    """The sockaddr tuple of ``server`` port 53 (IPv6 zones become scope ids)."""
    host, zone = split_zone(server)
    if ipaddress.ip_address(host).version == 4:
        return (host, DNS_PORT)
    scope_id = 0
    if zone:
        scope_id = int(zone) if zone.isdigit() else socket.if_nametoindex(zone)
    return (host, DNS_PORT, 0, scope_id)


def scoped_socket(pvd: Pvd, server: str, kind: int = socket.SOCK_DGRAM) -> socket.socket:
    """A non-blocking socket tied to the PvD for ``server`` (``pvd_tie_socket``).

    Raises ResolveError(NO_SERVER) when the PvD has no source address of the server's family
    or its mark cannot be had (with pvdd's reason: the PvD's DNS is then not used, fail
    closed), OSError when another step of the tie fails.
    """
    scope_line = _scope_line(pvd)
    from pvdrun.shim import binding  # cffi and pvd.h (~60 ms): only once a server is asked

    if not binding.dns_server_usable(scope_line, server):
        raise ResolveError(NO_SERVER, f"PvD {pvd.pvd_id} has no address to reach DNS server {server} from")
    destination = server_address(server)
    sock = socket.socket(socket.AF_INET6 if len(destination) == 4 else socket.AF_INET, kind)
    try:
        sock.setblocking(False)
        binding.tie_socket(sock, scope_line, destination)
        return sock
    except binding.TieRefused as exc:
        sock.close()
        if exc.reason:
            raise ResolveError(NO_SERVER, f"PvD {pvd.pvd_id}: cannot mark a DNS socket ({exc.reason})") from None
        raise
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
