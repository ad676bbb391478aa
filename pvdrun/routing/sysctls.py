"""The kernel switches pvdd turns on in its network namespace, and their restoration.

``net.ipv4.fwmark_reflect`` and ``net.ipv6.fwmark_reflect`` (both per network namespace,
off by default): a reply the kernel sends on no socket's behalf (ICMP and ICMPv6 errors
such as port unreachable, echo replies, TCP resets and the ACKs of TIME_WAIT) carries the
mark of the packet it answers.  pvdd's nftables table marks a packet arriving for a PvD
with that PvD's mark (pvdrun/routing/firewall.py), so such a reply is routed by the PvD's
table (its ``fwmark M lookup T`` rule) instead of the main table, which may send it out of
another PvD's link (docs/routing.md, "Kernel replies").

pvdd sets both to 1 at start.  The value it found is recorded once, in a file beside its
socket (:func:`record_path`), before the first change: a restart of pvdd finds its own 1
and keeps the earlier record.  On stop they stay (without pvdd's incoming marks they
reflect only marks someone else sets); ``pvdrun daemon --cleanup`` writes the recorded
values back and deletes the record.  With no record (pvdd never changed them, or the
record was lost with /run at a reboot, which also reset them) nothing is written back.
"""
from __future__ import annotations

import json
import logging
import os

log = logging.getLogger("pvdrun.routing")

#: The switches pvdd turns on, and the value it wants.
WANTED = {"net.ipv4.fwmark_reflect": "1", "net.ipv6.fwmark_reflect": "1"}
#: The record's file name, in the directory of pvdd's socket.
RECORD_NAME = "sysctls-before-pvdd.json"


def record_path(socket_path: str) -> str:
    """Where the pvdd serving ``socket_path`` records the values it found."""
    return os.path.join(os.path.dirname(os.path.abspath(socket_path)), RECORD_NAME)


def _proc_path(name: str) -> str:
    return "/proc/sys/" + name.replace(".", "/")


def read(name: str) -> str:
    """The value of a sysctl in the current network namespace."""
    with open(_proc_path(name), encoding="ascii") as handle:
        return handle.read().strip()


def write(name: str, value: str) -> None:
    with open(_proc_path(name), "w", encoding="ascii") as handle:
        handle.write(value + "\n")


def turn_on(record: str) -> dict[str, str]:
    """Set every :data:`WANTED` switch, recording first (when no record exists yet) the
    values found that differ.  Returns what was changed (name -> previous value).

    Raises OSError when a switch cannot be read, recorded or written."""
    found = {name: read(name) for name in WANTED}
    changed = {name: value for name, value in found.items() if value != WANTED[name]}
    if changed and not os.path.exists(record):
        with open(record, "w", encoding="utf-8") as handle:
            json.dump(changed, handle)
    for name in changed:
        write(name, WANTED[name])
    return changed


def restore(record: str) -> dict[str, str]:
    """Write back the values recorded in ``record`` and delete it; {} when there is none.

    Raises OSError when a value cannot be written back (the record then stays)."""
    try:
        with open(record, encoding="utf-8") as handle:
            saved = json.load(handle)
    except FileNotFoundError:
        return {}
    except ValueError:
        log.warning("%s is not a record of sysctls; left as it is", record)
        return {}
    restored = {name: str(value) for name, value in saved.items() if name in WANTED}
    for name, value in restored.items():
        write(name, value)
    os.unlink(record)
    return restored
