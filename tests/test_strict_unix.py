"""pvdrun/strict/unix.py: the BPF_CGROUP_UNIX_CONNECT program, attached to a cgroup of the
test's own (named with its pid under /sys/fs/cgroup/unified/, removed after it), refuses a
connect() from a process in the cgroup to a listed path with ECONNREFUSED and lets the rest
through; a process outside the cgroup reaches the same sockets.  The listed paths are sockets
the test listens on in a temporary directory (never the host's resolvers).  Needs root and
Linux 6.7 or later."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator

import pytest

from pvdrun.strict import bpf, unix

pytestmark = pytest.mark.root

CGROUP_ROOT = "/sys/fs/cgroup/unified"

#: A child that, once told to (a line on stdin, after it was put in its cgroup), connects from
#: the directory argv[1] to each (socket type, address, address length) of argv[2] with libc's
#: connect() (the address given byte for byte, zero-padded to a whole sockaddr_un; the length
#: as given), and prints its cgroup and, per address, "ok" or the errno's name.
CLIENT = r"""
import ctypes, errno, json, os, socket, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
os.chdir(sys.argv[1])
sys.stdin.readline()
results = []
for kind, address, length in json.loads(sys.argv[2]):
    sockaddr = ctypes.create_string_buffer(struct.pack("=H", socket.AF_UNIX) + bytes.fromhex(address), 110)
    with socket.socket(socket.AF_UNIX, getattr(socket, kind)) as sock:
        if libc.connect(sock.fileno(), sockaddr, length) == 0:
            results.append("ok")
        else:
            code = ctypes.get_errno()
            results.append(errno.errorcode.get(code, str(code)))
with open("/proc/self/cgroup") as f:
    cgroup = [line.split(":", 2)[2].strip() for line in f if line.startswith("0::")][0]
print(json.dumps({"cgroup": cgroup, "results": results}))
"""


@pytest.fixture
def directory() -> Iterator[str]:
    """A short temporary directory (a Unix socket path has at most 108 bytes)."""
    path = tempfile.mkdtemp(prefix="pvdrun-unix-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def listeners(directory: str) -> Iterator[dict[str, str]]:
    """Listening sockets in ``directory``, by name: their paths."""
    names = ("refused.sock", "refused2.sock", "allowed.sock", "refused.sockx", "refused.soc")
    socks = []
    try:
        paths = {}
        for name in names:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            socks.append(sock)
            sock.bind(os.path.join(directory, name))
            sock.listen(16)
            paths[name] = os.path.join(directory, name)
        dgram = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        socks.append(dgram)
        dgram.bind(os.path.join(directory, "refused.dgram"))
        paths["refused.dgram"] = os.path.join(directory, "refused.dgram")
        abstract = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        socks.append(abstract)
        abstract.bind(f"\0pvdrun-test-unix-{os.getpid()}")
        abstract.listen(16)
        paths["abstract"] = f"\0pvdrun-test-unix-{os.getpid()}"
        yield paths
    finally:
        for sock in socks:
            sock.close()


@contextlib.contextmanager
def confining(refused: list[str]) -> Iterator[str]:
    """A new cgroup with the program refusing ``refused`` attached; its path.  Detached and
    removed afterwards, whatever happened."""
    path = os.path.join(CGROUP_ROOT, f"pvdrun-test-unix-{os.getpid()}")
    with contextlib.ExitStack() as stack:
        os.mkdir(path)
        stack.callback(os.rmdir, path)
        cgroup_fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        stack.callback(os.close, cgroup_fd)
        prog_fd = unix.load(refused)
        stack.callback(os.close, prog_fd)
        bpf.prog_attach(cgroup_fd, prog_fd, unix.UNIX_CONNECT)
        stack.callback(bpf.prog_detach, cgroup_fd, prog_fd, unix.UNIX_CONNECT)
        assert len(bpf.prog_query(cgroup_fd, unix.UNIX_CONNECT)) == 1
        yield path


Target = tuple[str, bytes, int]


def connect_from(cgroup: str | None, cwd: str, targets: list[Target], pass_fds: tuple[int, ...] = ()) -> list[str]:
    """Run CLIENT, in ``cgroup`` (None: where the test runs), connecting to ``targets``; what
    each connect gave ("ok" or an errno name).  The child inherits ``pass_fds``."""
    argv = [sys.executable, "-c", CLIENT, cwd,
            json.dumps([(kind, address.hex(), length) for kind, address, length in targets])]
    child = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             pass_fds=pass_fds)
    try:
        if cgroup is not None:
            with open(os.path.join(cgroup, "cgroup.procs"), "w") as procs:
                procs.write(str(child.pid))
        out, _ = child.communicate("go\n", timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()  # gone before the cgroup is removed
    assert child.returncode == 0, out
    report = json.loads(out)
    if cgroup is not None:
        assert report["cgroup"] == "/" + os.path.relpath(cgroup, CGROUP_ROOT)
    else:
        assert not report["cgroup"].startswith("/pvdrun-test-unix-")
    return report["results"]


def stream(path: str, tail: bytes = b"\0", length: int | None = None, kind: str = "SOCK_STREAM") -> Target:
    """A connect to ``path``: its bytes then ``tail`` (by default the NUL that most programs
    count in the length), with that length unless another is given."""
    address = os.fsencode(path) + tail
    return kind, address, 2 + len(address) if length is None else length


def test_attach_type_and_layout_are_the_running_kernels() -> None:
    btf = unix.vmlinux()
    assert unix.UNIX_CONNECT == btf.enum_value("bpf_attach_type", "BPF_CGROUP_UNIX_CONNECT")
    assert btf.member_offset(btf.find(unix.KIND_STRUCT, "sockaddr_un"), "sun_path") == 2
    assert unix.available()


def test_paths_that_no_socket_has_are_refused_by_the_writer() -> None:
    for bad in ("", "/a\0b", "/" + "x" * unix.SUN_PATH_MAX):
        with pytest.raises(ValueError):
            unix.unix_connect([bad])
    unix.unix_connect(["/" + "x" * (unix.SUN_PATH_MAX - 1)])  # the longest path fits
    unix.unix_connect([])  # nothing refused: a program that allows everything


def test_longest_and_empty_lists_load() -> None:
    for paths in ([], ["/" + "x" * (unix.SUN_PATH_MAX - 1)], ["/" + "y" * 100, "/run/nscd/socket"]):
        os.close(unix.load(paths))


def test_a_listed_path_is_refused_and_the_others_are_reached(directory: str, listeners: dict[str, str]) -> None:
    refused = [listeners["refused.sock"], listeners["refused2.sock"], listeners["refused.dgram"]]
    targets = [
        # refused: the path with its NUL in the length (Python, libsystemd), without it
        # (SUN_LEN), in a whole zero-padded sockaddr_un (glibc's nscd client), with bytes
        # after the NUL; the second listed path; a datagram socket's connect
        stream(listeners["refused.sock"]),
        stream(listeners["refused.sock"], tail=b""),
        stream(listeners["refused.sock"], length=110),
        stream(listeners["refused.sock"], tail=b"\0junk"),
        stream(listeners["refused2.sock"]),
        stream(listeners["refused.dgram"], kind="SOCK_DGRAM"),
        # reached: another path, an abstract name, a path longer or shorter than a listed one
        stream(listeners["allowed.sock"]),
        stream(listeners["abstract"], tail=b""),
        stream(listeners["refused.sockx"]),
        stream(listeners["refused.soc"]),
        stream(listeners["refused.soc"], tail=b""),
        # a length that cuts the listed path short names the shorter one ("refused.soc")
        stream(listeners["refused.sock"], tail=b"", length=2 + len(listeners["refused.sock"]) - 1),
    ]
    refusal = ["ECONNREFUSED"] * 6
    with confining(refused) as cgroup:
        assert connect_from(cgroup, "/", targets) == refusal + ["ok"] * 6
        # the control: outside the cgroup, every one of these sockets is reached
        assert connect_from(None, "/", targets) == ["ok"] * len(targets)


def test_other_spellings_of_a_listed_path_are_not_caught(directory: str, listeners: dict[str, str]) -> None:
    """The known limit: the hook compares the address as given, before the file system is
    looked at, so other names of the listed socket reach it."""
    listed = listeners["refused.sock"]
    os.symlink(listed, os.path.join(directory, "symlink.sock"))
    os.link(listed, os.path.join(directory, "hardlink.sock"))
    inode_fd = os.open(listed, os.O_PATH | os.O_CLOEXEC)
    try:
        targets = [
            stream(listed),                                    # refused, as listed
            stream("refused.sock"),                            # relative, from its directory
            stream(os.path.join(directory, "symlink.sock")),
            stream(os.path.join(directory, "hardlink.sock")),
            stream("/" + listed),                              # "//"
            stream(os.path.join(directory, ".", "refused.sock")),
            stream(f"/proc/self/fd/{inode_fd}"),               # an O_PATH descriptor
        ]
        with confining([listed]) as cgroup:
            assert connect_from(cgroup, directory, targets, pass_fds=(inode_fd,)) == ["ECONNREFUSED"] + ["ok"] * 6
    finally:
        os.close(inode_fd)


def test_the_cgroup_holds_the_program_by_its_name(listeners: dict[str, str]) -> None:
    """What pvdd would see of the cgroup: one program at the hook, named as strict mode's."""
    with confining([listeners["refused.sock"]]) as cgroup:
        cgroup_fd = os.open(cgroup, os.O_RDONLY | os.O_DIRECTORY)
        try:
            (prog_id,) = bpf.prog_query(cgroup_fd, unix.UNIX_CONNECT)
            prog_fd = bpf.prog_fd_by_id(prog_id)
            try:
                assert bpf.prog_name(prog_fd) == bpf.NAME_PREFIX + "unix"
            finally:
                os.close(prog_fd)
        finally:
            os.close(cgroup_fd)
