"""RFC 8801 Additional Information for a one-shot discovery asked for it (``pvdrun list
--additional-info``): one fetch per explicit PvD whose RA has the H flag, now (a person asked:
no random delay), in parallel, each inside its PvD (:func:`pvdrun.pvdinfo.fetch.fetch`).
pvdd fetches on its own schedule instead (pvdrun/daemon/infofetch.py)."""
from __future__ import annotations

import ipaddress
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pvdrun.model import Pvd

MAX_PARALLEL = 8


def announced_prefixes(pvd: Pvd) -> list[str]:
    """The IPv6 prefixes a PvD's RA gave its addresses (what the object's ``prefixes`` must
    cover): the networks of its global IPv6 addresses."""
    found: list[str] = []
    for address in pvd.addresses:
        try:
            interface = ipaddress.ip_interface(address.split("%", 1)[0])
        except ValueError:
            continue
        if interface.version == 6 and not interface.ip.is_link_local:
            network = str(interface.network)
            if network not in found:
                found.append(network)
    return found


def publishing(pvds: list[Pvd]) -> list[Pvd]:
    """The PvDs that say they publish Additional Information (explicit, H flag)."""
    return [p for p in pvds if p.explicit and p.flags.get("H") and p.interfaces]


def fetch_current(pvds: list[Pvd], ca_file: str | None, timeout: float = 5.0
                  ) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """(PvD ID -> the valid object, PvD ID -> why there is none) for the PvDs that publish one."""
    from pvdrun.pvdinfo.errors import InfoError
    from pvdrun.pvdinfo.fetch import fetch

    def one(pvd: Pvd) -> tuple[str, dict[str, Any] | None, str]:
        try:
            info = fetch(pvd.pvd_id, int(pvd.sequence or 0), interface=pvd.interfaces[0],
                         source_addresses=pvd.ip_addresses(), dns_servers=list(pvd.dns_servers),
                         announced_prefixes=announced_prefixes(pvd), mark=pvd.mark, ca_file=ca_file,
                         timeout=timeout)
        except InfoError as exc:
            return pvd.pvd_id, None, str(exc)
        return pvd.pvd_id, info.data, ""

    wanted = publishing(pvds)
    objects: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    if not wanted:
        return objects, errors
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(wanted))) as pool:
        for pvd_id, data, why in pool.map(one, wanted):
            if data is not None:
                objects[pvd_id] = data
            else:
                errors[pvd_id] = why
    return objects, errors
