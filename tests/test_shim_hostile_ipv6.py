"""Hostile programs against the shim: IPv6 ways out of a PvD.

* scope IDs: ``sin6_scope_id`` naming another interface than the PvD's.  Linux lets the
  scope ID of a UDP or raw ICMPv6 datagram override the socket's device binding (checked
  on 6.18: a socket bound to ispb sent to ff02::1%ispa through ispa); a connect() to such
  an address on a device-bound socket is refused by the kernel itself (EINVAL);
* RFC 2292 packet information (``IPV6_2292PKTINFO``, ``IPV6_2292PKTOPTIONS``) and
  ``IPV6_NEXTHOP`` (not implemented by Linux 6.18: EINVAL as a control message,
  ENOPROTOOPT as an option; the shim answers EPERM on a scoped socket).

Every program is scoped to ispb; a capture on ispa's link, proven live by a marker, must
see none of its datagrams, and the same program run unscoped is seen there first (so each
test can fail).  See fixtures/hostile_lab.py.
"""
from __future__ import annotations

import sys

import pytest

from fixtures.hostile_lab import (OTHER, PVD, HostileEnv, control_problems, env, env1, env3,  # noqa: F401
                         finished, hostile_bindir, hostile_user, mismatches, mixing_problems, new_token,
                         results, verdict)

pytestmark = pytest.mark.root

WHO = ("root", "user")
SCOPE_OPS = ("sendto", "sendmsg", "sendmmsg", "connect")


# ---- scope IDs -------------------------------------------------------------------------

def scope6_cases(kinds: list[str]) -> dict[str, str]:
    """The cases hostile_scope6 prints, with the result the contract wants."""
    want: dict[str, str] = {}
    for kind in kinds:
        for tag in ("mc", "ll"):
            for op in SCOPE_OPS:
                want[f"{kind}_fresh_{op}_{tag}_other"] = "EINVAL"
            want[f"{kind}_tie_{tag}"] = "ok"
            for op in SCOPE_OPS:
                want[f"{kind}_tied_{op}_{tag}_other"] = "EINVAL"
        for case in ("fresh_sendto_mc_own", "tied_sendmmsg_mc_own", "fresh_sendmsg_ll_own",
                     "fresh_connect_ll_own", "fresh_connect_ll_own_send"):
            want[f"{kind}_{case}"] = "ok"
    return want


def sent_by(case: str) -> str:
    """The payload tag of a case's datagram (a connect sends nothing; its "_send" does)."""
    return f"{case}_send" if "_connect_" in case else case


def scope6_argv(env: HostileEnv, token: str, port: int, kinds: list[str]) -> list[str]:
    lab = env.lab
    return [env.program("hostile_scope6"), token, str(port), str(env.ifindex(env.interface(OTHER))),
            str(env.ifindex(env.interface(PVD))), lab.isp(OTHER)["router_ll"], lab.isp(PVD)["router_ll"],
            env.service(PVD, 6), ",".join(kinds)]


@pytest.mark.parametrize("who", WHO)
def test_scope_id_of_another_interface(env3: HostileEnv, who: str) -> None:
    """sendto/sendmsg/sendmmsg/connect to ff02::1 or to ispa's router link-local with
    sin6_scope_id = ispa's interface: EINVAL, on fresh sockets and on sockets tied by a
    first datagram, UDP and raw ICMPv6 (root); with ispb's own interface as scope: works,
    and the datagram is on ispb's link.  Scenario 3 only: in scenario 1 both PvDs share
    one interface, there is no other interface to name."""
    env = env3
    kinds = ["udp", "raw"] if who == "root" else ["udp"]
    want = scope6_cases(kinds)
    others = [case for case in want if case.endswith("_other")]

    control_token = new_token()
    with env.watch(OTHER) as other:
        control = env.run(who, scope6_argv(env, control_token, 41101, kinds), scoped=False)
    problems = finished(control, "control") + control_problems(other, control_token, [sent_by(c) for c in others])

    token = new_token()
    with env.watch(OTHER) as other, env.watch(PVD) as own:
        done = env.run(who, scope6_argv(env, token, 41102, kinds))
    problems += finished(done) + other.leak_problems(token) + mismatches(results(done), want)
    own_cases = [sent_by(c) for c in want if c.endswith("_own") and "_connect_" not in c]
    problems += own.live_problems() + [f"not on {PVD}'s link: {c}" for c in own.missing(token, own_cases)]
    verdict(problems, control, done)


PY_SCOPE = r"""
import errno, socket, sys
token, port, other, own = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
for name, index in (("python_sendto_other", other), ("python_sendto_own", own)):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        s.sendto(f"{token}:{name};".encode(), ("ff02::1", port, 0, index))
        print(name, "ok")
    except OSError as exc:
        print(name, errno.errorcode.get(exc.errno, exc.errno))
    s.close()
print("done")
"""


@pytest.mark.parametrize("who", WHO)
def test_scope_id_socat_and_python(env3: HostileEnv, who: str) -> None:
    """``socat -u - UDP6-SENDTO:[ff02::1%ispa]:PORT`` (exit 1, "Invalid argument") and
    Python's ``sendto(b, ("ff02::1", PORT, 0, ispa_index))`` (EINVAL) through the shim;
    nothing on ispa's link; with ispb's index Python's datagram is on ispb's link."""
    env = env3
    other_name = env.interface(OTHER)
    other_if, own_if = env.ifindex(other_name), env.ifindex(env.interface(PVD))
    python = sys.executable if who == "root" else "/usr/bin/python3"  # the user cannot read /root
    socat = ["socat", "-u", "-", f"UDP6-SENDTO:[ff02::1%{other_name}]:41103"]
    problems = []
    runs = []
    for scoped in (False, True):
        token = new_token()
        py = [python, "-c", PY_SCOPE, token, "41103", str(other_if), str(own_if)]
        with env.watch(OTHER) as other, env.watch(PVD) as own:
            via_socat = env.run(who, socat, scoped=scoped, stdin=f"{token}:socat;")
            via_python = env.run(who, py, scoped=scoped)
        runs += [via_socat, via_python]
        problems += finished(via_python, "python")
        got = results(via_python)
        if not scoped:  # control: both leave through ispa
            if via_socat.returncode != 0:
                problems.append(f"control: socat exit {via_socat.returncode}")
            problems += control_problems(other, token, ["socat", "python_sendto_other"])
            continue
        problems += other.leak_problems(token)
        if via_socat.returncode != 1 or "Invalid argument" not in via_socat.stderr:
            problems.append(f"socat: exit {via_socat.returncode}, want 1 with 'Invalid argument'")
        problems += mismatches(got, {"python_sendto_other": "EINVAL", "python_sendto_own": "ok"})
        problems += own.live_problems() + [f"not on {PVD}'s link: {c}"
                                           for c in own.missing(token, ["python_sendto_own"])]
    verdict(problems, *runs)


# ---- RFC 2292 packet information, next hop ---------------------------------------------

def pktinfo2292_cases(with_if: bool) -> dict[str, str]:
    want = {"tie": "ok"}
    for state in ("fresh", "tied"):
        want.update({f"{state}_sendmsg_2292pktinfo_src": "EADDRNOTAVAIL",
                     f"{state}_sendmmsg_2292pktinfo_src": "EADDRNOTAVAIL",
                     f"{state}_sendmsg_pktinfo_src": "EADDRNOTAVAIL",
                     f"{state}_setsockopt_2292pktoptions_src": "EADDRNOTAVAIL",
                     f"{state}_sendmsg_nexthop": "EPERM",
                     f"{state}_setsockopt_nexthop": "EPERM",
                     f"{state}_send_after": "ok"})
        if with_if:
            want.update({f"{state}_sendmsg_2292pktinfo_if": "EINVAL",
                         f"{state}_setsockopt_2292pktoptions_if": "EINVAL"})
    return want


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("where", ["s3", "s1"])
def test_rfc2292_pktinfo_and_nexthop(env: HostileEnv, where: str, who: str) -> None:
    """sendmsg/sendmmsg with IPV6_2292PKTINFO (cmsg type 2) naming ispa's source:
    EADDRNOTAVAIL; naming ispa's interface: EINVAL; the same inside
    setsockopt(IPV6_2292PKTOPTIONS); IPV6_NEXTHOP as cmsg or option: EPERM; fresh and tied
    sockets.  Nothing on ispa's link, and nothing with ispa's source on ispb's link.
    Scenario 1 has one interface for both PvDs: the interface cases do not apply; the
    source cases do (unscoped, pvdd's source rule sends such a datagram to ispa)."""
    other_src = env.address(OTHER, 6)
    assert other_src
    other_if = env.ifindex(env.interface(OTHER)) if where == "s3" else 0
    nexthop = env.lab.isp(OTHER)["router_ll"]

    def argv(token: str, port: int) -> list[str]:
        return [env.program("hostile_pktinfo2292"), token, env.service(PVD, 6), str(port), other_src,
                str(other_if), nexthop]

    control_token = new_token()
    with env.watch(OTHER) as other:
        control = env.run(who, argv(control_token, 41201), scoped=False)
    problems = finished(control, "control") + control_problems(
        other, control_token, [f"{state}_{case}" for state in ("fresh", "tied")
                               for case in ("sendmsg_2292pktinfo_src", "sendmmsg_2292pktinfo_src")])

    token = new_token()
    with env.watch(OTHER) as other, env.watch(PVD) as own:
        done = env.run(who, argv(token, 41202))
    problems += finished(done) + other.leak_problems(token)
    problems += mismatches(results(done), pktinfo2292_cases(bool(other_if)))
    problems += mixing_problems(own, token, other_src)
    problems += own.live_problems() + [f"not on {PVD}'s link: {c}"
                                       for c in own.missing(token, ["fresh_send_after", "tied_send_after"])]
    verdict(problems, control, done)
