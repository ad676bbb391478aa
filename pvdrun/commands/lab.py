"""``pvdrun lab``: build, use, inspect and remove the multihoming lab.

Exit statuses: 0 ok; 1 the lab failed to come up (torn down again), or ``--wait``
timed out; 2 bad input (``pvd-info``: also a bad --set value, a scenario without PvD
options); 5 missing prerequisite (root, ip, dnsmasq; tc netem for
``fault --delay``); 9 already up; 10 not up (exec, status, fault, heal);
``lab exec`` returns CMD's own status.
"""
from __future__ import annotations

import json
import os
import sys
from typing import NoReturn

import click

from pvdrun.commands.common import fail_with
from pvdrun.lab.errors import LabError, LabNotUp
from pvdrun.lab.state import DEFAULT_NAME

NAME_OPTION = click.option("--name", default=DEFAULT_NAME, show_default=True,
                           help="lab name; namespaces are NAME-<role>")
WAIT_OPTION = click.option("--wait", is_flag=True,
                           help="also wait until pvdrun's own PvD discovery in the host namespace "
                                "knows every ISP's PvD (name, address, DNS server)")
TIMEOUT_OPTION = click.option("--timeout", "timeout_raw", metavar="SECONDS", default=None,
                              help="how long --wait waits (0 < SECONDS <= 600; default 30)")


def _wait_timeout(wait: bool, raw: str | None) -> float | None:
    """--timeout checked (exit 2 for a bad one); None without --wait."""
    from pvdrun.lab.errors import LabBadInput
    from pvdrun.lab.pvdwait import parse_timeout

    if raw is not None and not wait:
        raise LabBadInput("--timeout needs --wait")
    return parse_timeout(raw) if wait else None


def _fail(exc: LabError) -> NoReturn:
    fail_with(exc, "pvdrun lab")


@click.group()
def lab() -> None:
    """A multihomed test network in namespaces, for testing software against ISPs.

    \b
    Scenario 1: one shared link, two routers (two ISPs' prefixes on one link).
    Scenario 2: one gateway, two ISPs behind it.
    Scenario 3: two interfaces, one ISP each, overlapping IPv4.
    Each ISP runs its own DNS server and a web service answering with its name.

    \b
    Examples:
      pvdrun lab up --scenario 3 --wait
      pvdrun lab exec -- pvdrun list
      pvdrun lab exec -- pvdrun --pvd ispa curl http://svc.example/
      pvdrun lab fault ispa --down
      pvdrun lab heal
      pvdrun lab pvd-info ispa --set noInternet=false --bump-sequence
      pvdrun lab down

    Needs root.  See docs/lab.md.
    """


@lab.command("up")
@click.option("--scenario", required=True, type=click.Choice(["1", "2", "3"]),
              help="1: shared link, two routers; 2: one gateway, two ISPs; "
                   "3: two interfaces, overlapping IPv4")
@NAME_OPTION
@click.option("--json", "as_json", is_flag=True, help="print the status as JSON")
@WAIT_OPTION
@TIMEOUT_OPTION
def up_command(scenario: str, name: str, as_json: bool, wait: bool,
               timeout_raw: str | None) -> None:
    """Build the lab and wait until the host is configured and services answer.

    With --wait, return only once pvdrun itself, in the lab's host
    namespace, knows every ISP's PvD: a one-shot discovery (what
    ``pvdrun list`` does without pvdd) finds ``ispa`` and ``ispb`` with an
    address and their DNS server, so ``pvdrun --pvd ispa CMD`` works at
    once, with no sleep.  --timeout bounds the whole wait.

    \b
    Examples:
      pvdrun lab up --scenario 1
      pvdrun lab up --scenario 3 --name ci --json
      pvdrun lab up --scenario 3 --name ci --wait --timeout 60 &&
        pvdrun lab exec --name ci -- pvdrun --pvd ispa curl -s http://svc.example/

    Exit status: 0 up; 1 it failed to come up, or --wait timed out (one line
    names what was not heard; everything made was removed); 2 a bad
    --timeout; 5 not root or a missing tool (ip, dnsmasq); 9 a lab of that
    name is up.
    """
    from pvdrun import lab as lab_api
    from pvdrun.lab.status import format_table

    try:
        timeout = _wait_timeout(wait, timeout_raw)
        info = lab_api.up(int(scenario), name, wait=timeout)
    except LabError as exc:
        _fail(exc)
    click.echo(json.dumps(info, indent=1) if as_json else format_table(info))


@lab.command("down")
@NAME_OPTION
def down_command(name: str) -> None:
    """Remove every namespace, process and file of the lab (quietly ok if none).

    \b
    Example:
      pvdrun lab down --name ci

    Exit status: 0 removed, or nothing to remove; 5 not root.
    """
    from pvdrun.lab.teardown import down

    try:
        down(name)
    except LabError as exc:
        _fail(exc)


@lab.command("status")
@NAME_OPTION
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def status_command(name: str, as_json: bool) -> None:
    """Show the lab's namespaces, addresses and per-ISP services.

    \b
    Example:
      pvdrun lab status --json

    Exit status: 0; 10 no lab of that name is up.
    """
    from pvdrun.lab.status import format_table, lab_status

    try:
        info = lab_status(name)
    except LabError as exc:
        _fail(exc)
    click.echo(json.dumps(info, indent=1) if as_json else format_table(info))


@lab.command("exec", context_settings={"ignore_unknown_options": True,
                                       "allow_interspersed_args": False})
@NAME_OPTION
@click.option("--ns", "role", default="host", show_default=True,
              help="role of the namespace: host, ispa, ispb, link, gw")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_command(name: str, role: str, command: tuple[str, ...]) -> None:
    """Run COMMAND inside one of the lab's namespaces; exit with its status.

    \b
    Examples:
      pvdrun lab exec -- pvdrun list
      pvdrun lab exec --ns ispa -- ip address

    Exit status: COMMAND's own; 2 no such role; 10 no lab of that name is up.
    """
    import shutil

    from pvdrun.lab import state as lab_state

    try:
        lab_state.check_name(name)
        info = lab_state.load(name)
        if info is None:
            raise LabNotUp(f"lab {name!r} is not up")
        ns = info["namespaces"].get(role)
        if ns is None:
            from pvdrun.lab.errors import LabBadInput
            roles = ", ".join(sorted(info["namespaces"]))
            raise LabBadInput(f"lab {name!r} has no namespace role {role!r} (roles: {roles})")
    except LabError as exc:
        _fail(exc)
    ip = shutil.which("ip") or "/usr/sbin/ip"
    sys.stdout.flush()
    os.execv(ip, [ip, "netns", "exec", ns, *command])


@lab.command("fault")
@NAME_OPTION
@click.option("--down", "down_", is_flag=True, help="take the ISP's link to the host down")
@click.option("--loss", metavar="PCT", help="drop PCT percent (0 < PCT <= 100) of what the "
                                            "ISP sends towards the host")
@click.option("--delay", metavar="MS", help="delay what the ISP sends by MS ms (0 < MS <= 10000; "
                                            "needs tc netem)")
@click.option("--dns-down", is_flag=True, help="the ISP's DNS server stops answering")
@click.option("--ra-lifetime", metavar="0", help="the ISP's router announces router lifetime 0: "
                                                "the host drops its default route via it")
@click.option("--withdraw-prefix", is_flag=True, help="the ISP's RAs announce its prefix with "
                                                      "valid and preferred lifetime 0")
@click.argument("isp", metavar="ISP")
def fault_command(name: str, down_: bool, loss: str | None, delay: str | None, dns_down: bool,
                  ra_lifetime: str | None, withdraw_prefix: bool, isp: str) -> None:
    """Put one FAULT on ISP (ispa or ispb) of a running lab, until ``lab heal``.

    Exactly one FAULT option: --down, --loss PCT, --delay MS, --dns-down,
    --ra-lifetime 0 or --withdraw-prefix (the last two not in scenario 2).
    Faults are recorded in the lab's state and shown by ``lab status``;
    ``lab down`` removes the lab whatever faults are in force.

    \b
    Examples:
      pvdrun lab fault ispa --down
      pvdrun lab fault --name ci ispb --loss 100
      pvdrun lab fault ispb --dns-down
      pvdrun lab fault ispa --ra-lifetime 0
      pvdrun lab heal ispa

    Exit status: 0 the fault is in force; 2 unknown ISP, a number out of
    range, no or two FAULT options, that fault already in force, an RA
    fault in scenario 2; 5 not root,
    or --delay without tc netem in the kernel; 10 no lab of that name is up.
    """
    from pvdrun.lab import faults
    from pvdrun.lab.errors import LabBadInput

    chosen = [(kind, value) for kind, value, given in (
        ("down", None, down_), ("loss", loss, loss is not None),
        ("delay", delay, delay is not None), ("dns-down", None, dns_down),
        ("ra-lifetime", ra_lifetime, ra_lifetime is not None),
        ("withdraw-prefix", None, withdraw_prefix)) if given]
    try:
        if len(chosen) != 1:
            raise LabBadInput("give exactly one FAULT: --down, --loss PCT, --delay MS, "
                              "--dns-down, --ra-lifetime 0 or --withdraw-prefix")
        kind, value = chosen[0]
        faults.apply(name, isp, kind, value)
    except LabError as exc:
        _fail(exc)


@lab.command("heal")
@NAME_OPTION
@WAIT_OPTION
@TIMEOUT_OPTION
@click.argument("isp", metavar="[ISP]", required=False)
def heal_command(name: str, wait: bool, timeout_raw: str | None, isp: str | None) -> None:
    """Undo every fault of ISP (of every ISP without one): the lab is as ``lab up`` left it.

    The host then sends a Router Solicitation on the healed ISPs' links, so
    their routers advertise at once (what an RA fault took away comes back
    without waiting for the next unsolicited RA).  With --wait, return only
    once the healed ISPs' services answer again and pvdrun's discovery in
    the host namespace knows their PvDs, as ``lab up --wait``.

    \b
    Examples:
      pvdrun lab heal
      pvdrun lab heal --name ci ispa
      pvdrun lab heal --name ci --wait ispa

    Exit status: 0 healed (also when no fault was in force); 1 --wait timed
    out (one line names what was not heard; the faults are healed, the lab
    stays up); 2 unknown ISP, a bad --timeout; 5 not root; 10 no lab of
    that name is up.
    """
    from pvdrun import lab as lab_api
    from pvdrun.lab import faults

    try:
        timeout = _wait_timeout(wait, timeout_raw)
        if timeout is None:
            faults.heal(name, isp)
        else:
            lab_api.heal_and_wait(name, isp, timeout)
    except LabError as exc:
        _fail(exc)


@lab.command("pvd-info")
@NAME_OPTION
@click.option("--set", "sets", metavar="KEY=JSON", multiple=True,
              help="set KEY of the served object to the JSON value (repeatable)")
@click.option("--unset", "unsets", metavar="KEY", multiple=True,
              help="remove KEY from the served object (repeatable)")
@click.option("--expires", metavar="SECONDS",
              help="set 'expires' to now + SECONDS (negative: already expired)")
@click.option("--raw", metavar="FILE",
              help="serve exactly FILE's bytes instead of the object (not with --set, "
                   "--unset, --expires; a later --set serves the object again)")
@click.option("--bump-sequence", is_flag=True,
              help="increment the Sequence Number of the PvD option in the ISP's RAs and "
                   "send an RA at once")
@click.argument("isp", metavar="ISP")
def pvd_info_command(name: str, sets: tuple[str, ...], unsets: tuple[str, ...],
                     expires: str | None, raw: str | None, bump_sequence: bool,
                     isp: str) -> None:
    """Show or change the PvD Additional Information ISP serves (scenarios 1, 2).

    Each ISP serves a JSON object (RFC 8801) at https://<PvD ID>/.well-known/pvd
    and announces its PvD ID with the H flag.  Without options, print what ISP
    serves now.  Changes take effect at once, are recorded in the lab's state
    (``lab status --json``: isps.ISP.pvd_info) and stay until ``lab down``
    (``lab heal`` does not undo them).  Changing the object does not change
    the Sequence Number: add --bump-sequence for that.

    \b
    Examples:
      pvdrun lab pvd-info ispa
      pvdrun lab pvd-info ispa --set noInternet=false --bump-sequence
      pvdrun lab pvd-info ispb --set 'dnsZones=["x.example"]' --unset proxies
      pvdrun lab pvd-info ispa --expires -60
      pvdrun lab pvd-info --name ci ispb --raw broken.json

    Exit status: 0; 2 unknown ISP, a bad KEY=JSON, a bad --expires, an
    unreadable --raw FILE (or one over 16 MiB), --raw with --set/--unset/
    --expires, a scenario without PvD options (3); 5 a change without root;
    10 no lab of that name is up.
    """
    from pvdrun.lab import pvdinfo

    try:
        if sets or unsets or expires is not None or raw is not None or bump_sequence:
            pvdinfo.change(name, isp, list(sets), list(unsets), expires, raw, bump_sequence)
        else:
            data = pvdinfo.served(name, isp)
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
    except LabError as exc:
        _fail(exc)
