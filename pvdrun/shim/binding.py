"""The shim's C API (``shim/include/pvd.h``) from Python, through cffi in ABI mode.

``ffi.dlopen(library_path())`` opens the same ``libpvdshim.so`` that
``pvdrun --pvd`` preloads; when the library is preloaded, the dynamic loader
returns that very copy, so the scopes set here are the ones the hooks obey.

Without LD_PRELOAD, only :func:`bind_socket` acts on sockets (it ties the
socket in the kernel at once); thread and process scopes need the hooks, so
:func:`thread_scope` refuses (fail closed) rather than pretend.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import socket
import struct
from dataclasses import dataclass
from typing import Any, Iterator

from cffi import FFI

from pvdrun.model import HANDLE_NULL, HANDLE_UNSPEC
from pvdrun.shim import library_path

HEADER_NAME = "pvd.h"
#: The system's types pvd.h takes from <sys/socket.h> (cffi reads no system header).
SYSTEM_TYPES = "typedef unsigned int socklen_t;\nstruct sockaddr;"


def declarations(header: str) -> str:
    """The C declarations of pvd.h as cffi reads them: the header itself, without its
    preprocessor lines (integer constants kept as ``#define NAME N``, which cffi understands)
    and without its C++ guard.  The header is the one definition; nothing is copied here."""
    kept: list[str] = []
    in_cplusplus = False
    for line in header.splitlines():
        text = line.strip()
        if text.startswith("#ifdef __cplusplus"):
            in_cplusplus = True
            continue
        if in_cplusplus:
            in_cplusplus = not text.startswith("#endif")
            continue
        if text.startswith("#"):
            match = re.match(r"#define\s+(PVD_[A-Z0-9_]+)\s+(\d+)\b", text)
            if match:
                kept.append(f"#define {match.group(1)} {match.group(2)}")
            continue
        kept.append(line)
    return "\n".join(kept)


def _header_path() -> str:
    """pvd.h as installed beside this package (setup.py copies it with the library)."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), HEADER_NAME)


_ffi = FFI()
with open(_header_path(), encoding="utf-8") as _header:
    _ffi.cdef(SYSTEM_TYPES + "\n" + declarations(_header.read()))
_lib: Any = None


def lib() -> Any:
    """The opened library (opened on first use)."""
    global _lib
    if _lib is None:
        _lib = _ffi.dlopen(library_path())
    return _lib


class ShimNotPreloaded(RuntimeError):
    """A scope that only the preloaded hooks can enforce was asked for without them."""


@dataclass
class PvdInfo:
    """A PvD's attributes as the C API reports them (R16)."""

    handle: int
    pvd_id: str
    interfaces: list[str]
    ifindexes: list[int]
    addresses: list[str]
    dns_servers: list[str]
    search_domains: list[str]
    mark: int
    srcbind: bool


def _check(rc: int) -> None:
    if rc < 0:
        code = _ffi.errno
        raise OSError(code, os.strerror(code))


def _string(cdata: Any) -> str:
    return _ffi.string(cdata).decode()


def is_preloaded() -> bool:
    """True when the hooks of this library intercept this process's socket calls."""
    return bool(lib().pvd_shim_active())


def add_scope(scope_line: str) -> int:
    """Make a PvD known from its scope line; return its handle."""
    handle = _ffi.new("pvd_handle_t *")
    _check(lib().pvd_add_scope(scope_line.encode(), handle))
    return int(handle[0])


def list_handles() -> list[int]:
    """Handles of every PvD (pvdd's list, else this process's own PvDs) (R14)."""
    size = 64
    while True:
        handles = _ffi.new("pvd_handle_t[]", size)
        count = lib().pvd_list(handles, size)
        _check(count)
        if count <= size:
            return [int(handles[i]) for i in range(count)]
        size = count  # more PvDs than room: ask again with enough


def info(handle: int) -> PvdInfo:
    """Attributes of one PvD (R16); OSError(ENOENT) for an unknown handle."""
    data = _ffi.new("struct pvd_info *")
    _check(lib().pvd_get_info(handle, data))
    return PvdInfo(
        handle=int(data.handle), pvd_id=_string(data.id),
        interfaces=[_string(data.interfaces[i]) for i in range(data.n_interfaces)],
        ifindexes=[int(data.ifindexes[i]) for i in range(data.n_interfaces)],
        addresses=[_string(data.addresses[i]) for i in range(data.n_addresses)],
        dns_servers=[_string(data.dns[i]) for i in range(data.n_dns)],
        search_domains=[_string(data.search[i]) for i in range(data.n_search)],
        mark=int(data.mark), srcbind=bool(data.srcbind))


def find(name: str) -> int:
    """Handle of the PvD with this identifier or interface name; OSError(ENOENT) if none."""
    handle = _ffi.new("pvd_handle_t *")
    _check(lib().pvd_find(name.encode(), handle))
    return int(handle[0])


def _json_text(call: Any) -> str:
    """Call ``call(buf, len)`` (pvd_get_attributes or pvd_get_attribute) with a growing buffer
    until the text fits (ERANGE: too small); the text."""
    size = 4096
    while True:
        buf = _ffi.new("char[]", size)
        count = call(buf, size)
        if count >= 0:
            return _ffi.unpack(buf, count).decode()
        code = _ffi.errno
        if code != errno.ERANGE or size >= 4 << 20:
            raise OSError(code, os.strerror(code))
        size *= 4


def attributes(handle: int) -> dict[str, Any]:
    """pvd_get_attributes: the PvD's extensible attributes, ``{"attributes": {...},
    "additional_info": {...} or None}``; OSError with the C errno (ENOENT, ENOTCONN, ...)."""
    return json.loads(_json_text(lambda buf, size: lib().pvd_get_attributes(handle, buf, size)))


def attribute(handle: int, key: str) -> Any:
    """pvd_get_attribute: the value of one key, from "additional_info", else "attributes";
    OSError(ENODATA) when neither has it."""
    encoded = key.encode()
    return json.loads(_json_text(lambda buf, size: lib().pvd_get_attribute(handle, encoded, buf, size)))


def _fileno(sock: socket.socket | int) -> int:
    return sock if isinstance(sock, int) else sock.fileno()


def bind_socket(sock: socket.socket | int, handle: int) -> None:
    """Tie one socket to a PvD (per-socket scope, R24; draft-liu's per-socket API).

    Works with or without LD_PRELOAD: the device binding is made in the kernel
    at once.  ``HANDLE_NULL`` makes every later operation of the socket fail
    (only enforced when preloaded).
    """
    _check(lib().pvd_bind_socket(_fileno(sock), handle))


class TieRefused(OSError):
    """pvd_tie_socket failed; ``reason`` is what the library knows beyond errno (pvdd's own
    words when it refused the PvD's mark), or ""."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, os.strerror(code) + (f" ({reason})" if reason else ""))
        self.reason = reason


def _sockaddr(address: tuple[Any, ...]) -> bytes:
    """The C sockaddr of a Python address tuple: (host, port) or (host, port, flow, scope_id)."""
    host, port = address[0], int(address[1])
    if len(address) == 2:
        packed = socket.inet_pton(socket.AF_INET, host)
        return struct.pack("=HH4s8x", socket.AF_INET, socket.htons(port), packed)
    packed = socket.inet_pton(socket.AF_INET6, host)
    return struct.pack("=HHI16sI", socket.AF_INET6, socket.htons(port), int(address[2]), packed,
                       int(address[3]))


def tie_socket(sock: socket.socket | int, scope_line: str, destination: tuple[Any, ...]) -> None:
    """Tie a socket about to talk to ``destination`` (a Python address tuple) to the PvD of
    ``scope_line`` as the library ties its own DNS sockets: the PvD's interface, its mark
    (directly when permitted, else by pvdd), an IPv4 route check, one of its addresses as the
    source.  Works with or without LD_PRELOAD.  Raises TieRefused (an OSError)."""
    raw = _sockaddr(destination)
    buffer = _ffi.new("char[]", raw)
    if lib().pvd_tie_socket(_fileno(sock), scope_line.encode(), _ffi.cast("struct sockaddr *", buffer),
                            len(raw)) < 0:
        code = _ffi.errno
        raise TieRefused(code, _string(lib().pvd_last_reason()))


def dns_server_usable(scope_line: str, server: str) -> bool:
    """Whether the PvD of ``scope_line`` can ask DNS server ``server`` ("ADDR" or "ADDR%ZONE",
    as the line's dns= entries spell it), by the rule the library's own resolver follows
    (``pvd_dns_server_usable``).  Raises OSError(EINVAL) for a malformed line or server."""
    rc = lib().pvd_dns_server_usable(scope_line.encode(), server.encode())
    _check(rc)
    return bool(rc)


def host_resolver_sockets() -> list[str]:
    """The AF_UNIX socket paths of the host's resolver daemons that a scoped connect() is refused
    (``pvd_host_resolver_socket``), each in its /run and its /var/run spelling."""
    paths = []
    index = 0
    while (path := lib().pvd_host_resolver_socket(index)) != _ffi.NULL:
        paths.append(_string(path))
        index += 1
    return paths + ["/var" + p for p in paths if p.startswith("/run/")]


def socket_scope(sock: socket.socket | int) -> int:
    """The PvD a socket belongs to (R8); HANDLE_UNSPEC when not tied to one."""
    handle = _ffi.new("pvd_handle_t *")
    _check(lib().pvd_get_socket_scope(_fileno(sock), handle))
    return int(handle[0])


def get_thread_scope() -> int:
    """This thread's PvD, HANDLE_UNSPEC when none is set (R21)."""
    return int(lib().pvd_get_thread_scope())


def set_thread_scope(handle: int) -> None:
    """Set this thread's PvD (HANDLE_UNSPEC clears it) (R20)."""
    if handle != HANDLE_UNSPEC and not is_preloaded():
        raise ShimNotPreloaded("a thread scope needs the shim preloaded (run under pvdrun --pvd, "
                               "or LD_PRELOAD=$(pvdrun shim-path))")
    _check(lib().pvd_set_thread_scope(handle))


def get_process_scope() -> int:
    """The process's PvD, HANDLE_UNSPEC when none is set (R21)."""
    return int(lib().pvd_get_process_scope())


def set_process_scope(handle: int) -> None:
    """Set the process's PvD; children started later inherit it (R20)."""
    if handle != HANDLE_UNSPEC and not is_preloaded():
        raise ShimNotPreloaded("a process scope needs the shim preloaded")
    _check(lib().pvd_set_process_scope(handle))


def effective_scope() -> int:
    """The PvD this thread's next socket would be tied to (R12)."""
    return int(lib().pvd_get_effective_scope())


@contextlib.contextmanager
def thread_scope(handle: int) -> Iterator[int]:
    """``with thread_scope(h):`` sockets this thread ties inside the block use PvD ``h``.

    Restores the previous thread scope on exit.  Raises ShimNotPreloaded
    when the hooks are not active (the scope could not be enforced).
    """
    previous = get_thread_scope()
    set_thread_scope(handle)
    try:
        yield handle
    finally:
        _check(lib().pvd_set_thread_scope(previous))


__all__ = ["HANDLE_NULL", "HANDLE_UNSPEC", "PvdInfo", "ShimNotPreloaded", "TieRefused", "add_scope",
           "bind_socket", "dns_server_usable", "effective_scope", "find", "get_process_scope",
           "get_thread_scope", "info", "is_preloaded", "list_handles", "set_process_scope",
           "set_thread_scope", "socket_scope", "thread_scope", "tie_socket"]
