"""``lab up --wait`` / ``lab heal --wait``: wait until pvdrun itself, in the lab's host
namespace, knows every ISP's PvD completely.

"Knows" means what a one-shot ``pvdrun list --no-daemon`` in the host namespace would
print: the PvD discovery (:func:`pvdrun.discovery.engine.discover`, kernel state, RAs heard
and, where data is missing, solicited) finds, for each ISP, a PvD under the name the lab
gives it (``ispa``, ``ispb``: what ``pvdrun --pvd ispa`` resolves), with an address from the
ISP's prefix and the ISP's DNS server.  The discovery runs in a child process inside the
host namespace (``python -m pvdrun.lab.pvdwait``), which retries until the deadline; on
timeout it says, in one line, what was not heard.

The child can also send a Router Solicitation on host interfaces first (``--solicit``):
``lab heal`` uses it so that every router on the healed link answers with an RA at once,
instead of at its next unsolicited one (dnsmasq's come up to ~20 s apart).
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import math
import socket
import sys
import time
from typing import Any

from pvdrun.errors import PvdrunError
from pvdrun.lab.errors import LabBadInput, LabWaitTimeout
from pvdrun.lab.plan import ISPS, isp_plans

#: ``--timeout`` of ``lab up --wait`` and ``lab heal --wait`` when none is given.
DEFAULT_WAIT_TIMEOUT = 30.0
#: The longest ``--timeout`` accepted.
MAX_WAIT_TIMEOUT = 600.0
#: How long one discovery round waits for solicited RAs.
ROUND_WAIT = 1.0


def parse_timeout(raw: str | float | None) -> float:
    """The ``--timeout`` value in seconds: a number > 0 and <= MAX_WAIT_TIMEOUT."""
    if raw is None:
        return DEFAULT_WAIT_TIMEOUT
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise LabBadInput(f"--timeout {raw}: not a number of seconds") from None
    if not math.isfinite(value) or not 0 < value <= MAX_WAIT_TIMEOUT:
        raise LabBadInput(f"--timeout {raw}: SECONDS must be > 0 and <= {MAX_WAIT_TIMEOUT:g}")
    return value


def expectations(scenario: int, isps: tuple[str, ...] = ISPS) -> list[dict[str, Any]]:
    """What the discovery must show of each ISP: its PvD's name, prefix and DNS server(s)."""
    plans = isp_plans(scenario)
    return [{"isp": isp, "name": isp, "prefix": plans[isp].prefix_v6,
             "dns": [a for a in (plans[isp].dns_v6,) if a]} for isp in isps]


def missing(pvds: list[Any], expected: list[dict[str, Any]]) -> list[str]:
    """One phrase per ISP whose PvD is not (completely) in ``pvds``: empty when all are."""
    from pvdrun.discovery.names import PvdLookupError, lookup

    gaps: list[str] = []
    for want in expected:
        try:
            pvd = lookup(pvds, want["name"])
        except PvdLookupError as exc:
            gaps.append(f"{want['isp']}: {exc.sentence}")
            continue
        network = ipaddress.ip_network(want["prefix"])
        if not any(ipaddress.ip_interface(a).ip in network for a in pvd.addresses):
            gaps.append(f"{want['isp']}: PvD {pvd.pvd_id} has no address in {want['prefix']}")
        absent = [d for d in want["dns"] if d not in pvd.dns_servers]
        if absent:
            gaps.append(f"{want['isp']}: PvD {pvd.pvd_id} has no DNS server {', '.join(absent)}"
                        f" (has: {', '.join(pvd.dns_servers) or 'none'})")
    return gaps


def solicit(ifnames: list[str]) -> None:
    """One Router Solicitation on each interface (in this process's namespace); every router
    there answers at once (RFC 4861), dnsmasq and the lab's RA sender alike."""
    from pvdrun.discovery.rasock import RaListener

    listener = RaListener()
    try:
        for ifname in ifnames:
            try:
                listener.solicit(socket.if_nametoindex(ifname))
            except OSError:
                continue
    finally:
        listener.close()


def wait_known(expected: list[dict[str, Any]], timeout: float) -> list[str]:
    """Run the one-shot discovery until every expectation holds; what is still missing."""
    from pvdrun.discovery.engine import discover

    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        try:
            gaps = missing(discover(max_wait=max(0.2, min(ROUND_WAIT, left))), expected)
        except (OSError, ValueError, PvdrunError) as exc:  # a malformed configuration too
            gaps = [f"discovery failed: {exc}"]
        if not gaps or time.monotonic() >= deadline:
            return gaps
        time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))


def run_in_host(name: str, host_ns: str, scenario: int, timeout: float,
                isps: tuple[str, ...] = ISPS, solicit_on: list[str] | None = None) -> None:
    """Wait (in ``host_ns``) until the discovery knows each ISP of ``isps``; raise
    :class:`LabWaitTimeout` naming what was not heard after ``timeout`` seconds."""
    import shutil

    from pvdrun.lab.netns import NetnsTool

    net = NetnsTool(shutil.which("ip") or "/usr/sbin/ip")
    argv = [sys.executable, "-m", "pvdrun.lab.pvdwait", "--expect",
            json.dumps(expectations(scenario, isps)), "--timeout", f"{timeout:.1f}"]
    for ifname in solicit_on or []:
        argv += ["--solicit", ifname]
    done = net.run_in(host_ns, argv, check=False, timeout=timeout + 15)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or ["(no output)"]
        raise LabWaitTimeout(f"lab {name}: {lines[-1]}")


def main(argv: list[str] | None = None) -> int:
    """``python -m pvdrun.lab.pvdwait --expect JSON --timeout S [--solicit IF]...``: exit 0
    once every expected PvD is known, else 1 with one line on stderr."""
    parser = argparse.ArgumentParser(prog="pvdrun.lab.pvdwait")
    parser.add_argument("--expect", required=True, help="JSON list of expectations")
    parser.add_argument("--timeout", type=float, default=DEFAULT_WAIT_TIMEOUT)
    parser.add_argument("--solicit", action="append", default=[], metavar="IFNAME")
    args = parser.parse_args(argv)
    if args.solicit:
        solicit(args.solicit)
    gaps = wait_known(json.loads(args.expect), args.timeout)
    if gaps:
        print(f"pvdrun's discovery did not hear within {args.timeout:g} s: " + "; ".join(gaps),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
