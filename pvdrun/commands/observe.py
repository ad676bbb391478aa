"""``pvdrun list``, ``pvdrun show NAME`` and ``pvdrun monitor``.

Each asks pvdd when it answers, else runs a one-shot discovery (or, for
monitor, listens to netlink and RAs itself).  ``--config`` forces a
one-shot discovery with that configuration file.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from typing import Any, Iterator

import click

from pvdrun.commands.common import complete_pvd_names, fail, fail_with, lookup_hint, require_daemon
from pvdrun.discovery.names import display_names
from pvdrun.errors import EXIT_NO_DAEMON, EXIT_UNKNOWN_PVD
from pvdrun.model import Pvd, default_of
from pvdrun.commands.strict_status import StrictStatus, describe, from_reply, local


def _common(func: Any) -> Any:
    func = click.option("--no-daemon", is_flag=True, help="Do not ask pvdd; discover in-process.")(func)
    func = click.option("--config", "config_opt", metavar="PATH", default=None,
                        help="Configuration file for an in-process discovery "
                             "(default $PVDRUN_CONFIG or /etc/pvd/pvd.toml).")(func)
    func = click.option("--socket", "socket_opt", metavar="PATH", default=None,
                        help="pvdd's socket; when given, pvdd must answer (exit 6 otherwise). "
                             "Default: $PVDRUN_SOCKET or /run/pvd/pvdd.sock if it answers, "
                             "else an in-process discovery.")(func)
    func = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")(func)
    return func


Row = tuple[bool, str, str, int, list[str], "str | None", list[str], list[str]]


@dataclass
class Listing:
    """What ``list`` and ``show`` print: pvdd's reply as it came (``dicts``), or a local
    table (``pvds``), whichever it was: neither is made from the other unless asked."""

    strict: StrictStatus
    default: str | None = None
    dicts: list[dict[str, Any]] | None = None
    pvds: list[Pvd] | None = None

    def as_dicts(self) -> list[dict[str, Any]]:
        if self.dicts is None:
            self.dicts = [p.to_dict() for p in self.pvds or []]
        return self.dicts

    def as_pvds(self) -> list[Pvd]:
        if self.pvds is None:
            self.pvds = [Pvd.from_dict(d) for d in self.dicts or []]
        return self.pvds

    def rows(self) -> list[Row]:
        """Each PvD's (default, name, ID, handle, interfaces, kind, addresses, DNS servers)."""
        if self.pvds is not None:
            return [(p.is_default, p.name, p.pvd_id, p.handle, p.interfaces, p.kind, p.addresses,
                     p.dns_servers) for p in self.pvds]
        return [_row(d) for d in self.dicts or []]


def _listing(socket_opt: str | None, config_opt: str | None, no_daemon: bool, info: bool = False) -> Listing:
    """The PvDs, the default PvD's ID and strict mode's status, from one ``list`` request when
    pvdd answers (an explicit ``--socket`` must), else from a discovery in this process
    (``info``: which fetches the PvDs' Additional Information; pvdd keeps its own)."""
    from pvdrun.api import _ask, list_pvds
    from pvdrun.config import ConfigError

    try:
        if config_opt is not None:
            from pvdrun.discovery.engine import discover

            return _local(discover(config_path=config_opt, additional_info=info))
        reply = None
        if socket_opt is not None and not no_daemon:  # an explicit socket must answer
            from pvdrun.daemon.protocol import Client, DaemonUnavailable

            try:
                with Client(socket_opt) as client:
                    reply = client.request("list")
            except DaemonUnavailable as exc:
                fail(f"{exc.strerror or exc}", EXIT_NO_DAEMON)
        elif not no_daemon:
            reply = _ask(socket_opt, "list")
        if reply is not None:
            strict = from_reply(reply.get("strict") or {"available": False, "why": "pvdd does not say"})
            return Listing(strict, reply.get("default"), dicts=list(reply.get("pvds", [])))
        if info:
            from pvdrun.discovery.engine import discover

            return _local(discover(additional_info=True))
        return _local(list_pvds(socket_opt, use_daemon=False))
    except ConfigError as exc:
        fail_with(exc)
    raise AssertionError("unreachable")


def _local(pvds: list[Pvd]) -> Listing:
    default = default_of(pvds)
    return Listing(local(pvds), default.pvd_id if default else None, pvds=pvds)


def _pvds(socket_opt: str | None, config_opt: str | None, no_daemon: bool,
          info: bool = False) -> tuple[list[Pvd], StrictStatus]:
    """The PvDs and strict mode's status (see :func:`_listing`)."""
    listing = _listing(socket_opt, config_opt, no_daemon, info)
    return listing.as_pvds(), listing.strict


def _short_list(items: list[str], limit: int = 2) -> str:
    if not items:
        return "-"
    shown = ",".join(items[:limit])
    return shown + (f",+{len(items) - limit}" if len(items) > limit else "")


def format_table(pvds: list[Pvd], strict: StrictStatus | None = None) -> str:
    """The human ``pvdrun list`` table (STRICT: processes held in the PvD by strict mode)."""
    return format_rows([(p.is_default, p.name, p.pvd_id, p.handle, p.interfaces, p.kind, p.addresses,
                         p.dns_servers) for p in pvds], strict)


def _row(data: dict[str, Any]) -> Row:
    """What the table shows of one PvD's dictionary (as :meth:`Pvd.to_dict` writes it)."""
    names = data.get("names") or []
    return (bool(data.get("is_default")), names[0] if names else data["pvd_id"], data["pvd_id"],
            data.get("handle", 0), data.get("interfaces") or [], data.get("kind"),
            data.get("addresses") or [], data.get("dns_servers") or [])


def format_rows(pvds: list[Row], strict: StrictStatus | None = None) -> str:
    """The table of :func:`format_table`, from each PvD's (default, name, ID, handle,
    interfaces, kind, addresses, DNS servers)."""
    header = ["", "NAME", "ID", "HANDLE", "IFACE", "KIND", "ADDRESSES", "DNS", "STRICT"]
    rows = [header]
    held = strict.processes if strict is not None else {}
    for is_default, name, pvd_id, handle, interfaces, kind, addresses, dns in pvds:
        rows.append(["*" if is_default else "", name, pvd_id, str(handle),
                     ",".join(interfaces) or "-", kind or "-",
                     _short_list([a.split("/")[0] for a in addresses]),
                     _short_list(dns), str(held.get(pvd_id, 0))])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
             for row in rows]
    if not pvds:
        lines.append("(no PvDs: no interface is up with an address)")
    else:
        lines.append("* default PvD; STRICT: processes held in the PvD by strict mode")
    if strict is not None:
        lines.append(describe(strict))
    return "\n".join(lines)


def _info_lines(pvd: Pvd) -> list[str]:
    """The PvD's RFC 8801 Additional Information: what it changes first, then every key."""
    if pvd.additional_info is None:
        return ["  additional info: " + ("published, none valid yet (pvdd fetches it; "
                                        "--additional-info without pvdd)" if pvd.flags.get("H") else "-")]
    lines = ["  additional info:"]
    if pvd.no_internet:
        lines.append("    no Internet:  yes (never the default PvD)")
    if pvd.metered:
        lines.append("    metered:      yes")
    if pvd.captive_portal_url:
        lines.append(f"    captive portal: {pvd.captive_portal_url}")
    if pvd.dns_zones:
        lines.append(f"    dns zones:    {', '.join(pvd.dns_zones)}")
    for key, value in sorted(pvd.additional_info.items()):
        lines.append(f"    {key}: {json.dumps(value)}")
    return lines


def format_pvd(pvd: Pvd, strict: StrictStatus | None = None) -> str:
    """Every attribute of one PvD, one per line (``pvdrun show``)."""
    data = pvd.to_dict()
    lines = [f"PvD {pvd.pvd_id}" + ("  (default)" if pvd.is_default else "")]
    lines.append(f"  names:          {', '.join(pvd.names) or '-'}")
    lines.append(f"  handle:         {pvd.handle}")
    lines.append(f"  explicit:       {'yes' if pvd.explicit else 'no (implicit)'}")
    lines.append("  interfaces:     " + (", ".join(f"{n} (index {i})" for n, i in
                                                    zip(pvd.interfaces, pvd.ifindexes)) or "-"))
    lines.append(f"  kind:           {pvd.kind or '-'}")
    lines.append("  addresses:      " + (", ".join(pvd.addresses) or "-"))
    lines.append("  routes:")
    for route in pvd.routes:
        via = f" via {route.gateway}" if route.gateway else ""
        lines.append(f"    {route.dst}{via} dev {route.ifname} metric {route.metric} ({route.origin})")
    if not pvd.routes:
        lines[-1] += " -"
    lines.append("  routers:        " + (", ".join(pvd.routers) or "-"))
    lines.append("  dns servers:    " + (", ".join(pvd.dns_servers) or "-"))
    lines.append("  search domains: " + (", ".join(pvd.search_domains) or "-"))
    if pvd.explicit:
        flags = " ".join(k for k, v in sorted(pvd.flags.items()) if v) or "none"
        lines.append(f"  sequence:       {pvd.sequence}   flags: {flags}")
    lines.append(f"  needs routing:  {'yes (shares its interface)' if pvd.needs_routing else 'no'}")
    lines.append(f"  mark:           {pvd.mark:#x}")
    lines.append(f"  source:         {pvd.source}")
    for key, value in sorted(data["attributes"].items()):
        lines.append(f"  {key}: {json.dumps(value)}")
    lines += _info_lines(pvd)
    lines.append(f"  scope:          {data['scope']}")
    if strict is not None:
        lines.append(f"  strict:         {strict.processes.get(pvd.pvd_id, 0)} processes held; "
                     + describe(strict).replace("strict mode: ", ""))
    return "\n".join(lines)


def _info_option(func: Any) -> Any:
    return click.option("--additional-info", "info", is_flag=True,
                        help="In-process discovery: fetch each PvD's RFC 8801 Additional "
                             "Information now (pvdd fetches it on its own).")(func)


@click.command("list")
@_common
@_info_option
def list_command(as_json: bool, socket_opt: str | None, config_opt: str | None,
                 no_daemon: bool, info: bool) -> None:
    """List the PvDs this host is attached to.

    A table: the PvD's name, ID, handle, interfaces, kind, addresses, DNS
    servers and how many processes strict mode holds in it (* marks the
    default PvD); the last line says whether strict mode is available.
    From pvdd when it answers, else a one-shot discovery in this process
    (which asks routers on links where a PvD's data is missing).

    \b
    Examples:
      pvdrun list
      pvdrun list --json | jq -r '.pvds[].pvd_id'
      pvdrun list --no-daemon --config ./pvd.toml
      pvdrun list --no-daemon --additional-info --json

    Exit status: 0; 5 discovery failed; 6 --socket given and pvdd does not
    answer; 7 malformed configuration.
    """
    listing = _listing(socket_opt, config_opt, no_daemon, info)
    if as_json:
        click.echo(json.dumps({"pvds": listing.as_dicts(), "default": listing.default,
                               "strict": listing.strict.to_dict()}, indent=2))
    else:
        click.echo(format_rows(listing.rows(), listing.strict))


@click.command("show")
@click.argument("name", shell_complete=complete_pvd_names)
@_common
@_info_option
def show_command(name: str, as_json: bool, socket_opt: str | None, config_opt: str | None,
                 no_daemon: bool, info: bool) -> None:
    """Show every attribute of the PvD NAME, unknown ones included.

    NAME as for --pvd: an interface, a PvD ID, a configured name, a kind
    alias (wifi, ethernet, cellular, vpn) or a short name.

    \b
    Examples:
      pvdrun show wifi
      pvdrun show ispa.example --json

    Exit status: 0; 3 unknown or ambiguous name; 5 discovery failed; 6
    --socket given and pvdd does not answer; 7 malformed configuration.
    """
    from pvdrun.discovery.names import PvdLookupError, lookup

    pvds, strict = _pvds(socket_opt, config_opt, no_daemon, info)
    try:
        pvd = lookup(pvds, name)
    except PvdLookupError as exc:
        fail(exc.sentence + lookup_hint(exc, not no_daemon and config_opt is None, socket_opt),
             EXIT_UNKNOWN_PVD)
        return
    if as_json:
        click.echo(json.dumps({**pvd.to_dict(), "strict": {**strict.to_dict(),
                                                           "processes": strict.processes.get(pvd.pvd_id, 0)}},
                              indent=2))
    else:
        click.echo(format_pvd(pvd, strict))


def _describe(event: dict[str, Any]) -> str:
    stamp = time.strftime("%H:%M:%S", time.localtime(event.get("time", time.time())))
    kind = event.get("event")
    if kind == "snapshot":
        pvds = [Pvd.from_dict(d) for d in event.get("pvds", [])]
        names = ", ".join(display_names(pvds))
        return f"{stamp} snapshot: {len(pvds)} PvDs: {names or '-'}; default {event.get('default')}"
    if kind == "default":
        return f"{stamp} default PvD: {event.get('old')} -> {event.get('new')}"
    if kind == "changed":
        parts = [f"{key}: {json.dumps(change['old'])} -> {json.dumps(change['new'])}"
                 for key, change in event.get("changed", {}).items()]
        return f"{stamp} changed {event.get('pvd_id')}: " + "; ".join(parts)
    pvd = event.get("pvd") or {}
    return (f"{stamp} {kind} {event.get('pvd_id')} if={','.join(pvd.get('interfaces', []))} "
            f"addrs={','.join(pvd.get('addresses', [])) or '-'} handle={pvd.get('handle')}")


@click.command("monitor")
@_common
def monitor_command(as_json: bool, socket_opt: str | None, config_opt: str | None,
                    no_daemon: bool) -> None:
    """Stream PvD events: added, removed, changed, default.

    The first event is a snapshot of the current table.  Events come from
    pvdd's subscription, or from netlink notifications and RAs in this
    process (--no-daemon, or no pvdd); never polling.  Runs until
    interrupted.

    \b
    Examples:
      pvdrun monitor
      pvdrun monitor --json | jq -c 'select(.event == "changed")'

    Exit status: 0 interrupted; 6 --socket given and pvdd does not answer,
    or pvdd went away; 7 malformed configuration.
    """
    from pvdrun.config import ConfigError

    stream: Iterator[dict[str, Any]]
    try:
        if config_opt is not None or no_daemon:
            from pvdrun.discovery.engine import Discovery

            stream = Discovery(config_path=config_opt).run_events()
        else:
            from pvdrun.api import watch

            if socket_opt is not None:
                require_daemon(socket_opt)  # an explicit socket must answer: exit 6
            stream = watch(socket_opt)
        for event in stream:
            click.echo(json.dumps(event, separators=(",", ":")) if as_json else _describe(event))
            sys.stdout.flush()
    except ConfigError as exc:
        fail_with(exc)
    except OSError as exc:  # DaemonUnavailable: pvdd went away mid-stream
        fail(f"{exc.strerror or exc}", EXIT_NO_DAEMON)
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:
        pass
