"""pvdd as a systemd service: the console script ``pvdd``, the unit ``pvdrun install-service``
writes (the installed pvdd's real path, Type=notify, its hardening as systemd-analyze scores it)
and the readiness protocol (READY=1 once pvdd answers, STOPPING=1 when it stops), with a
datagram socket of the test's own as the service manager."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.commands import PVDD, PVDRUN

from pvdrun import sdnotify
from pvdrun.data import UNIT_NAME
from pvdrun.data.unit import exec_quote, files_run, in_home, render

#: The console script installed beside the pvdrun the tests run.
#: systemd-analyze security's exposure for the unit, as docs/security.md ("The pvdd unit")
#: gives it: what pvdd's work leaves after every directive it can take (goal 2.5, not met).
EXPOSURE = 3.3
#: The same with pvdd's files in a home directory (ProtectHome=read-only).
EXPOSURE_READING_HOME = 3.4
#: The checks the unit fails, each for a reason docs/security.md gives.
FAILED_CHECKS = {
    "SystemCallFilter=~@privileged", "RootDirectory=/RootImage=", "User=/DynamicUser=",
    "PrivateDevices=", "ProtectClock=", "ProtectControlGroups=", "CapabilityBoundingSet=~CAP_BPF",
    "ProtectKernelTunables=", "RestrictAddressFamilies=~AF_NETLINK", "RestrictAddressFamilies=~AF_UNIX",
    "RestrictAddressFamilies=~AF_(INET|INET6)", "Delegate=", "DeviceAllow=",
    "CapabilityBoundingSet=~CAP_NET_ADMIN", "ProtectProc=", "ProcSubset=",
    "CapabilityBoundingSet=~CAP_NET_(BIND_SERVICE|BROADCAST|RAW)", "CapabilityBoundingSet=~CAP_SYS_ADMIN",
    "PrivateNetwork=", "PrivateUsers=", "IPAddressDeny=",
}


def install_service(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PVDRUN, "install-service", *args], check=False, capture_output=True, text=True, timeout=60)


# -- the unit ------------------------------------------------------------------------------

def test_print_names_the_installed_pvdd() -> None:
    done = install_service("--print")
    assert done.returncode == 0, done.stderr
    real = os.path.realpath(PVDD)
    assert os.path.isfile(real) and os.access(real, os.X_OK)
    execs = [line for line in done.stdout.splitlines() if line.startswith("ExecStart=")]
    assert len(execs) == 1
    program = execs[0].removeprefix("ExecStart=").split()[0]
    assert os.path.realpath(program) == real, execs
    assert "/usr/local/bin" not in done.stdout and "@PVDD@" not in done.stdout
    for line in ("Type=notify", "Delegate=yes", "KillMode=process", "RuntimeDirectory=pvd",
                 "CapabilityBoundingSet=CAP_NET_RAW CAP_NET_ADMIN CAP_BPF CAP_SYS_ADMIN"):
        assert line in done.stdout.splitlines(), line


def test_dest_writes_the_unit(tmp_path: Path) -> None:
    done = install_service("--dest", str(tmp_path / "units"))
    assert done.returncode == 0, done.stderr
    unit = tmp_path / "units" / UNIT_NAME
    assert unit.read_text() == install_service("--print").stdout
    assert unit.stat().st_mode & 0o777 == 0o644
    assert f"wrote {unit}" in done.stdout


def test_dest_not_writable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    done = install_service("--dest", str(blocker))
    assert done.returncode == 1, done
    last = done.stderr.splitlines()[-1]  # after the note on a pvdd in a home directory, if any
    assert last.startswith(f"pvdrun install-service: cannot write {blocker}/{UNIT_NAME}: "), done.stderr


def test_exec_quote() -> None:
    assert exec_quote("/usr/bin/pvdd") == "/usr/bin/pvdd"
    assert exec_quote("/opt/my env/bin/pvdd") == '"/opt/my env/bin/pvdd"'
    assert exec_quote("/opt/100%/$x/pvdd") == "/opt/100%%/$$x/pvdd"
    with pytest.raises(ValueError):
        render("bin/pvdd")


def test_home_directories() -> None:
    """A pvdd whose files live in a home directory gets a unit that can read them."""
    assert in_home("/root/.venv/bin/pvdd") and in_home("/home") and in_home("/run/user/1000/x")
    assert not in_home("/opt/pvdrun/bin/pvdd") and not in_home("/homeless/pvdd")
    assert "ProtectHome=yes" in render("/opt/pvdrun/bin/pvdd").splitlines()
    reading = render("/root/.venv/bin/pvdd", reads_home=True).splitlines()
    assert "ProtectHome=read-only" in reading and "ProtectHome=yes" not in reading
    paths = files_run(PVDD)
    assert paths[0] == os.path.realpath(PVDD) and len(paths) == 3
    done = install_service("--print")
    wanted = "ProtectHome=read-only" if any(in_home(p) for p in paths) else "ProtectHome=yes"
    assert wanted in done.stdout.splitlines()
    assert ("ProtectHome=read-only" in done.stderr) == (wanted == "ProtectHome=read-only")


def exposure(unit: Path) -> tuple[float, set[str], str]:
    """systemd-analyze security's overall exposure of ``unit``, its failed checks, its report."""
    done = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager", str(unit)],
                          check=False, capture_output=True, text=True, timeout=60)
    score = re.search(r"Overall exposure level for \S+: ([0-9.]+)", done.stdout)
    assert score, done.stdout + done.stderr
    failed = {line.split()[1] for line in done.stdout.splitlines() if line.startswith("✗")}
    return float(score.group(1)), failed, done.stdout


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_hardening_score(tmp_path: Path) -> None:
    """The score and the failed checks are the ones docs/security.md explains; a directive
    dropped or added changes one of them and fails here."""
    unit = tmp_path / UNIT_NAME
    unit.write_text(render("/opt/pvdrun/bin/pvdd"))
    score, failed, report = exposure(unit)
    assert failed == FAILED_CHECKS, report
    assert score == EXPOSURE, report
    unit.write_text(render("/root/.venv/bin/pvdd", reads_home=True))
    score, failed, report = exposure(unit)
    assert failed == FAILED_CHECKS | {"ProtectHome="}, report
    assert score == EXPOSURE_READING_HOME, report


# -- sd_notify ---------------------------------------------------------------------------------

@pytest.fixture
def manager(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A service manager's notification socket: a datagram socket bound to a path."""
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(120)  # pvdd's start on a loaded machine; it answers in well under a second
        yield sock, path


def test_notify_path(manager: tuple[socket.socket, str]) -> None:
    sock, path = manager
    assert sdnotify.notify("READY=1\nSTATUS=up", {"NOTIFY_SOCKET": path})
    assert sock.recv(4096) == b"READY=1\nSTATUS=up"


def test_notify_abstract() -> None:
    name = f"pvdrun-test-{os.getpid()}-{time.monotonic_ns()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(10)
        assert sdnotify.notify("STOPPING=1", {"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(4096) == b"STOPPING=1"


def test_notify_without_manager(tmp_path: Path) -> None:
    assert sdnotify.notify("READY=1", {}) is False
    assert sdnotify.notify("READY=1", {"NOTIFY_SOCKET": ""}) is False
    with pytest.raises(ValueError):
        sdnotify.notify("READY=1", {"NOTIFY_SOCKET": "relative/path"})
    with pytest.raises(OSError):
        sdnotify.notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "nobody")})


def test_pvdd_help() -> None:
    done = subprocess.run([PVDD, "--help"], check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Usage: pvdd [OPTIONS]")
    daemon = subprocess.run([PVDRUN, "daemon", "--help"], check=False, capture_output=True, text=True, timeout=60)
    options = lambda text: re.findall(r"^\s+(?:-\w, )?(--[a-z-]+)", text, re.MULTILINE)
    assert options(done.stdout) == options(daemon.stdout)


def test_pvdd_bad_option_says_pvdd() -> None:
    done = subprocess.run([PVDD, "--log-level", "loud"], check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.startswith("pvdd: Invalid value for '--log-level'"), done.stderr
    assert len(done.stderr.splitlines()) == 1 and "(pvdd --help shows the usage)" in done.stderr


def ask_list(path: str) -> dict:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(path)
        sock.sendall(b'{"v": 1, "op": "list"}\n')
        return json.loads(sock.makefile("rb").readline())


@pytest.mark.root
def test_pvdd_ready_and_stopping(manager: tuple[socket.socket, str], tmp_path: Path) -> None:
    """pvdd in a network namespace of its own, told to notify the test's socket: READY=1 comes
    once, after which pvdd answers at once; ps shows pvdd; SIGTERM brings STOPPING=1 and exit 0."""
    sock, path = manager
    config = tmp_path / "pvd.toml"
    config.write_text("")
    pvdd_socket = str(tmp_path / "pvdd.sock")
    env = {**os.environ, "NOTIFY_SOCKET": path}
    with open(tmp_path / "pvdd.log", "wb") as log:
        proc = subprocess.Popen(["unshare", "--net", "--", PVDD, "--socket", pvdd_socket,
                                 "--config", str(config)], env=env, stdout=log, stderr=log)
    try:
        message = sock.recv(4096).decode()
        assert message.splitlines()[0] == "READY=1", message
        assert f"STATUS=serving 0 PvDs on {pvdd_socket}" in message.splitlines()
        assert ask_list(pvdd_socket)["ok"] is True
        with open(f"/proc/{proc.pid}/comm", encoding="ascii") as comm:
            assert comm.read().strip() == "pvdd"
        proc.send_signal(signal.SIGTERM)
        assert sock.recv(4096) == b"STOPPING=1"
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        print((tmp_path / "pvdd.log").read_text())
    assert not os.path.exists(pvdd_socket)


# -- the unit's system call filter, without systemd ------------------------------------------------

#: A wrapper that applies the unit's seccomp filter (the calls listed in a file allowed, anything
#: else EPERM), MemoryDenyWriteExecute as systemd 252 writes it (no mmap both writable and
#: executable, no mprotect adding PROT_EXEC) and NoNewPrivileges, then runs its arguments.
FILTER_C = r"""
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc < 4) return 2;
    int mdwe = strcmp(argv[2], "mdwe") == 0;
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
    FILE *list = fopen(argv[1], "r");
    char name[128];
    while (list && fscanf(list, "%127s", name) == 1) {
        int nr = seccomp_syscall_resolve_name(name);
        if (nr == __NR_SCMP_ERROR) continue;
        if (mdwe && (nr == SCMP_SYS(mmap) || nr == SCMP_SYS(mprotect) || nr == SCMP_SYS(pkey_mprotect)))
            continue;
        seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
    }
    if (mdwe) {
        int wx = PROT_WRITE | PROT_EXEC;
        seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1, SCMP_A2(SCMP_CMP_MASKED_EQ, wx, 0));
        seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1, SCMP_A2(SCMP_CMP_MASKED_EQ, wx, PROT_WRITE));
        seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1, SCMP_A2(SCMP_CMP_MASKED_EQ, wx, PROT_EXEC));
        seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
        seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(pkey_mprotect), 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || seccomp_load(ctx) != 0) { perror("filter"); return 2; }
    execvp(argv[3], argv + 3);
    perror("exec");
    return 127;
}
"""


def syscall_group(name: str, seen: set[str] | None = None) -> set[str]:
    """The system calls of a systemd group (``@system-service``), its groups expanded."""
    seen = set() if seen is None else seen
    listed = subprocess.run(["systemd-analyze", "syscall-filter", "--no-pager", name], capture_output=True,
                            text=True, timeout=60, check=True).stdout.splitlines()[1:]
    calls: set[str] = set()
    for word in (line.strip() for line in listed):
        if word.startswith("@") and word not in seen:
            seen.add(word)
            calls |= syscall_group(word, seen)
        elif word and not word.startswith(("#", "@")):
            calls.add(word)
    return calls


def unit_filter(unit: str) -> set[str]:
    """The system calls the unit's SystemCallFilter= lines allow (the first line an allow list;
    then ``~`` removes, anything else adds)."""
    allowed: set[str] = set()
    for line in unit.splitlines():
        if not line.startswith("SystemCallFilter="):
            continue
        value = line.removeprefix("SystemCallFilter=")
        remove = value.startswith("~")
        for word in value.removeprefix("~").split():
            calls = syscall_group(word) if word.startswith("@") else {word}
            allowed = allowed - calls if remove else allowed | calls
    return allowed


@pytest.mark.root
@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
@pytest.mark.skipif(not os.path.exists("/usr/include/seccomp.h"), reason="no libseccomp-dev")
def test_pvdd_under_the_units_filter(manager: tuple[socket.socket, str], tmp_path: Path) -> None:
    """pvdd under the unit's system call filter and MemoryDenyWriteExecute (applied by a small
    wrapper, as systemd would) starts, says READY=1, answers, has strict mode available (its
    cgroup programs loaded with bpf()) and stops cleanly; a call the filter refuses fails."""
    unit = render("/opt/pvdrun/bin/pvdd")
    assert "MemoryDenyWriteExecute=yes" in unit.splitlines()
    allowed = unit_filter(unit)
    assert "bpf" in allowed and "mount" not in allowed and "setuid" not in allowed
    (tmp_path / "allowed").write_text("\n".join(sorted(allowed)))
    (tmp_path / "filter.c").write_text(FILTER_C)
    wrapper = tmp_path / "filter"
    subprocess.run([os.environ.get("CC", "cc"), "-O1", "-o", str(wrapper), str(tmp_path / "filter.c"),
                    "-lseccomp"], check=True, capture_output=True, timeout=120)
    refused = subprocess.run([str(wrapper), str(tmp_path / "allowed"), "mdwe", sys.executable, "-c",
                              "import mmap; mmap.mmap(-1, 4096, prot=7)"], check=False, capture_output=True, text=True)
    assert refused.returncode == 1 and "Operation not permitted" in refused.stderr, refused

    sock, path = manager
    config = tmp_path / "pvd.toml"
    config.write_text("")
    pvdd_socket = str(tmp_path / "pvdd.sock")
    with open(tmp_path / "pvdd.log", "wb") as log:
        proc = subprocess.Popen(["unshare", "--net", "--", str(wrapper), str(tmp_path / "allowed"), "mdwe",
                                 PVDD, "--socket", pvdd_socket, "--config", str(config)],
                                env={**os.environ, "NOTIFY_SOCKET": path}, stdout=log, stderr=log)
    try:
        assert sock.recv(4096).decode().startswith("READY=1\n")
        reply = ask_list(pvdd_socket)
        assert reply["ok"] is True and reply["strict"]["available"] is True, reply
        with open(f"/proc/{proc.pid}/status", encoding="ascii") as status:
            assert "Seccomp:\t2" in status.read()
        proc.send_signal(signal.SIGTERM)
        assert sock.recv(4096) == b"STOPPING=1"
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        print((tmp_path / "pvdd.log").read_text())
