"""A cgroup program that refuses ``connect()`` to a few AF_UNIX socket paths.

Strict mode keeps a PvD's programs away from the host's own resolvers that listen on a
Unix socket (nscd's ``/run/nscd/socket``, systemd-resolved's
``/run/systemd/resolve/io.systemd.Resolve``): they would answer with the host's DNS, not
the PvD's.  :func:`unix_connect` writes a ``BPF_PROG_TYPE_CGROUP_SOCK_ADDR`` program for
the ``BPF_CGROUP_UNIX_CONNECT`` hook (Linux 6.7 and later) that fails such a connect with
ECONNREFUSED (as if nothing listened there, which glibc and libsystemd already handle) and
lets every other one through.

The path is no field of ``struct bpf_sock_addr``: the program reaches it as the kernel's
selftests do (``tools/testing/selftests/bpf/progs/connect_unix_prog.c``), through two
kernel functions (kfuncs) named by their BTF type ids: ``bpf_cast_to_kern_ctx(ctx)`` gives
the ``struct bpf_sock_addr_kern`` behind the context (``uaddr``, ``uaddrlen``), and
``bpf_rdonly_cast(uaddr, <struct sockaddr_un>)`` a read-only typed pointer whose
``sun_path`` the program reads directly, in aligned loads of 4, 2 and 1 bytes compared
with immediates (the verifier turns them into fault-safe loads).  The ids and offsets are
read from the running kernel's BTF (``/sys/kernel/btf/vmlinux``) by the small reader below,
so nothing is compiled and no layout is assumed.  Loading needs CAP_BPF (kfunc calls) and
the JIT.

A connect matches a refused path P when its address length covers P, ``sun_path`` starts
with P, and then the length ends or a NUL follows: the name the kernel itself looks up (with
or without the NUL counted in the length, as Python and libsystemd count it and SUN_LEN does
not, or a whole zero-padded ``sockaddr_un`` as glibc's nscd client passes; what follows the
NUL is ignored).  Nothing past the length is compared.  Stream and datagram sockets'
connects alike.

Known limits: the hook sees the address as the program gave it, before any lookup in the
file system.  So another spelling of the same file is not caught: a relative path (from a
working directory where it resolves to a refused path), a symbolic link or a hard link to
the socket, ``//`` or ``/./`` inside the path, ``/proc/self/fd/N`` of an ``O_PATH``
descriptor of the socket (how libsystemd connects to a path too long for ``sun_path`` or
relative to a directory descriptor), ``/proc/self/root/...``, a bind mount or another
mount namespace where the socket has another path.  So each usual spelling of a socket is
to be listed (``/run/nscd/socket`` and ``/var/run/nscd/socket``: glibc's nscd client uses
the second).  Only ``connect()`` is seen: a datagram sent with ``sendto()`` to
a path without connecting goes through ``BPF_CGROUP_UNIX_SENDMSG``, which this program does
not cover.  Abstract sockets (a name starting with NUL) are never matched.
"""
from __future__ import annotations

import errno
import functools
import os
import struct
import sys
from collections.abc import Sequence

from pvdrun.strict import bpf
from pvdrun.strict.asm import B, DW, H, JEQ, JGT, JNE, R0, R1, R2, R6, R7, R8, W, Program

#: ``BPF_CGROUP_UNIX_CONNECT`` (enum bpf_attach_type, include/uapi/linux/bpf.h, Linux 6.7).
UNIX_CONNECT = 49
SET_RETVAL = 187  # helper bpf_set_retval
#: ``sizeof(sun_path)``: a path fills at most this many bytes.
SUN_PATH_MAX = 108

VMLINUX = "/sys/kernel/btf/vmlinux"
KIND_STRUCT, KIND_ENUM, KIND_FUNC = 4, 6, 12
# bytes after a type's 12-byte header: fixed, then per vlen entry (linux/btf.h)
_EXTRA = {1: 4, 3: 12, 14: 4, 17: 4}
_PER_ITEM = {4: 12, 5: 12, 6: 8, 13: 8, 15: 12, 19: 12}


class Btf:
    """The few look-ups of a BTF blob this program needs: a type by kind and name, a
    struct member's byte offset, an enumerator's value."""

    def __init__(self, data: bytes) -> None:
        magic, _version, _flags, hdr_len, type_off, type_len, str_off, str_len = \
            struct.unpack_from("=HBBIIIII", data, 0)
        if magic != 0xEB9F:
            raise ValueError("not BTF of this machine's byte order")
        self.types = data[hdr_len + type_off:hdr_len + type_off + type_len]
        self.strings = data[hdr_len + str_off:hdr_len + str_off + str_len]
        self.offsets = [0]  # type id -> its position in self.types (id 0 is void)
        self.by_name: dict[tuple[int, int], int] = {}  # (kind, name_off) -> first id
        pos = 0
        while pos < len(self.types):
            name_off, info, _ = struct.unpack_from("=III", self.types, pos)
            kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
            self.by_name.setdefault((kind, name_off), len(self.offsets))
            self.offsets.append(pos)
            pos += 12 + _EXTRA.get(kind, 0) + _PER_ITEM.get(kind, 0) * vlen

    def name(self, off: int) -> str:
        return self.strings[off:self.strings.index(b"\0", off)].decode()

    def find(self, kind: int, name: str) -> int:
        """The id of the first type of ``kind`` named ``name``; KeyError when there is none."""
        needle, start = b"\0" + name.encode() + b"\0", 0
        while (at := self.strings.find(needle, start)) >= 0:
            if (kind, at + 1) in self.by_name:
                return self.by_name[(kind, at + 1)]
            start = at + 1
        raise KeyError(f"no BTF type {name!r} of kind {kind}")

    def _items(self, type_id: int, size: int) -> tuple[int, int, list[tuple[int, ...]]]:
        pos = self.offsets[type_id]
        _, info, _ = struct.unpack_from("=III", self.types, pos)
        items = [struct.unpack_from(f"={size // 4}I", self.types, pos + 12 + size * i)
                 for i in range(info & 0xFFFF)]
        return (info >> 24) & 0x1F, info >> 31, items

    def member_offset(self, struct_id: int, member: str) -> int:
        """The byte offset of a (direct, not bit-field) member of a struct."""
        _, kind_flag, members = self._items(struct_id, 12)
        for name_off, _type, offset in members:
            if self.name(name_off) == member:
                return (offset & 0xFFFFFF if kind_flag else offset) // 8
        raise KeyError(f"no member {member!r}")

    def enum_value(self, enum: str, enumerator: str) -> int:
        _, _, values = self._items(self.find(KIND_ENUM, enum), 8)
        for name_off, value in values:
            if self.name(name_off) == enumerator:
                return value
        raise KeyError(f"no enumerator {enumerator!r}")


@functools.lru_cache(maxsize=1)
def vmlinux() -> Btf:
    """The running kernel's BTF (OSError without CONFIG_DEBUG_INFO_BTF)."""
    with open(VMLINUX, "rb") as f:
        return Btf(f.read())


def _chunks(start: int, end: int) -> list[tuple[int, int]]:
    """(offset, size) of aligned loads of 4, 2 or 1 bytes covering [start, end)."""
    out = []
    while start < end:
        size = next(s for s in (4, 2, 1) if start % s == 0 and start + s <= end)
        out.append((start, size))
        start += size
    return out


def unix_connect(paths: Sequence[str]) -> bytes:
    """The program refusing a connect to any of ``paths`` (ECONNREFUSED), allowing the rest."""
    btf = vmlinux()
    kern = btf.find(KIND_STRUCT, "bpf_sock_addr_kern")
    uaddr, uaddrlen = btf.member_offset(kern, "uaddr"), btf.member_offset(kern, "uaddrlen")
    sockaddr_un = btf.find(KIND_STRUCT, "sockaddr_un")
    sun_path = btf.member_offset(sockaddr_un, "sun_path")
    p = Program()
    # r6: the kernel's context; r7: the address length; r8: the struct sockaddr_un
    p.call_kfunc(btf.find(KIND_FUNC, "bpf_cast_to_kern_ctx")).mov(R6, R0)
    p.load(W, R7, R6, uaddrlen).load(DW, R1, R6, uaddr).mov_imm(R2, sockaddr_un)
    p.call_kfunc(btf.find(KIND_FUNC, "bpf_rdonly_cast")).mov(R8, R0)
    for index, path in enumerate(paths):
        raw = os.fsencode(path)
        if not raw or b"\0" in raw or len(raw) > SUN_PATH_MAX:
            raise ValueError(f"not a Unix socket path: {path!r}")
        miss, end = f"miss{index}", sun_path + len(raw)
        p.mov_imm(R1, end).jump_if_reg(JGT, R1, R7, miss)  # shorter than the path
        for off, size in _chunks(sun_path, end):
            value = int.from_bytes(raw[off - sun_path:off - sun_path + size], sys.byteorder)
            p.load({4: W, 2: H, 1: B}[size], R1, R8, off).jump32_if(JNE, R1, value, miss)
        p.jump32_if(JEQ, R7, end, "refuse")  # the length ends with the path
        if len(raw) < SUN_PATH_MAX:
            p.load(B, R1, R8, end).jump32_if(JEQ, R1, 0, "refuse")  # or a NUL does
        p.label(miss)
    p.ret(1)
    if p.used("refuse"):
        p.label("refuse")
        p.mov_imm(R1, -errno.ECONNREFUSED).call(SET_RETVAL).ret(0)
    return p.assemble()


def load(paths: Sequence[str]) -> int:
    """The loaded program's descriptor (BpfError with the verifier's last line)."""
    return bpf.prog_load(bpf.PROG_TYPE_CGROUP_SOCK_ADDR, unix_connect(paths), UNIX_CONNECT,
                         bpf.NAME_PREFIX + "unix")


@functools.lru_cache(maxsize=1)
def available() -> bool:
    """Whether this kernel loads the program (Linux 6.7 and later, with BTF, kfuncs, a JIT)."""
    try:
        fd = load(["/run/nscd/socket"])
    except (OSError, KeyError, ValueError):  # BpfError is an OSError; no BTF; no kfunc
        return False
    os.close(fd)
    return True
