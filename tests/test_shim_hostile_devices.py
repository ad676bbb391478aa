"""Hostile programs against the shim: other interfaces named directly.

* multicast joins (IP_ADD_MEMBERSHIP with ip_mreqn or ip_mreq, IP_ADD_SOURCE_MEMBERSHIP,
  IPV6_JOIN_GROUP, MCAST_JOIN_GROUP, MCAST_JOIN_SOURCE_GROUP) naming the other interface,
  by index or by address, and joins that name no interface (the kernel picks one from its
  routes: ispa, the lower metric);
* packet sockets (AF_PACKET): bind and sendto naming the other interface.

Both need two host interfaces: scenario 3 only (in scenario 1 both PvDs are on ``lan0``,
and a membership report or a frame on that link reaches both routers whatever the shim
does).  A capture on ispa's link, proven live by a marker, must see no membership report
for the program's groups and none of its frames; the same program run unscoped is seen
there first.  See fixtures/hostile_lab.py.
"""
from __future__ import annotations

import ipaddress
import secrets
import subprocess
from typing import Iterator

import pytest

from fixtures.hostile_lab import (OTHER, PVD, PVDRUN, HostileEnv, Watch, control_problems, env3,  # noqa: F401
                         finished, hostile_bindir, hostile_user, mismatches, new_token, results, verdict)

pytestmark = pytest.mark.root

WHO = ("root", "user")
#: An address given to ispa's host interface for the test: an ip_mreq naming it names ispa
#: alone (scenario 3's 192.0.2.10 is on both interfaces).
OTHER_ONLY_V4 = "198.18.77.1"

#: hostile_mcast's cases: (IP version, group number N).
MCAST_CASES = {
    "mreqn_other": (4, 1), "mreq_other_addr": (4, 2), "ipv6_join_other": (6, 3),
    "mcast_join_other_v4": (4, 4), "mcast_join_other_v6": (6, 5), "mreqn_other_tied": (4, 6),
    "ipv6_join_other_tied": (6, 7), "source_mreq_other_addr": (4, 8), "mcast_source_join_other_v4": (4, 9),
    "mcast_source_join_other_v6": (6, 10), "mreq_shared_addr": (4, 11),
    "mreqn_any": (4, 20), "mreq_any": (4, 21), "ipv6_join_any": (6, 22), "mcast_join_any_v4": (4, 23),
    "mcast_join_any_v6": (6, 24), "mreqn_own": (4, 25), "ipv6_join_own": (6, 26), "source_mreq_any": (4, 27),
    "mcast_source_join_any_v6": (6, 28),
}


def group(tag: int, case: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    version, n = MCAST_CASES[case]
    if version == 4:
        return ipaddress.IPv4Address(f"239.77.{tag}.{n}")
    return ipaddress.IPv6Address(f"ff15::4d:{tag:x}:{n:x}")


@pytest.fixture
def other_only_address(env3: HostileEnv) -> Iterator[str]:
    """OTHER_ONLY_V4/32 on ispa's host interface for the duration of a test."""
    dev = env3.interface(OTHER)
    env3.lab.exec(["ip", "addr", "add", f"{OTHER_ONLY_V4}/32", "dev", dev], check=True)
    try:
        yield OTHER_ONLY_V4
    finally:
        env3.lab.exec(["ip", "addr", "del", f"{OTHER_ONLY_V4}/32", "dev", dev])


@pytest.mark.parametrize("who", WHO)
def test_multicast_join_on_another_interface(env3: HostileEnv, other_only_address: str, who: str) -> None:
    """Joins naming ispa (index, or an address only ispa has), on fresh and tied sockets:
    ENODEV, and no IGMP/MLD report for the group on ispa's link.  Joins naming no interface
    (index 0, INADDR_ANY) or ispb's own: joined on ispb's link (its report is there, not on
    ispa's).  An ip_mreq naming 192.0.2.10, which both interfaces hold: either answer, but
    never a report on ispa's link."""
    env = env3
    other_if, own_if = env.ifindex(env.interface(OTHER)), env.ifindex(env.interface(PVD))
    shared = env.address(PVD, 4) or ""

    def run(tag: int, scoped: bool) -> subprocess.CompletedProcess:
        return env.run(who, [env.program("hostile_mcast"), str(tag), str(other_if), str(own_if),
                             other_only_address, shared, "1000"], scoped=scoped)

    def reported(watch: Watch, tag: int) -> set[str]:
        """The cases whose group a membership report on watch's link named."""
        seen = {ipaddress.ip_address(g) for g in watch.reported_groups()}
        return {case for case in MCAST_CASES if group(tag, case) in seen}

    control_tag = 1 + secrets.randbelow(125)
    with env.watch(OTHER) as other:
        control = run(control_tag, scoped=False)
    problems = finished(control, "control") + other.live_problems()
    expected_there = [c for c in MCAST_CASES if "_other" in c or "_any" in c]
    missing = sorted(set(expected_there) - reported(other, control_tag))
    if missing:
        problems.append(f"control: unscoped, no report on {OTHER}'s link for {missing}: the test "
                        "cannot fail on them\n" + other.show())

    tag = 126 + secrets.randbelow(125)
    with env.watch(OTHER) as other, env.watch(PVD) as own:
        done = run(tag, scoped=True)
    got = results(done)
    want: dict[str, str | tuple[str, ...]] = {case: "ENODEV" for case in MCAST_CASES if "_other" in case}
    want.update({case: "ok" for case in MCAST_CASES if "_any" in case or "_own" in case})
    want.update({"mreq_shared_addr": ("ok", "ENODEV"), "mreqn_tie": "ok", "join6_tie": "ok"})
    problems += finished(done) + other.live_problems() + own.live_problems() + mismatches(got, want)
    leaked = sorted(reported(other, tag))
    if leaked:
        problems.append(f"LEAK: membership reports on {OTHER}'s link for {leaked}: " + other.show())
    joined = [case for case, result in got.items() if case in MCAST_CASES and result == "ok"]
    missing = sorted(set(joined) - reported(own, tag))
    if missing:
        problems.append(f"joined, but no report on {PVD}'s link: {missing}")
    verdict(problems, control, done)


# ---- packet sockets ----------------------------------------------------------------------

PACKET_OTHER = [f"{kind}_{op}_other" for op in ("sendto", "sendmsg", "sendmmsg") for kind in ("dgram", "raw")]
PACKET_OWN = ["bound_own_sendto_own", "dgram_sendto_own", "raw_sendmsg_own"]


def test_packet_socket_on_another_interface(env3: HostileEnv) -> None:
    """Root (CAP_NET_RAW): an AF_PACKET socket bound to ispa's index: ENODEV; sendto /
    sendmsg / sendmmsg with a sockaddr_ll naming ispa (SOCK_DGRAM, and SOCK_RAW with a
    whole frame), also from a socket bound to ispb: ENODEV, and no frame on ispa's link;
    naming ispb: sent, on ispb's link."""
    env = env3
    other_if, own_if = env.ifindex(env.interface(OTHER)), env.ifindex(env.interface(PVD))

    def argv(token: str) -> list[str]:
        return [env.program("hostile_packet"), token, "cases", str(other_if), str(own_if), env.interface(OTHER)]

    control_token = new_token()
    with env.watch(OTHER) as other:
        control = env.run("root", argv(control_token), scoped=False)
    problems = finished(control, "control") + control_problems(
        other, control_token, PACKET_OTHER + ["bound_own_sendto_other"])

    token = new_token()
    with env.watch(OTHER) as other, env.watch(PVD) as own:
        done = env.run("root", argv(token))
    got = results(done)
    want: dict[str, str | tuple[str, ...]] = {case: "ENODEV" for case in PACKET_OTHER}
    want.update({"bind_other": "ENODEV", "bind_own": "ok", "bound_own_sendto_other": "ENODEV"})
    want.update({case: "ok" for case in PACKET_OWN})
    # beyond the contract: the obsolete socket(AF_INET, SOCK_PACKET) is a packet socket too;
    # refused at socket() (EACCES), or its send through ispa's device refused (ENODEV)
    want["sock_packet_socket"] = ("ok", "EACCES")
    if got.get("sock_packet_socket") == "ok":
        want["sock_packet_sendto_other"] = "ENODEV"
    problems += finished(done) + other.leak_problems(token) + mismatches(got, want)
    problems += own.live_problems() + [f"not on {PVD}'s link: {c}" for c in own.missing(token, PACKET_OWN)]
    verdict(problems, control, done)


def test_packet_socket_in_the_null_pvd(env3: HostileEnv) -> None:
    """``pvdrun --pvd null``: socket(AF_PACKET, ...) fails with EACCES, as inet sockets do
    (and the obsolete socket(AF_INET, SOCK_PACKET)).  Unscoped, root gets them."""
    env = env3
    argv = [env.program("hostile_packet"), new_token(), "null"]
    control = env.lab.exec(argv)
    done = env.lab.exec([PVDRUN, "--pvd", "null", "--", *argv])
    cases = ["socket_packet_dgram", "socket_packet_raw", "socket_inet_sock_packet"]
    problems = finished(control, "control") + mismatches(results(control), {c: "ok" for c in cases})
    problems += finished(done) + mismatches(results(done), {c: "EACCES" for c in cases})
    verdict(problems, control, done)
