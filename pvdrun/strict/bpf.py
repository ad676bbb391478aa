"""The ``bpf()`` system call, for the few commands strict mode uses.

Loading a program, creating a map, attaching to and detaching from a cgroup, listing what
a cgroup holds.  Called through libc's ``syscall()`` with ctypes: the Python standard library
has no wrapper and no package on PyPI that builds without a BPF toolchain does only this
(docs/strict.md, "Why hand-assembled programs").  Everything here raises :class:`BpfError`
(an OSError: its errno is the kernel's).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import struct

#: ``__NR_bpf`` by machine (``uname -m``).
SYSCALL_NUMBERS = {"x86_64": 321, "aarch64": 280, "riscv64": 280, "loongarch64": 280,
                   "i686": 357, "i386": 357, "armv7l": 386, "armv6l": 386,
                   "ppc64le": 361, "ppc64": 361, "s390x": 351}

# commands
MAP_CREATE, MAP_LOOKUP_ELEM, PROG_LOAD, PROG_ATTACH, PROG_DETACH = 0, 1, 5, 8, 9
PROG_GET_FD_BY_ID, OBJ_GET_INFO_BY_FD, PROG_QUERY = 13, 15, 16
# program types
PROG_TYPE_CGROUP_SOCK, PROG_TYPE_CGROUP_SOCK_ADDR, PROG_TYPE_CGROUP_SOCKOPT = 9, 18, 25
# map types
MAP_TYPE_LRU_HASH = 9
# attach types
INET_SOCK_CREATE = 2
INET4_BIND, INET6_BIND, INET4_CONNECT, INET6_CONNECT = 8, 9, 10, 11
UDP4_SENDMSG, UDP6_SENDMSG, UDP4_RECVMSG, UDP6_RECVMSG = 14, 15, 19, 20
SETSOCKOPT = 22
INET4_GETPEERNAME, INET6_GETPEERNAME = 29, 30
# attach flags
F_ALLOW_MULTI = 1 << 1

#: The program name the kernel shows (``bpftool prog``), at most 15 characters: how pvdd
#: tells its programs from others attached to the same cgroup.
NAME_PREFIX = "pvdrun_"

ATTR_SIZE = 144
LOG_SIZE = 64 * 1024


class BpfError(OSError):
    """The kernel refused a ``bpf()`` command; ``errno`` is its reason."""


_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.syscall.restype = ctypes.c_long


def syscall_number() -> int:
    """``__NR_bpf`` of this machine; BpfError(ENOSYS) when it is not known here."""
    number = SYSCALL_NUMBERS.get(platform.machine())
    if number is None:
        raise BpfError(38, f"bpf(): unknown system call number on {platform.machine()}")
    return number


def _bpf(cmd: int, attr: bytes, what: str) -> tuple[int, ctypes.Array[ctypes.c_char]]:
    buf = ctypes.create_string_buffer(attr.ljust(ATTR_SIZE, b"\0"), ATTR_SIZE)
    result = _libc.syscall(ctypes.c_long(syscall_number()), ctypes.c_int(cmd), buf, ctypes.c_uint(ATTR_SIZE))
    if result < 0:
        err = ctypes.get_errno()
        raise BpfError(err, f"{what}: {os.strerror(err)}")
    return int(result), buf


def map_create(map_type: int, key_size: int, value_size: int, max_entries: int, name: str) -> int:
    """A new map's descriptor."""
    attr = struct.pack("<IIIII", map_type, key_size, value_size, max_entries, 0)
    attr = attr.ljust(28, b"\0") + name.encode()[:15].ljust(16, b"\0")  # map_name at offset 28
    fd, _ = _bpf(MAP_CREATE, attr, f"creating map {name}")
    return fd


def prog_load(prog_type: int, insns: bytes, expected_attach_type: int, name: str) -> int:
    """Load a program; its descriptor.  A refusal by the verifier carries its log."""
    code = ctypes.create_string_buffer(insns, len(insns))
    license_ = ctypes.create_string_buffer(b"Dual MIT/GPL")
    log = ctypes.create_string_buffer(LOG_SIZE)
    # prog_type, insn_cnt, insns, license, log_level, log_size, log_buf, kern_version,
    # prog_flags, prog_name[16], prog_ifindex, expected_attach_type
    attr = struct.pack("<IIQQIIQII16sII", prog_type, len(insns) // 8, ctypes.addressof(code),
                       ctypes.addressof(license_), 1, LOG_SIZE, ctypes.addressof(log), 0, 0,
                       name.encode()[:15], 0, expected_attach_type)
    try:
        fd, _ = _bpf(PROG_LOAD, attr, f"loading {name}")
    except BpfError as exc:
        text = log.value.decode(errors="replace").strip().splitlines()
        detail = f" ({text[-1]})" if text else ""
        raise BpfError(exc.errno, f"{exc.strerror}{detail}") from None
    return fd


def prog_attach(cgroup_fd: int, prog_fd: int, attach_type: int) -> None:
    """Attach a program to a cgroup, beside the programs already there (``BPF_F_ALLOW_MULTI``).

    A legacy attachment (not a link): it lasts until detached or the cgroup is removed, so
    it outlives the process that made it."""
    _bpf(PROG_ATTACH, struct.pack("<IIII", cgroup_fd, prog_fd, attach_type, F_ALLOW_MULTI),
         "attaching a program")


def prog_detach(cgroup_fd: int, prog_fd: int, attach_type: int) -> None:
    _bpf(PROG_DETACH, struct.pack("<IIII", cgroup_fd, prog_fd, attach_type, 0), "detaching a program")


def prog_query(cgroup_fd: int, attach_type: int, capacity: int = 64) -> list[int]:
    """The ids of the programs attached to a cgroup at ``attach_type`` (its own, not its
    ancestors')."""
    ids = (ctypes.c_uint32 * capacity)()
    # target_fd, attach_type, query_flags, attach_flags, prog_ids, prog_cnt
    attr = struct.pack("<IIIIQI", cgroup_fd, attach_type, 0, 0, ctypes.addressof(ids), capacity)
    _, buf = _bpf(PROG_QUERY, attr, "listing a cgroup's programs")
    count = struct.unpack_from("<I", buf.raw, 24)[0]
    return list(ids[:min(count, capacity)])


def prog_fd_by_id(prog_id: int) -> int:
    fd, _ = _bpf(PROG_GET_FD_BY_ID, struct.pack("<I", prog_id), f"opening program {prog_id}")
    return fd


def prog_name(prog_fd: int) -> str:
    """The name a program was loaded with."""
    info = ctypes.create_string_buffer(232)
    _bpf(OBJ_GET_INFO_BY_FD, struct.pack("<IIQ", prog_fd, 232, ctypes.addressof(info)), "reading a program's name")
    return info.raw[64:80].split(b"\0", 1)[0].decode(errors="replace")


def available() -> str | None:
    """None when this process may load and attach cgroup programs, else why not (one line)."""
    try:
        syscall_number()
    except BpfError as exc:
        return exc.strerror
    # a map (CAP_BPF) and a cgroup program (CAP_BPF and CAP_NET_ADMIN): "r0 = 1; exit"
    probe = struct.pack("<BBhi", 0xB7, 0, 0, 1) + struct.pack("<BBhi", 0x95, 0, 0, 0)
    fds = []
    try:
        fds.append(map_create(MAP_TYPE_LRU_HASH, 8, 8, 1, NAME_PREFIX + "probe"))
        fds.append(prog_load(PROG_TYPE_CGROUP_SOCK, probe, INET_SOCK_CREATE, NAME_PREFIX + "probe"))
    except BpfError as exc:
        return f"the kernel refuses this process BPF cgroup programs ({exc.strerror})"
    finally:
        for fd in fds:
            os.close(fd)
    return None
