"""Can a program be scoped by LD_PRELOAD?

Only a dynamically linked program whose loader honours LD_PRELOAD runs the
shim's hooks.  This module reads the program file (ELF headers, ``#!`` line,
set-user-ID bits, file capabilities) and says why not, so that the launcher
refuses rather than run a program unscoped while claiming to scope it.

What cannot be seen here: a dynamic program that later executes a static or
Go program, or makes system calls without libc (see docs/shim.md).
"""
from __future__ import annotations

import os
import stat
import struct

from pvdrun.pathsearch import ProgramNotFound, find_program

ELF_MAGIC = b"\x7fELF"
PT_INTERP = 3
PT_NOTE = 4
GO_SECTIONS = (b".go.buildinfo", b".note.go.buildid", b".gopclntab")
MAX_SCRIPT_DEPTH = 4


class NotPreloadable(Exception):
    """The program cannot be scoped by the shim; the message says why."""


def _read_elf(path: str) -> tuple[bool, bool]:
    """(has PT_INTERP, is Go) for an ELF file.  Raises NotPreloadable on a broken header."""
    with open(path, "rb") as handle:
        data = handle.read()
    if len(data) < 64:
        raise NotPreloadable(f"{path}: truncated ELF file")
    elf_class, elf_data = data[4], data[5]
    if elf_class not in (1, 2) or elf_data not in (1, 2):
        raise NotPreloadable(f"{path}: unknown ELF class or byte order")
    end = "<" if elf_data == 1 else ">"
    if elf_class == 2:
        phoff, shoff = struct.unpack_from(end + "QQ", data, 0x20)
        phentsize, phnum, shentsize, shnum, shstrndx = struct.unpack_from(end + "HHHHH", data, 0x36)
        ph_fmt, sh_fmt = end + "II", end + "IIQQQQ"
    else:
        phoff, shoff = struct.unpack_from(end + "II", data, 0x1C)
        phentsize, phnum, shentsize, shnum, shstrndx = struct.unpack_from(end + "HHHHH", data, 0x2A)
        ph_fmt, sh_fmt = end + "I", end + "IIIIII"
    has_interp = False
    is_go = False
    for index in range(phnum):
        offset = phoff + index * phentsize
        if offset + 8 > len(data):
            raise NotPreloadable(f"{path}: truncated ELF program headers")
        p_type = struct.unpack_from(ph_fmt, data, offset)[0]
        if p_type == PT_INTERP:
            has_interp = True
    # Section headers (may be stripped: then the Go checks below find nothing).
    if shoff and shnum and shstrndx < shnum and shoff + shnum * shentsize <= len(data):
        def section(idx: int) -> tuple[int, int, int]:
            fields = struct.unpack_from(sh_fmt, data, shoff + idx * shentsize)
            name, offset, size = fields[0], fields[4], fields[5]
            if elf_class == 1:
                offset, size = fields[4], fields[5]
            return name, offset, size
        _, str_off, str_size = section(shstrndx)
        names = data[str_off:str_off + str_size]
        for idx in range(shnum):
            name_off = section(idx)[0]
            name = names[name_off:names.find(b"\0", name_off)] if name_off < len(names) else b""
            if name in GO_SECTIONS:
                is_go = True
    if not is_go and b"\x04\x00\x00\x00Go\x00\x00" in data[:1 << 16]:
        is_go = True  # the Go build-ID note: namesz=4, "Go\0\0"
    return has_interp, is_go


def _secure_exec_reason(path: str) -> str | None:
    """Why the loader would run ``path`` in secure mode (dropping LD_PRELOAD), or None."""
    info = os.stat(path)
    if info.st_mode & stat.S_ISUID and info.st_uid != os.getuid():
        return f"{path} is set-user-ID: the loader ignores LD_PRELOAD for it"
    if info.st_mode & stat.S_ISGID and info.st_gid != os.getgid():
        return f"{path} is set-group-ID: the loader ignores LD_PRELOAD for it"
    try:
        os.getxattr(path, "security.capability")
    except OSError:
        return None
    if os.getuid() != 0:
        return f"{path} has file capabilities: the loader ignores LD_PRELOAD for it"
    return None


def _script_interpreter(path: str, env_path: str | None) -> str | None:
    """The program a ``#!`` script runs (resolving ``/usr/bin/env NAME``), or None."""
    with open(path, "rb") as handle:
        first = handle.readline(256)
    if not first.startswith(b"#!"):
        return None
    words = first[2:].decode(errors="replace").split()
    if not words:
        raise NotPreloadable(f"{path}: empty #! line")
    interpreter = words[0]
    if os.path.basename(interpreter) == "env":
        rest = [w for w in words[1:] if not w.startswith("-") and "=" not in w]
        if rest:
            try:
                return find_program(rest[0], env_path)
            except ProgramNotFound:
                raise NotPreloadable(f"{path}: interpreter {rest[0]} not found") from None
    return interpreter


def check_preloadable(path: str, env_path: str | None = None, depth: int = 0) -> None:
    """Raise NotPreloadable when the program at ``path`` would escape the shim."""
    reason = _secure_exec_reason(path)
    if reason:
        raise NotPreloadable(reason)
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if magic == ELF_MAGIC:
        has_interp, is_go = _read_elf(path)
        if is_go:
            raise NotPreloadable(f"{path} is a Go program: it makes its system calls without libc, "
                                 "so the preloaded shim cannot scope it")
        if not has_interp:
            raise NotPreloadable(f"{path} is statically linked: no dynamic loader runs, "
                                 "so LD_PRELOAD cannot scope it")
        return
    interpreter = _script_interpreter(path, env_path)
    if interpreter is None:
        return  # not ELF, not #!: execve itself will refuse it (ENOEXEC)
    if depth >= MAX_SCRIPT_DEPTH:
        raise NotPreloadable(f"{path}: too many nested #! interpreters")
    if not os.path.exists(interpreter):
        raise NotPreloadable(f"{path}: interpreter {interpreter} not found")
    try:
        check_preloadable(interpreter, env_path, depth + 1)
    except NotPreloadable as exc:
        raise NotPreloadable(f"{path} runs {interpreter}; {exc}") from None
