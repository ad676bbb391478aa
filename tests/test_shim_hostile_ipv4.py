"""Hostile programs against the shim: AF_UNSPEC destinations, descriptors beyond the
shim's table.

* Linux's ``udp_sendmsg`` takes a destination whose ``sin_family`` is AF_UNSPEC (0: a
  program that forgot to set it) as AF_INET; the shim must treat it so (tie the socket,
  check the route), also on a socket that is loopback-only.
* The shim's descriptor table is sized from the hard RLIMIT_NOFILE at start; a root
  program can raise the limit and use descriptors beyond the table.

Every program is scoped to ispb; a capture on ispa's link, proven live by a marker, must
see none of its datagrams, and the same program run unscoped is seen there first.  See
fixtures/hostile_lab.py.
"""
from __future__ import annotations

import subprocess

import pytest

from fixtures.hostile_lab import (OTHER, PRLIMIT, PVD, HostileEnv, control_problems, env, env1, env3,  # noqa: F401
                         finished, hostile_bindir, hostile_user, mismatches, mixing_problems, new_token, results,
                         verdict)

pytestmark = pytest.mark.root

WHO = ("root", "user")
OPS = ("sendto", "sendmsg", "sendmmsg")


# ---- AF_UNSPEC ---------------------------------------------------------------------------

def unspec_cases(reachable: bool) -> dict[str, str]:
    """hostile_unspec's cases: through the PvD when it has IPv4 (scenario 3), else
    ENETUNREACH (scenario 1: ispb has no IPv4); loopback-only: ENETUNREACH."""
    sent = "ok" if reachable else "ENETUNREACH"
    want = {f"fresh_{op}_unspec": sent for op in OPS}
    want.update({"fresh_sendto_nofamily": sent, "tie": sent})
    want.update({f"tied_{op}_unspec": sent for op in OPS})
    want["loop_connect"] = "ok"
    want.update({f"loop_{op}_unspec": "ENETUNREACH" for op in OPS})
    want["loop_sendto_nofamily"] = "ENETUNREACH"
    want.update({"loopdis_connect": "ok", "loopdis_disconnect": "ok"})
    want.update({f"loopdis_{op}_unspec": "ENETUNREACH" for op in OPS})
    want["loopdis_sendto_inet"] = "ENETUNREACH"
    return want


#: Linux itself refuses these (the socket's source is 127.0.0.1: EINVAL), unscoped too:
#: no control can show them leaving.  The dissolved association ("loopdis_") can.
KERNEL_REFUSES = {f"loop_{op}_unspec" for op in OPS} | {"loop_sendto_nofamily", "loop_connect",
                                                        "loopdis_connect", "loopdis_disconnect"}


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("where", ["s3", "s1"])
def test_af_unspec_destination(env: HostileEnv, where: str, who: str) -> None:
    """sendto/sendmsg/sendmmsg of an AF_INET UDP socket to 198.51.100.80 with sin_family
    AF_UNSPEC (or never set): as AF_INET, only through ispb's link (scenario 3) or
    ENETUNREACH (scenario 1, ispb has no IPv4; unscoped, IPv4 goes to ispa); on a socket
    connected to 127.0.0.1 first (loopback-only), also once that association is
    dissolved: ENETUNREACH."""
    dst = env.service(OTHER, 4)  # 198.51.100.80 (scenario 3: ispb's too)
    want = unspec_cases(reachable=where == "s3")

    control_token = new_token()
    with env.watch(OTHER) as other:
        control = env.run(who, [env.program("hostile_unspec"), control_token, dst, "41301"], scoped=False)
    problems = finished(control, "control") + control_problems(
        other, control_token, [case for case in want if case not in KERNEL_REFUSES])

    token = new_token()
    with env.watch(OTHER) as other, env.watch(PVD) as own:
        done = env.run(who, [env.program("hostile_unspec"), token, dst, "41302"])
    got = results(done)
    problems += finished(done) + other.leak_problems(token) + mismatches(got, want)
    problems += own.live_problems()
    sent = [case for case, result in want.items() if result == "ok" and case not in KERNEL_REFUSES]
    problems += [f"not on {PVD}'s link: {c}" for c in own.missing(token, sent)]
    verdict(problems, control, done)


# ---- descriptors beyond the shim's table -------------------------------------------------

HIGH_FD = 5000


def has_cap_sys_resource() -> bool:
    """Raising a hard RLIMIT_NOFILE needs CAP_SYS_RESOURCE (bit 24), which some containers drop."""
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> 24 & 1)
    return False


# The "raise" mode exists only where root holds CAP_SYS_RESOURCE (this project's machines and
# CI drop it): no capability can be installed, and the inherited mode reaches the same path
# (a descriptor beyond the table) without it.
MODES = ([("raise", "root")] if has_cap_sys_resource() else []) + [("inherited", "root"), ("inherited", "user")]


@pytest.mark.parametrize("mode,who", MODES)
@pytest.mark.parametrize("where", ["s3", "s1"])
def test_descriptor_beyond_the_table(env: HostileEnv, where: str, mode: str, who: str) -> None:
    """A UDP socket on fd 5000 while the shim's table was sized for a hard RLIMIT_NOFILE of
    256: IP_PKTINFO naming ispa's interface -> EINVAL (scenario 3, IPv4, where Linux
    honours it over the device binding); IPV6_PKTINFO with ispa's source -> EADDRNOTAVAIL
    (scenario 1, one interface); plain datagrams only through ispb's link.

    raise (root, as the contract puts it): ``prlimit --nofile=256:256 pvdrun ...``; the
    program raises the limit to 8192 and dup2()s a fresh socket to 5000 (and
    fcntl(F_DUPFD)s one to 5100).  Needs CAP_SYS_RESOURCE: the case exists only where
    root has it (see MODES).  inherited (root and a real user, no capability needed): an unscoped
    launcher opens the socket at 5000, lowers its own limit to 256:256 and executes the
    scoped program, which finds the descriptor open above its limit."""
    if where == "s3":
        family, dst = "4", env.service(OTHER, 4)
        other_if, other_src = str(env.ifindex(env.interface(OTHER))), "-"
        escape, refused = "pktinfo_if", "EINVAL"
    else:
        family, dst = "6", env.service(OTHER, 6)  # unscoped: the RIO route sends it to ispa
        other_if, other_src = "0", env.address(OTHER, 6) or "-"
        escape, refused = "pktinfo_src", "EADDRNOTAVAIL"
    program = env.program("hostile_bigfd")
    want = {"start_hard_limit": "256", f"high_first_{escape}": refused, "high_send": "ok",
            f"high_tied_{escape}": refused, "high_send_again": "ok"}
    escapes = [f"high_first_{escape}", f"high_tied_{escape}"]
    sends = ["high_send", "high_send_again"]
    if mode == "raise":
        want.update({"raise": "ok", "dup2": "ok", "dupfd": "ok", "dupfd_number": "high",
                     f"dupfd_first_{escape}": refused, "dupfd_send": "ok"})
        escapes.append(f"dupfd_first_{escape}")
        sends.append("dupfd_send")
    else:
        want["inherited"] = "ok"

    def run(token: str, port: str, scoped: bool) -> subprocess.CompletedProcess:
        argv = [program, mode, token, family, dst, port, other_if, other_src, str(HIGH_FD)]
        if mode == "raise":
            return env.run(who, argv, scoped=scoped, prefix=[PRLIMIT, "--nofile=256:256"])
        inner = env.scoped_tail(who, argv) if scoped else argv
        launcher = [program, "launch", str(HIGH_FD), family, "256", *inner]
        return env.run(who, launcher, scoped=False)

    control_token = new_token()
    with env.watch(OTHER) as other:
        control = run(control_token, "41401", scoped=False)
    problems = finished(control, "control") + control_problems(other, control_token, escapes)

    token = new_token()
    with env.watch(OTHER) as other, env.watch(PVD) as own:
        done = run(token, "41402", scoped=True)
    problems += finished(done) + other.leak_problems(token) + mismatches(results(done), want)
    problems += mixing_problems(own, token, other_src if other_src != "-" else None)
    problems += own.live_problems() + [f"not on {PVD}'s link: {c}" for c in own.missing(token, sends)]
    verdict(problems, control, done)
