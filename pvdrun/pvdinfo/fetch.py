"""Fetch one PvD's Additional Information inside that PvD (RFC 8801 section 4.1).

Everything the fetch sends leaves through the PvD: the DNS queries for the PvD ID go only to
the PvD's DNS servers (:class:`pvdrun.resolve.resolver.PvdResolver`), and the HTTPS connection
to ``https://<PvD ID>/.well-known/pvd`` uses a socket tied to the PvD by the shim's own rule
(``pvd_tie_socket``: bound to its interface, marked with its mark, bound to one of its source
addresses), the same rule that ties the resolver's sockets.  TLS is verified for the PvD ID as
server name, against ``ca_file`` or the system trust store.  One GET, HTTP/1.1, no redirect
followed, at most :data:`MAX_BYTES` of body, then :func:`pvdrun.pvdinfo.validate.validate`.

:func:`fetch` blocks (run it from a worker thread); ``timeout`` bounds the whole fetch.
"""
from __future__ import annotations

import http.client
import io
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable

from pvdrun.model import MAX_ADDRS, Pvd, split_zone
from pvdrun.pvdinfo.errors import FetchError, InfoError
from pvdrun.pvdinfo.model import AdditionalInfo
from pvdrun.pvdinfo.validate import MAX_BYTES, MEDIA_TYPE, parse_expires, validate

__all__ = ["HTTPS_PORT", "MAX_BYTES", "WELL_KNOWN_PATH", "fetch", "fetch_pvd"]

HTTPS_PORT = 443
WELL_KNOWN_PATH = "/.well-known/pvd"
#: The handle of the scope line a fetch ties its sockets with: a PvD of no table, so no slot.
FETCH_HANDLE = 0x7FFFFFFE
_READ_SIZE = 16 * 1024


def _one_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())[:300]


class _Deadline:
    def __init__(self, timeout: float) -> None:
        self.end = time.monotonic() + timeout

    def left(self, what: str) -> float:
        remaining = self.end - time.monotonic()
        if remaining <= 0:
            raise FetchError(f"timed out ({what})")
        return remaining


def scope_pvd(pvd_id: str, interface: str, source_addresses: list[str], dns_servers: list[str],
              mark: int) -> Pvd:
    """A :class:`Pvd` holding just what a fetch needs, for the resolver and the socket tie."""
    try:
        index = socket.if_nametoindex(interface)
    except OSError:
        raise FetchError(f"no interface {interface!r}") from None
    addresses = []
    for address in source_addresses:
        host, _zone = split_zone(address)
        try:
            version = ipaddress.ip_address(host).version
        except ValueError:
            raise FetchError(f"not a source address: {address!r}") from None
        addresses.append(f"{address}/{128 if version == 6 else 32}")
    # the shim's tables hold MAX_ADDRS addresses: the first ones (any of them is the PvD's own)
    pvd = Pvd(pvd_id=pvd_id, handle=FETCH_HANDLE, explicit=True, interfaces=[interface], ifindexes=[index],
              addresses=addresses[:MAX_ADDRS], dns_servers=list(dns_servers), mark=mark)
    try:
        pvd.to_scope()
    except ValueError as exc:
        raise FetchError(f"cannot scope a fetch for PvD {pvd_id}: {_one_line(exc)}") from None
    return pvd


def resolve_addresses(pvd: Pvd, deadline: _Deadline) -> list[str]:
    """The PvD ID's addresses (AAAA, then A, RFC 6724 order), asked of the PvD's servers only."""
    from pvdrun.resolve.errors import ResolveError
    from pvdrun.resolve.resolver import PvdResolver, ResolverOptions

    resolver = PvdResolver(pvd, ResolverOptions(timeout=deadline.left("DNS"), attempts=1))
    try:
        addresses = resolver.addresses(pvd.pvd_id)
    except ResolveError as exc:
        raise FetchError(f"cannot resolve {pvd.pvd_id} in its PvD: {_one_line(exc)}") from None
    except OSError as exc:
        raise FetchError(f"cannot resolve {pvd.pvd_id} in its PvD: {_one_line(exc)}") from None
    if not addresses:
        raise FetchError(f"{pvd.pvd_id} has no address in its PvD")
    return addresses


def _destination(address: str, ifindex: int) -> tuple:
    ip = ipaddress.ip_address(address)
    if ip.version == 4:
        return (address, HTTPS_PORT)
    return (address, HTTPS_PORT, 0, ifindex if ip.is_link_local else 0)


def _bind_plain(sock: socket.socket, pvd: Pvd) -> None:
    """Device and mark only (a PvD given no source address: the kernel picks one on the device)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, pvd.interfaces[0].encode())
    if pvd.mark:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, pvd.mark)


def connect(pvd: Pvd, addresses: list[str], deadline: _Deadline) -> socket.socket:
    """A TCP socket tied to the PvD and connected to port 443 of the first address that answers."""
    errors = []
    for address in addresses:
        destination = _destination(address, pvd.ifindexes[0])
        family = socket.AF_INET6 if len(destination) == 4 else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            if pvd.addresses:
                from pvdrun.shim import binding  # cffi: only when a fetch runs

                binding.tie_socket(sock, pvd.to_scope(), destination)
            else:
                _bind_plain(sock, pvd)
            sock.settimeout(deadline.left(f"connect to [{address}]:443"))
            sock.connect(destination)
            return sock
        except FetchError:
            sock.close()
            raise
        except OSError as exc:
            sock.close()
            errors.append(f"[{address}]:443: {_one_line(exc)}")
    raise FetchError(f"cannot connect to {pvd.pvd_id} in its PvD: " + "; ".join(errors))


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """A verifying client context: ``ca_file`` as the only trust anchors, else the system's."""
    try:
        context = ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()
    except (OSError, ssl.SSLError) as exc:
        raise FetchError(f"cannot load CA file {ca_file}: {_one_line(exc)}") from None
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def request(pvd_id: str) -> bytes:
    """The GET the fetch sends."""
    return (f"GET {WELL_KNOWN_PATH} HTTP/1.1\r\nHost: {pvd_id}\r\nAccept: {MEDIA_TYPE}\r\n"
            "Accept-Encoding: identity\r\nUser-Agent: pvdrun-pvdinfo\r\nConnection: close\r\n\r\n").encode("ascii")


class _DeadlineReader(io.RawIOBase):
    """The TLS socket as a raw stream whose every receive waits at most the time left: the
    header lines and the body together are bounded by the deadline, however slowly they come."""

    def __init__(self, tls: ssl.SSLSocket, deadline: _Deadline) -> None:
        super().__init__()
        self._tls, self._deadline = tls, deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def, override]
        self._tls.settimeout(self._deadline.left("reading the answer"))
        return self._tls.recv_into(buffer)


class _DeadlineSocket:
    """What http.client.HTTPResponse needs of a socket: makefile("rb")."""

    def __init__(self, tls: ssl.SSLSocket, deadline: _Deadline) -> None:
        self._tls, self._deadline = tls, deadline

    def makefile(self, mode: str, *args: object, **kwargs: object) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self._tls, self._deadline))


def exchange(tls: ssl.SSLSocket, pvd_id: str, deadline: _Deadline) -> tuple[bytes, str | None]:
    """Send the GET, read the answer: (body, Content-Type).  FetchError unless 200 and small."""
    tls.settimeout(deadline.left("sending the request"))
    tls.sendall(request(pvd_id))
    response = http.client.HTTPResponse(_DeadlineSocket(tls, deadline), method="GET")  # type: ignore[arg-type]
    try:
        response.begin()
        if 300 <= response.status < 400:
            where = response.getheader("Location", "")
            raise FetchError(f"https://{pvd_id}{WELL_KNOWN_PATH} answered {response.status} "
                             f"(a redirect{' to ' + where if where else ''}; not followed)"[:300])
        if response.status != 200:
            raise FetchError(f"https://{pvd_id}{WELL_KNOWN_PATH} answered HTTP {response.status} "
                             f"{response.reason}"[:300])
        length = response.getheader("Content-Length")
        if length is not None and length.strip().isdigit() and int(length) > MAX_BYTES:
            raise FetchError(f"the answer is larger than 64 KiB ({length.strip()} bytes announced)")
        body = bytearray()
        while True:
            chunk = response.read1(_READ_SIZE)
            if not chunk:
                break
            body += chunk
            if len(body) > MAX_BYTES:
                raise FetchError("the answer is larger than 64 KiB")
        return bytes(body), response.getheader("Content-Type")
    finally:
        response.close()


def fetch_pvd(pvd: Pvd, sequence: int, announced_prefixes: list[str], ca_file: str | None = None,
              timeout: float = 5.0, now: Callable[[], float] = time.time) -> AdditionalInfo:
    """:func:`fetch` for a :class:`Pvd` already built (its first interface is used)."""
    deadline = _Deadline(timeout)
    context = tls_context(ca_file)
    try:
        addresses = resolve_addresses(pvd, deadline)
        sock = connect(pvd, addresses, deadline)
        try:
            sock.settimeout(deadline.left("TLS handshake"))
            with context.wrap_socket(sock, server_hostname=pvd.pvd_id) as tls:
                body, content_type = exchange(tls, pvd.pvd_id, deadline)
        finally:
            sock.close()
    except InfoError:
        raise
    except ssl.SSLCertVerificationError as exc:
        raise FetchError(f"TLS: the certificate of {pvd.pvd_id} is not valid: "
                         f"{_one_line(exc.verify_message or exc)}") from None
    except ssl.SSLError as exc:
        raise FetchError(f"TLS with {pvd.pvd_id} failed: {_one_line(exc)}") from None
    except TimeoutError:
        raise FetchError(f"timed out fetching https://{pvd.pvd_id}{WELL_KNOWN_PATH}") from None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise FetchError(f"fetching https://{pvd.pvd_id}{WELL_KNOWN_PATH} failed: {_one_line(exc)}") from None
    data = validate(pvd.pvd_id, body, content_type, announced_prefixes, now())
    return AdditionalInfo(pvd_id=pvd.pvd_id, sequence=sequence, data=data, fetched_at=now(),
                          expires=parse_expires(data["expires"]))


def fetch(pvd_id: str, sequence: int, *, interface: str, source_addresses: list[str], dns_servers: list[str],
          announced_prefixes: list[str], mark: int = 0, ca_file: str | None = None, timeout: float = 5.0,
          now: Callable[[], float] = time.time) -> AdditionalInfo:
    """Fetch, validate and return the Additional Information of PvD ``pvd_id`` for the PvD
    option's Sequence Number ``sequence``, from inside the PvD: DNS asked of ``dns_servers``
    only, every socket bound to ``interface``, to one of ``source_addresses`` (of the
    destination's family; none given: the device and mark alone) and marked with ``mark``
    when non-zero.  Blocks for at most about ``timeout`` seconds.

    Raises FetchError (DNS, network, TLS, HTTP status, timeout, size cap) or InvalidInfo.
    """
    pvd = scope_pvd(pvd_id, interface, source_addresses, dns_servers, mark)
    return fetch_pvd(pvd, sequence, announced_prefixes, ca_file=ca_file, timeout=timeout, now=now)
