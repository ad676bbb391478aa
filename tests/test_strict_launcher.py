"""Strict mode without pvdd: the launcher, as root, holds a program in its PvD by itself (device
binding in a cgroup of the PvD); as a user it cannot, and a program the shim cannot scope is
refused with what is missing.

A namespace ``host`` with two links: ``sa0`` (PvD ``sa0``, alone on it, to namespace ``a``) and
``sb0`` (to namespace ``b``), the main table's default route through ``b``.  A program scoped to
``sa0`` that sends to 203.0.113.9 (routed by nothing on ``sa0``) must leave nothing on ``b``'s
side: captures (fixtures/capture.py, proven live by markers) on ``b``, with the same program
unscoped as the control the same verdict catches there (``b`` holds 203.0.113.9 and refuses
connections to it at once).
"""
from __future__ import annotations

import os
import subprocess
import sys
from typing import Any, Iterator

import pytest

from fixtures.capture import LinkCapture, assert_caught, assert_no_leak
from fixtures.commands import PVDRUN
from fixtures.netns import IP, Namespaces, sh
from fixtures.strict_programs import busybox_wget, empty_env_child, go_httpget, syscall_connect, uring_connect
from fixtures.unprivileged import User, unprivileged_user  # noqa: F401 (fixture)

pytestmark = pytest.mark.root

FAR = "203.0.113.9"
RULES = {"destinations": [FAR], "sources": ["10.51.0.2"]}
SOCKETS = ("import socket\nfor f in (socket.AF_INET, socket.AF_INET6):\n"
           "    try: socket.socket(f, socket.SOCK_DGRAM); print('open')\n"
           "    except OSError as e: print(e.errno)\n"
           "a, b = socket.socketpair(); a.send(b'ok'); print(b.recv(2).decode())")


class Net:
    def __init__(self, spaces: Namespaces) -> None:
        tag = f"pvs{os.getpid() % 100000}"
        self.host, self.a, self.b = (spaces.add(f"{tag}{role}") for role in ("h", "a", "b"))
        spaces.veth(self.host, "sa0", self.a, "a0", ["10.51.0.2/24"], ["10.51.0.1/24"])
        spaces.veth(self.host, "sb0", self.b, "b0", ["10.52.0.2/24"], ["10.52.0.1/24"])
        sh(IP, "-n", self.host, "route", "add", "default", "via", "10.52.0.1")
        sh(IP, "-n", self.b, "addr", "add", f"{FAR}/32", "dev", "lo")  # b refuses at once (RST)
        self.spaces = spaces
        inode = sh("stat", "-L", "-c", "%i", "/proc/self/ns/net", ns=self.host).stdout.strip()
        self.netns_dir = os.path.join(_mount(), "pvdrun", f"net-{inode}")

    def run(self, argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        env = {**os.environ, "PVDRUN_SOCKET": "/nonexistent/pvdd.sock", **(env or {})}
        return self.spaces.run(self.host, argv, env=env, timeout=60)

    def capture_b(self) -> LinkCapture:
        return LinkCapture(self.b, "b0", label="b")

    def capture_a(self) -> LinkCapture:
        return LinkCapture(self.a, "a0", label="a")


def _mount() -> str:
    from pvdrun.strict.cgroups import cgroup2_mount

    mount = cgroup2_mount()
    assert mount, "no cgroup2 hierarchy"
    return mount


@pytest.fixture(scope="module")
def net() -> Iterator[Net]:
    with Namespaces() as spaces:
        net = Net(spaces)
        try:
            yield net
        finally:
            spaces.run(net.host, [PVDRUN, "daemon", "--cleanup", "--socket", "/nonexistent/pvdd.sock"])
            assert not os.path.exists(net.netns_dir), os.listdir(net.netns_dir)


def scoped(net: Net, *argv: str, strict: bool = False) -> subprocess.CompletedProcess:
    return net.run([PVDRUN, "--pvd", "sa0", *(["--strict"] if strict else []), *argv])


def test_static_go_program_runs_in_strict_mode_with_one_line_and_leaves_nothing_elsewhere(net: Net) -> None:
    go = go_httpget()
    with net.capture_b() as other, net.capture_a() as own:
        done = scoped(net, go, f"http://{FAR}/")
    assert_no_leak(other, done.stdout, done.stderr, **RULES)
    assert done.returncode == 1, (done.stdout, done.stderr)  # nothing answers on sa0's link
    notes = [line for line in done.stderr.splitlines() if "strict mode" in line]
    assert len(notes) == 1 and "Go program" in notes[0] and "running it in strict mode" in notes[0], done.stderr
    assert any(FAR in line for line in own.lines), own.lines  # it tried on its own link (ARP)


def test_control_the_same_program_unscoped_is_caught(net: Net) -> None:
    with net.capture_b() as other:
        done = net.run([go_httpget(), f"http://{FAR}/"])
    assert_caught(other, done.stdout, done.stderr, **RULES)


@pytest.mark.parametrize("program", ["syscall", "uring", "empty-env-curl", "busybox"])
def test_kernel_paths_the_shim_cannot_see_stay_inside(net: Net, program: str) -> None:
    argv = {"syscall": [syscall_connect(), FAR, "80", "x"],
            "uring": [uring_connect(), FAR, "80", "x"],
            "empty-env-curl": [empty_env_child(), "/usr/bin/curl", "-s", "-m", "3", f"http://{FAR}/"],
            "busybox": [*busybox_wget(), "-q", "-O-", f"http://{FAR}/"]}[program]  # (its -T crashes it)
    with net.capture_b() as other:
        done = scoped(net, *argv, strict=True)
    assert_no_leak(other, done.stdout, done.stderr, **RULES)
    assert done.returncode != 0 and "connected" not in done.stdout, (done.stdout, done.stderr)
    with net.capture_b() as control:
        unscoped = net.run(argv)
    assert_caught(control, unscoped.stdout, unscoped.stderr, **RULES)


def test_the_program_is_in_its_pvds_cgroup_and_so_are_its_children(net: Net) -> None:
    busybox = busybox_wget()[0]
    done = scoped(net, busybox, "sh", "-c", "cat /proc/self/cgroup; busybox sh -c 'cat /proc/self/cgroup'")
    assert done.returncode == 0, done.stderr
    paths = [line[3:] for line in done.stdout.splitlines() if line.startswith("0::")]
    assert len(paths) == 2 and paths[0] == paths[1], done.stdout
    assert paths[0].startswith(f"/pvdrun/{os.path.basename(net.netns_dir)}/pvd-"), paths


def test_loopback_is_refused_without_pvdd(net: Net) -> None:
    """Device binding sends a datagram to 127/8 out of the device: refused (ENETUNREACH)."""
    code = ("import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            "try: s.connect(('127.0.0.1', 9)); print('connected')\nexcept OSError as e: print(e.errno)")
    done = scoped(net, empty_env_child(), sys.executable, "-c", code, strict=True)
    assert done.stdout.split() == ["101"], (done.stdout, done.stderr)


def test_null_pvd_strict_opens_no_socket_even_without_the_shim(net: Net) -> None:
    done = net.run([PVDRUN, "--pvd", "null", "--strict", empty_env_child(), sys.executable, "-c", SOCKETS])
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["101", "101", "ok"]  # ENETUNREACH twice; AF_UNIX untouched


def test_no_strict_refuses_as_before(net: Net) -> None:
    done = scoped(net, "--no-strict", go_httpget(), f"http://{FAR}/")
    assert done.returncode == 4 and "refusing to run unscoped" in done.stderr, done.stderr


def test_user_without_pvdd_is_refused_and_told_what_is_missing(net: Net, unprivileged_user: User) -> None:
    launch = ["-m", "pvdrun.cli", "--pvd", "sa0", go_httpget(), f"http://{FAR}/"]
    done = net.run(unprivileged_user.python(launch, {"PVDRUN_SOCKET": "/nonexistent/pvdd.sock"}))
    assert done.returncode == 4, (done.stdout, done.stderr)
    assert done.stderr.count("\n") == 1 and "strict mode needs pvdd (none answers) or root" in done.stderr
    forced = net.run(unprivileged_user.python(["-m", "pvdrun.cli", "--pvd", "sa0", "--strict", "true"],
                                              {"PVDRUN_SOCKET": "/nonexistent/pvdd.sock"}))
    assert forced.returncode == 4 and "needs pvdd" in forced.stderr, forced.stderr


def test_cgroups_are_kept_while_held_and_listed(net: Net) -> None:
    proc = net.spaces.popen(net.host, [PVDRUN, "--pvd", "sa0", "--strict", "sleep", "30"],
                            env={**os.environ, "PVDRUN_SOCKET": "/nonexistent/pvdd.sock"})
    try:
        from fixtures.netns import wait_for

        def held() -> Any:
            listed = net.run([PVDRUN, "list", "--json"])
            import json

            return json.loads(listed.stdout)["strict"]["processes"].get("implicit:sa0") if listed.returncode == 0 else None
        wait_for(lambda: held() == 1, what="pvdrun list counting the held process")
        kept = net.run([PVDRUN, "daemon", "--cleanup", "--socket", "/nonexistent/pvdd.sock"])
        assert kept.returncode == 0 and "kept strict cgroup" in kept.stdout, (kept.stdout, kept.stderr)
    finally:
        proc.kill()
        proc.wait()


def test_root_without_the_capabilities_for_bpf_is_told_so(net: Net) -> None:
    """Root whose capabilities exclude CAP_BPF and CAP_SYS_ADMIN (as a narrow unit would leave
    it): list says strict mode is unavailable and why; a Go program is refused (exit 4)."""
    narrow = ["setpriv", "--bounding-set", "-bpf,-sys_admin", "--inh-caps", "-bpf,-sys_admin"]
    listed = net.run([*narrow, PVDRUN, "list", "--no-daemon"])
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[-1].startswith(
        "strict mode: unavailable (the kernel refuses this process BPF cgroup programs"), listed.stdout
    refused = net.run([*narrow, PVDRUN, "--pvd", "sa0", go_httpget(), f"http://{FAR}/"])
    assert refused.returncode == 4, (refused.stdout, refused.stderr)
    # what is missing first: here (ip netns exec hides /sys/fs/cgroup) the cgroup2 mount
    assert "refusing to run unscoped" in refused.stderr and "strict mode is unavailable" in refused.stderr
    assert "BPF cgroup programs" in refused.stderr or "cannot mount the cgroup2 hierarchy" in refused.stderr, \
        refused.stderr
