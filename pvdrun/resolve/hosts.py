"""The ``files`` source of a scoped lookup: /etc/hosts, and the order nsswitch.conf gives it.

The Python reading of what the shim does in C (``shim/dns/dns_hosts.c``), so that
``pvdrun resolve`` answers what a scoped program's getaddrinfo would: the ``hosts:`` line's
``files`` and ``dns`` (``resolve``, systemd-resolved's, counts as ``dns``: inside a PvD the
PvD's DNS takes its place), each once, in their order; other services and action items are
ignored; no ``hosts:`` line (or no file) means ``files dns``.  /etc/hosts lines are
``ADDRESS NAME [ALIAS...]`` with ``#`` comments; names match case-insensitively, a trailing
dot ignored; the first name of a line is its canonical name.

``PVDRUN_HOSTS`` and ``PVDRUN_NSSWITCH`` name other files (for tests: the host's files are
never changed); the shim always reads /etc/hosts and /etc/nsswitch.conf.
"""
from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field

HOSTS_PATH = "/etc/hosts"
NSSWITCH_PATH = "/etc/nsswitch.conf"
HOSTS_ENV = "PVDRUN_HOSTS"
NSSWITCH_ENV = "PVDRUN_NSSWITCH"

FILES = "files"
DNS = "dns"
#: nsswitch service -> the source it is inside a PvD
_SOURCES = {"files": FILES, "dns": DNS, "resolve": DNS}
#: The order when nsswitch.conf has no hosts: line.
DEFAULT_ORDER = (FILES, DNS)


def hosts_path() -> str:
    return os.environ.get(HOSTS_ENV) or HOSTS_PATH


def nsswitch_path() -> str:
    return os.environ.get(NSSWITCH_ENV) or NSSWITCH_PATH


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None


def parse_order(text: str | None) -> tuple[str, ...]:
    """The sources of the first ``hosts:`` line, each once, in order (see the module)."""
    for line in (text or "").splitlines():
        line = line.lstrip(" \t")
        if not line.startswith("hosts:"):
            continue
        order: list[str] = []
        for word in line[len("hosts:"):].split():
            source = _SOURCES.get(word)
            if source and source not in order:
                order.append(source)
        return tuple(order)
    return DEFAULT_ORDER


def source_order(path: str | None = None) -> tuple[str, ...]:
    """The sources a scoped lookup asks, in order: ``files`` and/or ``dns``."""
    return parse_order(_read(path or nsswitch_path()))


@dataclass
class HostsEntry:
    """One /etc/hosts line: an address (compressed text) and its names, canonical first."""

    address: ipaddress.IPv4Address | ipaddress.IPv6Address
    names: list[str] = field(default_factory=list)


def _same_name(a: str, b: str) -> bool:
    return a.rstrip(".").lower() == b.rstrip(".").lower()


def parse_hosts(text: str | None) -> list[HostsEntry]:
    """The well-formed lines of a hosts file (an address and at least one name)."""
    entries = []
    for line in (text or "").splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) < 2:
            continue
        try:
            address = ipaddress.ip_address(words[0])
        except ValueError:
            continue
        if "%" in words[0]:
            continue  # a zone: not an address inet_pton reads, as the shim skips it
        entries.append(HostsEntry(address, words[1:]))
    return entries


@dataclass
class HostsAnswer:
    """What /etc/hosts says of a name: its canonical name and addresses, file order."""

    canonical_name: str
    addresses: list[str]


def lookup_name(name: str, versions: tuple[int, ...] = (6, 4), path: str | None = None) -> HostsAnswer | None:
    """The addresses of ``name`` of the IP ``versions`` asked, or None when the file has none."""
    canonical = None
    found: list[str] = []
    for entry in parse_hosts(_read(path or hosts_path())):
        if entry.address.version not in versions or not any(_same_name(n, name) for n in entry.names):
            continue
        canonical = canonical or entry.names[0]
        if str(entry.address) not in found:
            found.append(str(entry.address))
    return HostsAnswer(canonical, found) if canonical else None


def lookup_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address, path: str | None = None) -> str | None:
    """The canonical name of the first line with ``address``, or None."""
    for entry in parse_hosts(_read(path or hosts_path())):
        if entry.address == address:
            return entry.names[0]
    return None
