"""``pvdrun resolve --pvd NAME HOST [--type T]``: resolve a name inside one PvD.

Asks only the PvD's DNS servers, from its own addresses and interface
(R25), with its search list.  Exit statuses: 0 answer; 1 the name does not
exist or has no record of that type; 2 usage error; 3 unknown or ambiguous
PvD; 4 the null PvD (no network); 5 discovery failure; 6 ``--socket`` given
and pvdd does not answer; 7 bad
PvD configuration file (as ``pvdrun list``); 8 temporary failure (timeout,
server failure, no usable DNS server).
"""
from __future__ import annotations

import json

import click
import dns.rdatatype

from pvdrun.commands.common import fail, pvd_named
from pvdrun.errors import EXIT_CANNOT_HONOUR, EXIT_FAILED, EXIT_TEMPORARY, EXIT_USAGE
from pvdrun.model import NULL_PVD_NAME, Pvd


def _find_pvd(name: str, socket_path: str | None) -> Pvd:
    if name == NULL_PVD_NAME:
        fail("the null PvD has no network, hence no DNS", EXIT_CANNOT_HONOUR)
    return pvd_named(name, socket_path)


def _check_type(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return dns.rdatatype.to_text(dns.rdatatype.from_text(value.upper()))
    except dns.rdatatype.UnknownRdatatype:
        raise click.BadParameter(f"unknown record type {value!r} (A, AAAA, MX, TXT, ...)") from None


@click.command("resolve")
@click.option("--pvd", "-p", "pvd_name", required=True, metavar="NAME",
              help="PvD whose DNS to use: interface, PvD ID, configured name or kind.")
@click.option("--type", "-t", "rdtype", default=None, callback=_check_type, metavar="TYPE",
              help="Record type (A, AAAA, MX, TXT, ...). Default: AAAA and A.")
@click.option("--timeout", default=5.0, show_default=True, type=click.FloatRange(0.1, 60),
              help="Seconds per try and server.")
@click.option("--attempts", default=2, show_default=True, type=click.IntRange(1, 5),
              help="Passes over the PvD's server list.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
@click.option("--socket", "socket_path", default=None, metavar="PATH",
              help="pvdd's socket; when given, pvdd must answer (exit 6 otherwise). Default: "
                   "$PVDRUN_SOCKET or /run/pvd/pvdd.sock if it answers, else one-shot discovery.")
@click.argument("host")
def resolve_command(pvd_name: str, rdtype: str | None, timeout: float, attempts: int,
                    as_json: bool, socket_path: str | None, host: str) -> None:
    """Resolve HOST with the DNS servers and search list of the PvD NAME only."""
    from pvdrun.resolve.errors import NODATA, NXDOMAIN, BAD_NAME, ResolveError
    from pvdrun.resolve.resolver import PvdResolver, ResolverOptions

    pvd = _find_pvd(pvd_name, socket_path)
    resolver = PvdResolver(pvd, ResolverOptions(timeout=timeout, attempts=attempts))
    types = [rdtype] if rdtype else ["AAAA", "A"]
    answers = []
    errors: list[ResolveError] = []
    try:
        resolver.candidates(host)
    except ResolveError as exc:
        fail(str(exc), EXIT_USAGE)
    for one_type in types:
        try:
            answers.append(resolver.resolve(host, one_type))
        except ResolveError as exc:
            if exc.kind == BAD_NAME:
                fail(str(exc), EXIT_USAGE)
            errors.append(exc)
    if as_json:
        click.echo(json.dumps({"pvd": pvd.pvd_id, "host": host,
                               "answers": [a.to_dict() for a in answers],
                               "errors": [{"kind": e.kind, "message": str(e)} for e in errors]}))
    else:
        for answer in answers:
            for record in answer.records:
                click.echo(f"{answer.canonical_name}\t{answer.ttl}\t{answer.rdtype}\t{record}")
    if answers:
        return
    if all(e.kind in (NXDOMAIN, NODATA) for e in errors):
        worst = next((e for e in errors if e.kind == NXDOMAIN), errors[0])
        fail(str(worst), EXIT_FAILED)  # the name does not exist
    temporary = next(e for e in errors if e.kind not in (NXDOMAIN, NODATA))
    fail(str(temporary), EXIT_TEMPORARY)
