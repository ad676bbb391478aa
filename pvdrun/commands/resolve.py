"""``pvdrun resolve [--pvd NAME] HOST``: what a program scoped to the PvD would see for a name
(without ``--pvd``: the PvD that claims the name's zone, else the default PvD).

An IP literal is its own answer (no query); otherwise the sources of nsswitch.conf's hosts
line in order, /etc/hosts and the PvD's DNS servers (asked from the PvD's own addresses
through its interface, with its search list, R25), as the shim does; ``-x ADDRESS`` the
same for a reverse lookup (PTR).  Exit statuses: 0 answer; 1 the name does not exist or has
no record of that type; 2 usage error; 3 unknown or ambiguous PvD; 4 the null PvD (no
network); 5 discovery failure; 6 ``--socket`` given and pvdd does not answer; 7 bad PvD
configuration file (as ``pvdrun list``); 8 temporary failure (timeout, server failure, no
usable DNS server).
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click
import dns.rdatatype

from pvdrun.commands.common import complete_pvd_names, fail, pvd_named
from pvdrun.errors import (EXIT_CANNOT_HONOUR, EXIT_FAILED, EXIT_OK, EXIT_TEMPORARY, EXIT_UNKNOWN_PVD,
                           EXIT_USAGE)
from pvdrun.model import NULL_PVD_NAME, Pvd

if TYPE_CHECKING:
    from pvdrun.resolve.errors import ResolveError
    from pvdrun.resolve.resolver import Answer

EXAMPLES = """
\b
Examples:
  pvdrun resolve --pvd ispa svc.example           AAAA and A, /etc/hosts first
  pvdrun resolve --pvd ispa -t MX example.org     any record type (MX, SRV, TXT, ANY, ...)
  pvdrun resolve --pvd ispa -t SRV _imap._tcp.example.org
  pvdrun resolve --pvd ispa -x 2001:db8:a::80     the name of an address (PTR)
  pvdrun resolve --pvd ispa --json svc.example    answers, where they came from, errors
  pvdrun resolve intranet.ispa.example            the PvD claiming its zone, else the default

\b
Output: one line per record, NAME<TAB>TTL<TAB>TYPE<TAB>VALUE (TTL 0 for /etc/hosts and IP
literals); on stderr, ';; answered by' the DNS server of the PvD that answered, or by
/etc/hosts, or ';; answered without a query' for an IP literal.

\b
Exit: {ok} answered; {failed} no such name or record; {usage} usage; {unknown} unknown PvD;
{null} the null PvD; {temporary} temporary failure (timeout, server failure, no usable
server); the others: https://github.com/pvdrun/pvdrun/blob/main/docs/cli.md
""".format(ok=EXIT_OK, failed=EXIT_FAILED, usage=EXIT_USAGE, unknown=EXIT_UNKNOWN_PVD,
           null=EXIT_CANNOT_HONOUR, temporary=EXIT_TEMPORARY)


def _find_pvd(name: str, socket_path: str | None, config_path: str | None, no_daemon: bool) -> Pvd:
    if name == NULL_PVD_NAME:
        fail("the null PvD has no network, hence no DNS", EXIT_CANNOT_HONOUR)
    return pvd_named(name, socket_path, config_path=config_path, no_daemon=no_daemon)


def _pvd_for_host(host: str, socket_path: str | None, config_path: str | None, no_daemon: bool) -> Pvd:
    """Without --pvd: the PvD claiming HOST's zone, else the default PvD (exit 3 when none);
    a line on stderr says which and why."""
    from pvdrun.commands.common import table_of
    from pvdrun.discovery.zones import claimant
    from pvdrun.model import default_of

    pvds = table_of(socket_path, config_path, no_daemon)
    found = claimant(pvds, host)
    if found is not None:
        click.echo(f";; PvD {found[0].name}: its Additional Information claims {found[1]}", err=True)
        return found[0]
    default = default_of(pvds)
    if default is None:
        fail("no --pvd, no PvD claims the name's zone and there is no default PvD", EXIT_UNKNOWN_PVD)
    click.echo(f";; PvD {default.name}: the default PvD (no PvD claims the name's zone)", err=True)
    return default


def _record_type(value: str) -> str:
    """The canonical spelling of a record type; exits 2 with one line when it is none."""
    try:
        return dns.rdatatype.to_text(dns.rdatatype.from_text(value.upper()))
    except dns.rdatatype.UnknownRdatatype:
        fail(f"unknown record type {value!r} (A, AAAA, MX, SRV, TXT, PTR, ANY, ...)", EXIT_USAGE)


def _lines(answer: "Answer") -> list[str]:
    """NAME TTL TYPE VALUE lines; an ANY answer's records carry their own type."""
    lines = []
    for record in answer.records:
        rdtype, value = record.split(" ", 1) if answer.rdtype == "ANY" else (answer.rdtype, record)
        lines.append(f"{answer.canonical_name}\t{answer.ttl}\t{rdtype}\t{value}")
    return lines


def _origin(answer: "Answer", pvd: Pvd) -> str:
    """Where an answer came from: the ';;' line on stderr."""
    from pvdrun.resolve import hosts
    from pvdrun.resolve.sources import FILES, LITERAL

    if answer.source == LITERAL:
        return ";; answered without a query (an IP literal)"
    if answer.source == FILES:
        return f";; answered by {hosts.hosts_path()}"
    return f";; answered by {answer.server} (DNS server of PvD {pvd.pvd_id})"


def _report(pvd: Pvd, host: str, answers: "list[Answer]", errors: "list[ResolveError]", as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"pvd": pvd.pvd_id, "host": host,
                               "answers": [a.to_dict() for a in answers],
                               "servers": sorted({a.server for a in answers if a.server}),
                               "errors": [{"kind": e.kind, "type": e.rdtype, "message": str(e)}
                                          for e in errors]}))
        return
    for answer in answers:
        for line in _lines(answer):
            click.echo(line)
    for origin in dict.fromkeys(_origin(a, pvd) for a in answers):
        click.echo(origin, err=True)


def _exit_for(answers: "list[Answer]", errors: "list[ResolveError]") -> None:
    from pvdrun.resolve.errors import NODATA, NXDOMAIN

    if answers:
        return
    if all(e.kind in (NXDOMAIN, NODATA) for e in errors):
        worst = next((e for e in errors if e.kind == NXDOMAIN), errors[0])
        fail(str(worst), EXIT_FAILED)  # the name does not exist
    temporary = next(e for e in errors if e.kind not in (NXDOMAIN, NODATA))
    fail(str(temporary), EXIT_TEMPORARY)


@click.command("resolve", epilog=EXAMPLES)
@click.option("--pvd", "-p", "pvd_name", default=None, metavar="NAME", shell_complete=complete_pvd_names,
              help="PvD whose DNS to use: interface, PvD ID, configured name or kind.  Default: the "
                   "PvD whose Additional Information claims HOST's zone (dnsZones, "
                   "splitDnsClaims), else the default PvD.")
@click.option("--type", "-t", "rdtype", default=None, metavar="TYPE",
              help="Record type (A, AAAA, MX, SRV, TXT, PTR, ANY, ...). Default: AAAA and A; "
                   "PTR with -x. /etc/hosts answers A and AAAA only.")
@click.option("--reverse", "-x", is_flag=True,
              help="HOST is an IPv4 or IPv6 address: find its name (PTR), /etc/hosts first.")
@click.option("--timeout", default=5.0, show_default=True, type=click.FloatRange(0.1, 60),
              help="Seconds per try and server.")
@click.option("--attempts", default=2, show_default=True, type=click.IntRange(1, 5),
              help="Passes over the PvD's server list.")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object on stdout: answers (each with its source and server), "
                   "servers, errors.")
@click.option("--socket", "socket_path", default=None, metavar="PATH",
              help="pvdd's socket; when given, pvdd must answer (exit 6 otherwise). Default: "
                   "$PVDRUN_SOCKET or /run/pvd/pvdd.sock if it answers, else one-shot discovery.")
@click.option("--config", "config_path", default=None, metavar="PATH",
              help="Find the PvD by a one-shot discovery with this pvd.toml (pvdd is not asked).")
@click.option("--no-daemon", is_flag=True, help="Find the PvD by a one-shot discovery, not asking pvdd.")
@click.argument("host", metavar="HOST|ADDRESS")
def resolve_command(pvd_name: str | None, rdtype: str | None, reverse: bool, timeout: float, attempts: int,
                    as_json: bool, socket_path: str | None, config_path: str | None, no_daemon: bool,
                    host: str) -> None:
    """Resolve HOST as a program scoped to the PvD NAME would: an IP literal answers itself,
    then /etc/hosts and the PvD's DNS servers only, in nsswitch.conf's order. Prints which
    server answered. With -x, HOST is an address and its name is looked up."""
    from pvdrun.resolve import sources
    from pvdrun.resolve.errors import BAD_NAME, ResolveError
    from pvdrun.resolve.resolver import PvdResolver, ResolverOptions

    types = [_record_type(rdtype)] if rdtype else (["PTR"] if reverse else ["AAAA", "A"])
    address = None
    if reverse:
        if types != ["PTR"]:
            fail(f"-x looks up PTR records, not {types[0]}", EXIT_USAGE)
        try:
            address = sources.reverse_address(host)
        except ValueError:
            fail(f"-x wants an IPv4 or IPv6 address, not {host!r}", EXIT_USAGE)
    elif sources.literal_address(host) is not None and not set(types) <= {"A", "AAAA", "ANY"}:
        fail(f"{host} is an IP address: use -x to find its name", EXIT_USAGE)
    elif sources.literal_address(host) is not None and types == ["ANY"]:
        types = ["AAAA", "A"]
    if pvd_name is not None:
        pvd = _find_pvd(pvd_name, socket_path, config_path, no_daemon)
    else:
        pvd = _pvd_for_host(host, socket_path, config_path, no_daemon)
    resolver = PvdResolver(pvd, ResolverOptions(timeout=timeout, attempts=attempts))
    try:
        if address is not None:
            answers, errors = sources.reverse(resolver, address)
        else:
            answers, errors = sources.forward(resolver, host, types)
    except ResolveError as exc:
        if exc.kind == BAD_NAME:
            fail(str(exc), EXIT_USAGE)
        raise
    _report(pvd, host, answers, errors, as_json)
    _exit_for(answers, errors)
