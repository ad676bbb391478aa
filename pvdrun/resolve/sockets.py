"""Sockets for DNS queries that can only leave through the PvD (R25).

How a socket is tied to its PvD (device, source address, mark) is the shim's rule, written
once in C (``shim/core/tie.c``) and reached through the C API's ``pvd_tie_socket``
(:func:`pvdrun.shim.binding.tie_socket`): the sockets of the Python resolver and those of
the shim's own resolver are tied by the same code, with or without LD_PRELOAD.  Here: which
servers a PvD can use at all, their socket addresses, and the sockets themselves.
"""
from __future__ import annotations

import errno
import ipaddress
import select
import socket

from pvdrun.model import Pvd, split_zone, zone_interface
from pvdrun.resolve.errors import NO_SERVER, ResolveError

DNS_PORT = 53


def _is_link_local(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return address.version == 6 and address.is_link_local


def pick_source(pvd: Pvd, server: str) -> str | None:
    """The PvD address to send from towards ``server``, or None: a server the PvD has no such
    address for is not used at all (asking it would need another PvD's source)."""
    host, zone = split_zone(server)
    target = ipaddress.ip_address(host)
    if _is_link_local(target):
        return _link_local_source(pvd, zone)
    fallback = None
    for candidate in pvd.ip_addresses():
        addr = ipaddress.ip_address(split_zone(candidate)[0])
        if addr.version != target.version:
            continue
        if _is_link_local(addr) == _is_link_local(target):
            return candidate
        if fallback is None and not _is_link_local(target):
            fallback = candidate
    return fallback


def _link_local_source(pvd: Pvd, zone: str | None) -> str | None:
    """The source towards a link-local server: it is reached on its own link only (its zone,
    or the PvD's only interface), which must be the PvD's, from that link's link-local address
    (one the PvD lists, else the link's own)."""
    if zone is not None:
        link = zone_interface(zone, pvd.interfaces, pvd.ifindexes)
    else:
        link = pvd.interfaces[0] if len(pvd.interfaces) == 1 else None
    if link is None:
        return None
    for candidate in pvd.ip_addresses():
        host, own = split_zone(candidate)
        if _is_link_local(ipaddress.ip_address(host)) and \
                (own is None or zone_interface(own, pvd.interfaces, pvd.ifindexes) == link):
            return candidate
    return _kernel_link_local(link)


def _kernel_link_local(ifname: str) -> str | None:
    """The usable (not tentative, not DAD-failed) link-local address of ``ifname`` in this
    network namespace, ``fe80::x%ifname``, or None."""
    try:
        with open("/proc/net/if_inet6", encoding="ascii") as handle:
            for line in handle:
                fields = line.split()
                if len(fields) == 6 and fields[5] == ifname and fields[3] == "20" \
                        and not int(fields[4], 16) & 0x48:  # IFA_F_TENTATIVE | IFA_F_DADFAILED
                    return f"{ipaddress.IPv6Address(bytes.fromhex(fields[0]))}%{ifname}"
    except OSError:
        pass
    return None


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
    if pick_source(pvd, server) is None:
        raise ResolveError(NO_SERVER, f"PvD {pvd.pvd_id} has no address to reach DNS server {server} from")
    try:
        scope_line = pvd.to_scope()
    except ValueError as exc:
        raise ResolveError(NO_SERVER, str(exc)) from None
    from pvdrun.shim import binding  # cffi and pvd.h (~60 ms): only once a server is asked

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
