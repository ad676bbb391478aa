"""Hostile programs against the shim: process tricks.

* vfork: the child shares the parent's memory (where a preload library keeps its state)
  but not its descriptor table; its dup2()/close() before exec must not change what the
  parent's sockets are taken for;
* ``.preinit_array``: network calls before any library's constructor ran;
* signals: a SIGALRM handler sends on the very socket the main thread is tying;
* SCM_RIGHTS: sockets connected outside the PvD by an unscoped process, handed over.

Every program is scoped to ispb; a capture on ispa's link, proven live by a marker, must
see none of its datagrams, and the same program run unscoped is seen there first.  See
fixtures/hostile_lab.py.
"""
from __future__ import annotations

import re
import subprocess

import pytest

from fixtures.hostile_lab import (OTHER, PVD, HostileEnv, control_problems, env, env1, env3,  # noqa: F401
                         finished, hostile_bindir, hostile_user, mismatches, mixing_problems, new_token,
                         results, verdict)

pytestmark = pytest.mark.root

WHO = ("root", "user")
WHERE = ("s3", "s1")


def leak_target(env: HostileEnv) -> tuple[str, str]:
    """(family, address) that an unscoped program reaches through ispa and the PvD ispb
    must not: 198.51.100.80 in scenario 3 (both ISPs serve it; ispa's route has the lower
    metric), ispa's IPv6 service in scenario 1 (its RIO route points to ispa's router)."""
    if env.where == "s3":
        return "4", env.service(OTHER, 4) or ""
    return "6", env.service(OTHER, 6) or ""


# ---- vfork ---------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["dup2", "close"])
@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("where", WHERE)
def test_vfork_child_rewrites_descriptors(env: HostileEnv, where: str, who: str, mode: str) -> None:
    """A vfork child dup2()s an AF_UNIX socket onto (or closes) the parent's sockets, one
    tied and one not yet used, and the numbers of the parent's next sockets, then execs
    /bin/true.
    The parent's datagrams on all of them, old and new, go through ispb only; IP_PKTINFO
    naming ispa's interface (scenario 3) is EINVAL, IPV6_PKTINFO with ispa's source
    (scenario 1) EADDRNOTAVAIL."""
    family, dst = leak_target(env)
    if where == "s3":
        other_if, other_src, escape, refused = str(env.ifindex(env.interface(OTHER))), "-", "pktinfo_if", "EINVAL"
    else:
        other_if, other_src, escape, refused = "0", env.address(OTHER, 6) or "-", "pktinfo_src", "EADDRNOTAVAIL"
    sends = ["pre_tie", "pre_fresh_send", "pre_tied_send", "new1_send", "new2_send"]
    escapes = [f"{p}_{escape}" for p in ("pre_tied", "pre_fresh", "new1", "new2")]
    want = {case: "ok" for case in sends}
    want.update({case: refused for case in escapes})
    want.update({"child_exit": "0", "new2_connect": "ok"})

    def argv(token: str, port: str) -> list[str]:
        return [env.program("hostile_vfork"), token, family, dst, port, mode, other_if, other_src]

    control_token = new_token()
    with env.watch(OTHER) as other:
        control = env.run(who, argv(control_token, "41501"), scoped=False)
    problems = finished(control, "control") + control_problems(other, control_token, sends + escapes)

    token = new_token()
    with env.watch(OTHER) as other, env.watch(PVD) as own:
        done = env.run(who, argv(token, "41502"))
    problems += finished(done) + other.leak_problems(token) + mismatches(results(done), want)
    problems += mixing_problems(own, token, None if other_src == "-" else other_src)
    problems += own.live_problems() + [f"not on {PVD}'s link: {c}" for c in own.missing(token, sends)]
    verdict(problems, control, done)


# ---- .preinit_array ------------------------------------------------------------------------

@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("where", WHERE)
def test_preinit_array_send(env: HostileEnv, where: str, who: str) -> None:
    """A function in the executable's .preinit_array (run before the shim's constructor)
    opens a UDP socket and sends to the lab's echo service; main() does it again on a new
    socket.  Scenario 3 (198.51.100.80, served by both ISPs): both datagrams go through
    ispb, whose service answers "ispb ...".  Scenario 1 (ispa's IPv6 service): not through
    ispa's link, no answer from ispa.  The preinit call may instead fail closed
    (ENETUNREACH); a datagram that was sent must be on ispb's link.  Unscoped, both reach
    ispa."""
    family, dst = leak_target(env)
    program = env.program("hostile_preinit")
    sends = ["preinit_send", "main_send"]

    control_token = new_token()
    with env.watch(OTHER) as other:
        control = env.run(who, [program, control_token, family, dst, "7"], scoped=False)
    problems = finished(control, "control") + control_problems(other, control_token, sends)
    problems += mismatches(results(control), {"preinit_ran": "yes", "preinit_reply": OTHER,
                                              "main_reply": OTHER})

    token = new_token()
    with env.watch(OTHER) as other, env.watch(PVD) as own:
        done = env.run(who, [program, token, family, dst, "7"])
    got = results(done)
    # "or fails closed": the call before the shim's constructor may be refused (ENETUNREACH)
    want: dict[str, str | tuple[str, ...]] = {"preinit_ran": "yes", "preinit_send": ("ok", "ENETUNREACH"),
                                              "main_send": "ok"}
    if where == "s3":
        want.update({"preinit_reply": PVD if got.get("preinit_send") == "ok" else "none",
                     "main_reply": PVD})
    else:
        want.update({"preinit_reply": "none", "main_reply": "none"})
    problems += finished(done) + other.leak_problems(token) + mismatches(got, want)
    sent = [case for case in sends if got.get(case) == "ok"]
    problems += own.live_problems() + [f"not on {PVD}'s link: {c}" for c in own.missing(token, sent)]
    verdict(problems, control, done)


# ---- signals -----------------------------------------------------------------------------

_SIGNAL_LINE = re.compile(r"sends=(\d+) handler_sends=(\d+) ticks=(\d+) main_errors=(\S+) "
                          r"handler_errors=(\S+) duration_us=(\d+) handler_max_us=(\d+)")


@pytest.mark.parametrize("tick_us", [200, 50000])
@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("where", WHERE)
def test_signal_handler_sends_on_the_socket_being_tied(env: HostileEnv, where: str, who: str,
                                                       tick_us: int) -> None:
    """setitimer(ITIMER_REAL) every 200 µs (and every 50 ms): the SIGALRM handler (no
    SA_RESTART) sends on the socket the main thread uses; the main thread sends 2000
    datagrams, each on a new socket (so each is the socket's tying send, in scenario 1 with
    pvdd's mark exchange), then waits until the handler ran at least 10 times.  It
    completes within a generous 60 s, with no error at all (no EAGAIN, no EINTR) in the main
    thread or in the handler.  Durations, and the longest send inside the handler (a handler
    waiting for its own thread's tie shows there), are printed beside the unscoped run's (no
    wall-clock assertion).  Nothing reaches ispa's link."""
    family, dst = ("4", env.service(PVD, 4)) if where == "s3" else ("6", env.service(PVD, 6))
    runs = {}
    problems: list[str] = []
    for scoped in (False, True):
        label = "scoped" if scoped else "unscoped"
        token = new_token()
        argv = [env.program("hostile_signal"), token, family, dst or "", "9", str(tick_us), "2000", "10", "1"]
        try:
            with env.watch(OTHER) as other:
                runs[label] = env.run(who, argv, scoped=scoped, timeout=60)
        except subprocess.TimeoutExpired:
            problems.append(f"{label}: did not complete within 60 s")
            continue
        done = runs[label]
        problems += finished(done, label) + other.live_problems()
        match = _SIGNAL_LINE.search(done.stdout)
        if not match:
            problems.append(f"{label}: no summary line")
            continue
        sends, handler_sends, ticks, main_errors, handler_errors, duration, longest = match.groups()
        print(f"\n{where} {who} tick {tick_us} us {label}: {duration} us, sends {sends}, "
              f"handler sends {handler_sends}, ticks {ticks}, errors {main_errors} / {handler_errors}, "
              f"longest send in the handler {longest} us")
        if main_errors != "none" or handler_errors != "none":
            problems.append(f"{label}: errors: main {main_errors}, handler {handler_errors}")
        if scoped:
            problems += other.leak_problems(token)
    verdict(problems, *runs.values())


# ---- SCM_RIGHTS --------------------------------------------------------------------------

SCM_CASES = ["udp_send", "udp_write", "udp_sendto_null", "udp_sendmsg_noname", "udp_writev",
             "tcp_send", "tcp_write", "tcp_sendto_null", "tcp_writev"]
#: The call must fail; these are the errors the contract names for such a socket.
SCM_REFUSALS = ("ENETUNREACH", "EPIPE", "EDESTADDRREQ")


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("where", WHERE)
def test_sockets_received_with_scm_rights(env: HostileEnv, where: str, who: str) -> None:
    """An unscoped process connects a UDP socket (echo, port 7) and a TCP socket (HTTP, port
    80) to ispa's IPv6 service, which only ispa's link reaches, and passes them over a Unix
    socketpair to the scoped program: its send()/write()/writev()/sendto(NULL)/sendmsg on
    them fail (ENETUNREACH, EPIPE or EDESTADDRREQ) and none of their data crosses ispa's
    link.  Unscoped, the same receiver's data does."""
    dst = env.service(OTHER, 6) or ""
    program = env.program("hostile_scm")
    cases = ",".join(SCM_CASES)

    def run(token: str, scoped: bool) -> subprocess.CompletedProcess:
        receiver = [program, "receiver", token, cases]
        tail = env.scoped_tail(who, receiver) if scoped else receiver
        return env.run(who, [program, "sender", "6", dst, "7", "80", *tail], scoped=False)

    control_token = new_token()
    with env.watch(OTHER) as other:
        control = run(control_token, scoped=False)
    problems = finished(control, "control") + control_problems(other, control_token, SCM_CASES)
    problems += mismatches(results(control), {case: "ok" for case in SCM_CASES})

    token = new_token()
    with env.watch(OTHER) as other:
        done = run(token, scoped=True)
    want: dict[str, str | tuple[str, ...]] = {"sender_udp_connect": "ok", "sender_tcp_connect": "ok",
                                              "sender_pass": "ok", "receiver_rights": "ok"}
    want.update({case: SCM_REFUSALS for case in SCM_CASES})
    problems += finished(done) + other.leak_problems(token) + mismatches(results(done), want)
    verdict(problems, control, done)
