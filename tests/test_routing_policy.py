"""Policy (R23) with a real unprivileged user, in lab scenario 3 (two host interfaces).

pvd.toml restricts the PvD of ``ispb`` to root.  A user created for the test cannot reach
it through the shim (pvdd refuses the mark: EACCES), nor by binding the device or one of
its source addresses itself (pvdd's ``oif``/``from ... unreachable`` rules), and setting a
mark needs CAP_NET_ADMIN.  Root can; after the user is added to the policy and pvdd
reloads (SIGHUP), the user can too.  The installed Python lives under /root, which the
user cannot read: the user side runs system tools (socat, curl) with the shim copied to
a world-readable directory.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from typing import Any, Iterator

import pytest

from fixtures.unprivileged import User, readable_shim_dir
from fixtures.pvdd_lab import PvddInLab, rules

pytestmark = pytest.mark.root


def policy(users: list[str]) -> str:
    listed = ", ".join(f'"{u}"' for u in users)
    return ("[pvd.secure]\ninterface = \"ispb\"\nrestricted = true\n"
            f"users = [{listed}]\n\n[pvd.open]\ninterface = \"ispa\"\n")


@pytest.fixture(scope="module")
def user() -> Iterator[User]:
    created = User()
    try:
        yield created
    finally:
        created.remove()


@pytest.fixture(scope="module")
def shim_copy() -> Iterator[str]:
    with readable_shim_dir("pvdshim") as directory:
        yield os.path.join(directory, "libpvdshim.so")


@pytest.fixture(scope="module")
def pvdd3(lab3: Any, user: User) -> Iterator[PvddInLab]:
    daemon = PvddInLab(lab3, policy(["root"]))
    try:
        yield daemon.start()
    finally:
        daemon.cleanup()


def as_user(lab: Any, user: User, args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run args in the lab's host namespace as ``user`` (no groups, no capabilities)."""
    return lab.exec(user.drop(args, env), timeout=30)


def shim_env(daemon: PvddInLab, shim: str, name: str) -> dict[str, str]:
    return {"LD_PRELOAD": shim, "PVDRUN_SCOPE": daemon.pvd(name)["scope"], "PVDRUN_SOCKET": daemon.socket}


def nft_table(lab: Any) -> str:
    """pvdd's nftables table in the lab's host namespace ("" when there is none)."""
    done = lab.exec(["nft", "list", "table", "inet", "pvdd"])
    return done.stdout if done.returncode == 0 else ""


def test_nftables_table_lifecycle(lab3: Any) -> None:
    """pvdd installs its table for the restricted PvD, a crashed pvdd's table is replaced by the
    next one, stopping keeps it (the restricted PvD's unmarked packets stay dropped while pvdd
    is away) and ``pvdrun daemon --cleanup`` removes it. Runs before the module's pvdd3 exists
    (one pvdd at a time)."""
    daemon = PvddInLab(lab3, policy(["root"]))
    try:
        daemon.start()
        secure = daemon.pvd("secure")
        mark = secure["mark"]
        table = lab3.refresh() and nft_table(lab3)
        assert f'oifname "ispb" meta mark & 0x0000ffff != 0x{mark:08x} drop' in table, table
        v6 = lab3.host_address("ispb", 6)
        assert f"ip6 saddr {v6} meta mark & 0x0000ffff != 0x{mark:08x} drop" in table, table
        # scenario 3's IPv4 plans overlap (both PvDs hold 192.0.2.10): no source rule for it
        assert "ip saddr" not in table, table
        output = table.split("chain output")[1].split("chain ")[0]
        assert "ispa" not in output.replace("jump marked_", "")  # no filter on the unrestricted PvD's link
        # only its marked packets stay on it (pvdd writes indexes; nft lists them by name)
        assert 'oif != { "lo", "ispa" } drop' in table, table
        # arriving packets get their PvD's mark (the kernel's replies take its table), the
        # unrestricted PvD's too
        assert 'iifname "ispa" meta mark & 0x0000ffff == 0x00000000 meta mark set' in table, table
        daemon.kill()
        assert nft_table(lab3)  # a crash leaves it
        daemon.start()
        assert "replacing the nftables table an earlier pvdd left" in daemon.log_text()
        assert table.count("chain output") == nft_table(lab3).count("chain output") == 1
        assert daemon.stop() == 0
        kept = nft_table(lab3)  # kept while pvdd is away, and no pvdd mark leaves
        assert f'oifname "ispb" meta mark & 0x0000ffff != 0x{mark:08x} drop' in kept, kept
        assert re.search(rf"meta mark & 0x0000ffff == {{ [^}}]*0x{mark:08x}[^}}]* }} drop", kept), kept
        assert "meta mark set" not in kept, kept  # no arriving packet marked for a PvD whose lookup is gone
        assert daemon.remove_state().returncode == 0
        assert nft_table(lab3) == ""
    finally:
        daemon.cleanup()
    assert nft_table(lab3) == ""


def test_restricted_pvd_gets_a_mark_and_no_device_rule(lab3: Any, pvdd3: PvddInLab) -> None:
    secure, open_ = pvdd3.pvd("secure"), pvdd3.pvd("open")
    assert secure["mark"] and secure["attributes"]["policy"]["restricted"] is True
    assert open_["mark"] == 0  # scenario 3 keeps the device-binding hot path: no mark
    six = rules(lab3)
    assert any(line.endswith("from all oif ispb unreachable proto 153") for line in six), six
    assert any("from all oif ispa lookup" in line for line in six), six


def test_user_refused_through_the_shim(lab3: Any, pvdd3: PvddInLab, user: User, shim_copy: str) -> None:
    service = lab3.isp("ispb")["service_v6"]
    done = as_user(lab3, user, ["socat", "-u", "OPEN:/dev/null", f"TCP6:[{service}]:80"],
                   shim_env(pvdd3, shim_copy, "secure"))
    assert done.returncode != 0 and "Permission denied" in done.stderr, done.stderr


def test_root_allowed_through_the_shim(lab3: Any, pvdd3: PvddInLab, shim_copy: str) -> None:
    for service in (lab3.isp("ispb")["service_v6"], lab3.isp("ispb")["service_v4"]):
        url = f"http://[{service}]/" if ":" in service else f"http://{service}/"
        done = lab3.exec(["curl", "-sS", "-m", "10", url], env=shim_env(pvdd3, shim_copy, "secure"))
        assert done.returncode == 0 and done.stdout.startswith("ispb "), (done.stdout, done.stderr)


def test_user_cannot_bypass_by_device_or_source(lab3: Any, pvdd3: PvddInLab, user: User) -> None:
    b6 = lab3.isp("ispb")["service_v6"]
    b_addr = lab3.host_address("ispb", 6)
    b4 = lab3.isp("ispb")["service_v4"]
    # IPv4 with only a device bound: Linux treats a failed IPv4 lookup of a device-bound socket
    # as "on-link" and sends anyway; pvdd's nftables table drops its unmarked packets.
    for args in (["--interface", "ispb", f"http://[{b6}]/"], ["--interface", b_addr, f"http://[{b6}]/"],
                 ["--interface", "ispb", f"http://{b4}/"]):
        done = as_user(lab3, user, ["curl", "-sS", "-m", "5", *args])
        assert done.returncode != 0 and "ispb" not in done.stdout, (args, done.stdout, done.stderr)
    # the table is what stops the IPv4 one: without it the same request gets through
    lab3.exec(["nft", "delete", "table", "inet", "pvdd"], check=True)
    try:
        leak = as_user(lab3, user, ["curl", "-sS", "-m", "5", "--interface", "ispb", f"http://{b4}/"])
        assert leak.returncode == 0 and leak.stdout.startswith("ispb "), (leak.stdout, leak.stderr)
    finally:
        pvdd3.proc.send_signal(signal.SIGHUP)  # a reload re-syncs: the table comes back
        deadline = time.monotonic() + 10
        while not nft_table(lab3) and time.monotonic() < deadline:
            time.sleep(0.2)
    assert nft_table(lab3)
    control = as_user(lab3, user, ["curl", "-sS", "-m", "10", "--interface", "ispa",
                                   f"http://[{lab3.isp('ispa')['service_v6']}]/"])
    assert control.returncode == 0 and control.stdout.startswith("ispa "), (control.stdout, control.stderr)


SET_MARK_C = r"""
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <netinet/in.h>
int main(int argc, char **argv)
{
    int fd = socket(AF_INET6, SOCK_STREAM, 0), mark = atoi(argv[1]);
    if (setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof mark) < 0) {
        printf("errno %d\n", errno);
        return 1;
    }
    puts("marked");
    return 0;
}
"""


def test_user_cannot_set_a_mark(lab3: Any, pvdd3: PvddInLab, user: User, shim_copy: str) -> None:
    """SO_MARK needs CAP_NET_ADMIN: the user's own attempt fails with EPERM."""
    directory = os.path.dirname(shim_copy)
    source, program = os.path.join(directory, "set_mark.c"), os.path.join(directory, "set_mark")
    with open(source, "w", encoding="utf-8") as handle:
        handle.write(SET_MARK_C)
    subprocess.run(["gcc", "-o", program, source], check=True)
    os.chmod(program, 0o755)
    mark = str(pvdd3.pvd("secure")["mark"])
    done = as_user(lab3, user, [program, mark])
    assert done.returncode == 1 and done.stdout.strip() == "errno 1", (done.stdout, done.stderr)
    assert lab3.exec([program, mark]).stdout.strip() == "marked"  # root may: the test can fail


def test_user_added_to_policy_is_allowed_after_reload(lab3: Any, pvdd3: PvddInLab, user: User,
                                                      shim_copy: str) -> None:
    with open(pvdd3.config, "w", encoding="utf-8") as handle:
        handle.write(policy(["root", user.name]))
    assert pvdd3.proc is not None
    pvdd3.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 15
    while user.name not in pvdd3.pvd("secure")["attributes"]["policy"]["users"]:
        assert time.monotonic() < deadline, pvdd3.log_text()
        time.sleep(0.2)
    service = lab3.isp("ispb")["service_v6"]
    done = as_user(lab3, user, ["curl", "-sS", "-m", "10", f"http://[{service}]/"],
                   shim_env(pvdd3, shim_copy, "secure"))
    assert done.returncode == 0 and done.stdout.startswith("ispb "), (done.stdout, done.stderr)
