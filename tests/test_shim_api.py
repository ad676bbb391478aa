"""The C API (shim/include/pvd.h) through the cffi binding, without LD_PRELOAD,
and the library's build properties.  No namespace needed: the only socket tied here is
bound to the loopback interface and sends nothing."""
from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.prereq import require
from fixtures.shim_source import SHIM, all_sources
from fixtures.shim_source import flags as shim_flags
from pvdrun.model import HANDLE_NULL, HANDLE_UNSPEC, Pvd
from pvdrun.shim import binding, library_path

SO_BINDTOIFINDEX = 62
LINE = "v=1 id=test.example handle=4242 if=lo:1 addr=127.0.0.1 addr=::1 dns=127.0.0.53 search=a.example " \
       "search=b.example mark=0x2a srcbind=1 future=ignored"


@pytest.fixture(autouse=True)
def no_daemon(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Point the C API at a socket nobody serves: it must fall back to known PvDs."""
    monkeypatch.setenv("PVDRUN_SOCKET", str(tmp_path / "none.sock"))


def test_add_scope_and_info_round_trip() -> None:
    handle = binding.add_scope(LINE)
    assert handle == 4242
    info = binding.info(handle)
    assert info.pvd_id == "test.example"
    assert info.interfaces == ["lo"] and info.ifindexes == [1]
    assert info.addresses == ["127.0.0.1", "::1"]
    assert info.dns_servers == ["127.0.0.53"]
    assert info.search_domains == ["a.example", "b.example"]
    assert info.mark == 0x2A and info.srcbind is True
    assert binding.find("test.example") == 4242 and binding.find("lo") == 4242
    assert 4242 in binding.list_handles()
    assert binding.info(HANDLE_NULL).pvd_id == "null"


def test_scope_line_from_the_model_is_accepted() -> None:
    pvd = Pvd(pvd_id="implicit:lo", handle=777, interfaces=["lo"], ifindexes=[1],
              addresses=["127.0.0.1/8", "fe80::1%lo/64"], dns_servers=["::1"])
    assert binding.add_scope(pvd.to_scope()) == 777
    assert binding.info(777).addresses == ["127.0.0.1", "fe80::1%lo"]


@pytest.mark.parametrize("line", [
    "", "v=1", "v=2 id=x handle=1 if=lo:1", "v=1 id=x handle=1", "v=1 id=x handle=0 if=lo:1",
    "v=1 id=x handle=4294967296 if=lo:1", "v=1 id=x handle=1 if=lo", "v=1 id=x handle=1 if=lo:0",
    "v=1 id=x handle=1 if=waytoolonginterfacename:3", "v=1 id=x handle=1 if=lo:1 addr=300.1.1.1",
    "v=1 id=x handle=1 if=lo:1 addr=", "v=1 id=x handle=1 if=lo:1 novalue", "v=1 v=1 id=x handle=1 if=lo:1",
    "v=1 id=x handle=1 if=lo:1 srcbind=yes", "v=1 id=x handle=1 if=lo:1 mark=0xZZ",
    "v=1 id=x handle=1 if=lo:1 " + " ".join(["addr=10.0.0.1"] * 33),
    "v=1 id=" + "x" * 300 + " handle=1 if=lo:1", "v=1 id=x handle=1 if=lo:1 addr=1.2.3.4%lo",
])
def test_malformed_lines_are_rejected(line: str) -> None:
    with pytest.raises(OSError) as info:
        binding.add_scope(line)
    assert info.value.errno == errno.EINVAL


MUTATE = r"""
import errno, random, sys
from pvdrun.shim import binding
line = sys.argv[1]
rng = random.Random(4242)
alphabet = "v=1 idhandlearsbcm:%.0123456789abcdefx/-_\"\t\n"
accepted = 0
for _ in range(3000):
    chars = list(line)
    for _ in range(rng.randint(1, 8)):
        pos = rng.randrange(len(chars) + 1)
        action = rng.randrange(3)
        if action == 0 and chars:
            del chars[min(pos, len(chars) - 1)]
        elif action == 1:
            chars.insert(pos, rng.choice(alphabet))
        else:
            chars[min(pos, len(chars) - 1)] = rng.choice(alphabet)
    try:
        binding.add_scope("".join(chars))
        accepted += 1
    except OSError as exc:
        assert exc.errno in (errno.EINVAL, errno.ENOSPC), exc
print(accepted)
"""


def test_parser_survives_mutated_lines() -> None:
    """A quick deterministic mutation run (the real fuzzing is a later issue): every
    mutated line is accepted whole or rejected with EINVAL, never a crash.  In its own
    process, since accepted lines fill that process's PvD table."""
    done = subprocess.run([sys.executable, "-c", MUTATE, LINE], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) > 0


def test_null_line_is_the_null_pvd() -> None:
    assert binding.add_scope("v=1 id=null handle=4294967295") == HANDLE_NULL


def test_getters_without_anything_set() -> None:
    """R21: every level answers the unspecified PvD when nothing is set there."""
    assert binding.get_thread_scope() == HANDLE_UNSPEC
    assert binding.get_process_scope() == HANDLE_UNSPEC
    assert binding.effective_scope() == HANDLE_UNSPEC
    with socket.socket() as sock:
        assert binding.socket_scope(sock) == HANDLE_UNSPEC


def test_thread_scope_refused_without_preload() -> None:
    """Fail closed: a thread scope nobody would enforce is refused, not pretended."""
    assert binding.is_preloaded() is False
    handle = binding.add_scope(LINE)
    with pytest.raises(binding.ShimNotPreloaded):
        with binding.thread_scope(handle):
            pass
    assert binding.get_thread_scope() == HANDLE_UNSPEC


def test_bind_socket_without_preload_ties_the_kernel_socket() -> None:
    """Per-socket scope works without the hooks: the kernel holds the device binding."""
    # mark=0 here: a PvD with a mark needs pvdd to set it, tested below
    handle = binding.add_scope(LINE.replace("mark=0x2a", "mark=0x0"))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        binding.bind_socket(sock, handle)
        assert sock.getsockopt(socket.SOL_SOCKET, SO_BINDTOIFINDEX) == 1
        assert binding.socket_scope(sock) == handle
        assert sock.getsockname()[0] == "127.0.0.1"  # srcbind=1: the PvD's source, bound now
        with pytest.raises(OSError) as info:
            binding.bind_socket(sock, binding.add_scope(LINE.replace("4242", "4343")))
        assert info.value.errno == errno.EBUSY
        # (a new fd number while sock is open: without the hooks, close() is not seen)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as marked, pytest.MonkeyPatch.context() as env:
            env.setenv("PVDRUN_SOCKET", "/nonexistent/pvdd.sock")
            with pytest.raises(OSError) as info:  # mark= non-zero and no pvdd: fails closed
                binding.bind_socket(marked, binding.add_scope(LINE.replace("4242", "4545")))
            assert info.value.errno == errno.ENETUNREACH
    with pytest.raises(OSError) as info:
        binding.bind_socket(socket.socket(socket.AF_UNIX), handle)
    assert info.value.errno == errno.EAFNOSUPPORT
    with pytest.raises(OSError) as info:
        binding.bind_socket(socket.socket(), 99999)
    assert info.value.errno == errno.ENOENT


def test_library_links_libc_only() -> None:
    ldd = subprocess.run(["ldd", library_path()], capture_output=True, text=True, check=True).stdout
    assert "libpython" not in ldd
    names = {line.split()[0] for line in ldd.splitlines() if line.strip()}
    allowed = ("linux-vdso", "libc.so", "libdl.so", "libpthread.so", "/lib64/ld-linux")
    assert all(name.startswith(allowed) for name in names), names


def test_shim_compiles_with_werror(tmp_path: Path) -> None:
    require(SHIM.is_dir(), f"the shim's sources next to the tests ({SHIM})")
    build = shim_flags()
    subprocess.run(["cc", "-O2", *build["SHIM_CFLAGS"], "-Werror", "-shared", "-o", str(tmp_path / "lib.so"),
                    *all_sources(), *build["SHIM_LDFLAGS"]], check=True)


def test_example_program_compiles(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parent.parent / "examples" / "pvd_list.c"
    require(example.exists(), f"examples/ next to the tests ({example})")
    lib = library_path()
    out = str(tmp_path / "pvd_list")
    subprocess.run(["cc", "-Wall", "-Wextra", "-Werror", "-I", os.path.dirname(lib), "-o", out, str(example),
                    lib, f"-Wl,-rpath,{os.path.dirname(lib)}"], check=True)
    env = {**os.environ, "PVDRUN_SCOPE": LINE}
    done = subprocess.run([out], capture_output=True, text=True, env=env, timeout=30)
    assert done.returncode == 0, done.stderr
    assert "1 PvD(s); this process: 4242" in done.stdout
    assert "test.example handle=4242 if=lo:1 addr=127.0.0.1 addr=::1 dns=127.0.0.53" in done.stdout
