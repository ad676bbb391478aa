"""Name resolution inside one PvD (R3 for name lookups, R25, R26).

* :mod:`pvdrun.resolve.resolver`: a dnspython resolver that asks only the
  PvD's own DNS servers, from sockets the shim's C core ties to the PvD's
  interface, source address and mark (:mod:`pvdrun.resolve.sockets`), with the
  search list, ndots, timeouts and attempts of resolv.conf(5) and TCP after
  truncation.
* :mod:`pvdrun.resolve.sources`: what a scoped program's lookup sees: IP
  literals, then /etc/hosts (:mod:`pvdrun.resolve.hosts`) and the PvD's DNS in
  nsswitch.conf's order, forwards and reverse (PTR).
* :mod:`pvdrun.resolve.cache`: a per-PvD answer cache honouring TTLs and
  flushed when a PvD's DNS configuration changes (for pvdd).
* :mod:`pvdrun.resolve.resolvconf`: a resolv.conf for a PvD, bind-mounted
  over /etc/resolv.conf in a private mount namespace, for programs that
  read it themselves (dig, host, nslookup).
* ``pvdrun resolve --pvd NAME HOST`` is :mod:`pvdrun.commands.resolve`.

The C side (the preloaded shim's getaddrinfo) is in ``shim/dns_*.c`` and
``shim/hooks/gai.c``; see docs/resolution.md.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pvdrun.model import Pvd
from pvdrun.resolve.errors import ResolveError

if TYPE_CHECKING:
    from pvdrun.resolve.resolver import Answer, PvdResolver, ResolverOptions

__all__ = ["Answer", "PvdResolver", "ResolveError", "ResolverOptions", "resolve", "addresses"]

#: Names served from pvdrun.resolve.resolver on first use (PEP 562): importing a submodule
#: such as resolvconf (the launcher, as root) must not load dnspython (~35 ms).
_FROM_RESOLVER = ("Answer", "PvdResolver", "ResolverOptions")


def __getattr__(name: str) -> Any:
    if name in _FROM_RESOLVER:
        from pvdrun.resolve import resolver

        return getattr(resolver, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _as_pvd(pvd: "Pvd | str") -> "Pvd":
    """A Pvd, looking a name up with pvdrun.api.lookup (PvdLookupError when unknown)."""
    if isinstance(pvd, str):
        from pvdrun.api import lookup

        return lookup(pvd)
    return pvd


def resolve(pvd: "Pvd | str", host: str, rdtype: str = "A") -> "Answer":
    """Resolve ``host`` (type ``rdtype``) with the DNS of ``pvd`` (a Pvd or a PvD name).

    Raises :class:`ResolveError` (``kind`` says why), or
    ``pvdrun.api.PvdLookupError`` for an unknown PvD name.
    """
    from pvdrun.resolve.resolver import PvdResolver

    return PvdResolver(_as_pvd(pvd)).resolve(host, rdtype)


def addresses(pvd: "Pvd | str", host: str, family: int = 0) -> list[str]:
    """IPv6 then IPv4 addresses of ``host`` in ``pvd`` (family 0, 4 or 6)."""
    from pvdrun.resolve.resolver import PvdResolver

    return PvdResolver(_as_pvd(pvd)).addresses(host, family)
