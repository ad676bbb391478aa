"""What a launcher gives a program of one PvD, or why it cannot: one rule for every launcher.

The Python launcher (:mod:`pvdrun.launch_core`) and pvdd's ``scope`` request (which the native
launcher, launcher/, asks) both call :func:`refusal` and :func:`scope_line`, so a PvD is
launchable, and gets the same scope line, whichever launcher runs the program.
"""
from __future__ import annotations

import re

from pvdrun.model import Pvd


def refusal(pvd: Pvd) -> str | None:
    """Why a program cannot be scoped to ``pvd`` by the shim (None: it can)."""
    if not pvd.ifindexes:
        return f"PvD {pvd.pvd_id} has no interface to scope to"
    if pvd.needs_routing and not pvd.mark:
        # No pvdd routes for this PvD (docs/routing.md): its interface is shared, so device
        # binding cannot hold it and the main table would pick the next-hop, possibly another
        # PvD's router.  Fail closed, root or not.
        return (f"PvD {pvd.pvd_id} shares its interface with other PvDs: it needs pvdd's "
                "routing tables (run `pvdrun daemon` as root)")
    return None


def scope_line(pvd: Pvd) -> str:
    """The scope line (PVDRUN_SCOPE) of ``pvd``; raises ValueError, saying why, when the
    shim could not hold it (e.g. too large)."""
    try:
        return pvd.to_scope()
    except ValueError as exc:
        raise ValueError(f"cannot honour PvD {pvd.pvd_id}: {exc}") from None


# -- ``--pvd auto`` (docs/architecture.md "The scope line", docs/shim.md "The auto PvD") -------

#: The shim's limits (shim/core/core.h): PvDs in PVDRUN_AUTO (its table holds 64, the API's
#: included), zones in all, bytes of the value.
AUTO_MAX_PVDS = 32
AUTO_MAX_ZONES = 256
AUTO_MAX_BYTES = 256 * 1024 - 1
#: A zone the shim takes: letters, digits, '-', '_', inner dots; at most 253 characters.
_ZONE = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")


def auto_zone_ok(zone: str) -> bool:
    """Whether the shim takes ``zone`` (lower case, no final dot) in a ``zone=`` token."""
    return 0 < len(zone) <= 253 and _ZONE.fullmatch(zone) is not None


def auto_environment(pvds: list[Pvd]) -> tuple[list[tuple[Pvd, list[str]]], list[tuple[str, str]], str]:
    """``--pvd auto``: the PvDs the shim gets (each with the zones it claims), those it does not
    (PvD ID, why), and the value of PVDRUN_AUTO: one scope line a line, each followed by a
    ``zone=NAME`` token per claimed zone.  Raises ValueError when the shim could not hold it."""
    from pvdrun.discovery.zones import claims

    members: list[tuple[Pvd, list[str]]] = []
    skipped: list[tuple[str, str]] = []
    lines: list[str] = []
    for pvd in pvds:
        why = refusal(pvd)
        if why is None:
            try:
                line = scope_line(pvd)
            except ValueError as exc:
                why = str(exc)
        if why is not None:
            skipped.append((pvd.pvd_id, why))
            continue
        zones = []
        for zone in claims(pvd):
            if auto_zone_ok(zone) and zone not in zones:
                zones.append(zone)
            elif not auto_zone_ok(zone):
                skipped.append((pvd.pvd_id, f"zone {zone!r} is no DNS name the shim takes"))
        members.append((pvd, zones))
        lines.append(" ".join([line, *(f"zone={z}" for z in zones)]))
    if len(members) > AUTO_MAX_PVDS:
        raise ValueError(f"more than {AUTO_MAX_PVDS} PvDs")
    if sum(len(z) for _, z in members) > AUTO_MAX_ZONES:
        raise ValueError(f"more than {AUTO_MAX_ZONES} zones")
    value = "\n".join(lines)
    if len(value.encode()) > AUTO_MAX_BYTES:
        raise ValueError(f"the auto PvDs take more than {AUTO_MAX_BYTES} bytes")
    return members, skipped, value


# -- what the PvD's RFC 8801 Additional Information changes in a launch (docs/pvdinfo.md) ----

#: The proxy variables a user may have set: any of them set means the user chose, and the
#: PvD's proxies are not put in the environment.
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy",
                   "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")
#: Never through the PvD's proxy: this host itself.
NO_PROXY = "localhost,127.0.0.1,::1"


def launch_note(pvd: Pvd) -> str | None:
    """The line a launcher says on stderr before running a program in ``pvd``, if any."""
    if pvd.no_internet:
        return (f"pvdrun: PvD {pvd.name} reaches no Internet (its Additional Information says "
                "noInternet): only its own services answer")
    return None


def proxy_url(entry: dict) -> str | None:
    """An HTTP proxy URL for a ``proxies`` entry, or None for a kind the environment variables
    cannot express (CONNECT-UDP, CONNECT-IP: URI templates)."""
    protocol, proxy = entry.get("protocol"), entry.get("proxy")
    if not isinstance(proxy, str) or not proxy or any(c.isspace() for c in proxy):
        return None
    if protocol == "http-connect":
        return proxy if "://" in proxy else f"http://{proxy}"
    return None


def proxy_environment(pvd: Pvd) -> dict[str, str]:
    """``http_proxy``, ``https_proxy``, ``no_proxy`` (and the upper-case HTTPS_PROXY, NO_PROXY
    that some programs read instead) from the PvD's first HTTP CONNECT proxy; {} when it
    publishes none.  HTTP_PROXY is never set (httpoxy: CGI programs take it from a request)."""
    for entry in pvd.proxies:
        url = proxy_url(entry)
        if url is not None:
            return {"http_proxy": url, "https_proxy": url, "HTTPS_PROXY": url,
                    "no_proxy": NO_PROXY, "NO_PROXY": NO_PROXY}
    return {}


def needs_python_launcher(pvd: Pvd) -> bool:
    """Whether a launch in ``pvd`` does more than set the scope (a note, proxy variables): the
    native launcher then hands it to the Python one (pvdd's ``scope`` reply says so)."""
    return launch_note(pvd) is not None or bool(proxy_environment(pvd))
