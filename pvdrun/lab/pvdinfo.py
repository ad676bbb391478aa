"""The PvD Additional Information each ISP serves (RFC 8801 section 4), and ``lab pvd-info``.

In scenarios 1 and 2 every ISP announces its PvD ID with the H flag, and serves a JSON object
at ``https://<PvD ID>/.well-known/pvd`` (:mod:`pvdrun.lab.pvdserver`).  The lab's state
(``lab["pvd_info"][ISP]``) holds the object, whether raw bytes replace it, the files, the
RA's Sequence Number and every change made since ``lab up``; the server reads the body file
(``<isp>-pvd-info.body``) on every request, so a change is served at once.

Objects (``expires``: ``lab up`` + 1 day, RFC 3339 UTC):

* ispa: ``identifier``, ``expires``, ``prefixes`` ``["2001:db8:a::/64"]``, ``name`` ``"ISP A"``,
  ``noInternet`` true, ``dnsZones`` ``["ispa.example"]``;
* ispb: the same keys for ispb without ``noInternet``, plus ``proxies``: one HTTP proxy
  (``http-connect``, ``proxy.ispb.example:3128``: tinyproxy, :mod:`pvdrun.lab.proxy`), in
  the format of draft-ietf-intarea-proxy-config-14 section 3.
"""
from __future__ import annotations

import datetime
import json
import math
import os
import signal
import time
from pathlib import Path
from typing import Any

from pvdrun.lab import state as lab_state
from pvdrun.lab.errors import LabBadInput, LabError, LabNotUp, LabPrereqMissing
from pvdrun.lab.plan import ISPS, PROXY_PORT, IspPlan, isp_plans

#: seconds from ``lab up`` to the objects' ``expires``
DEFAULT_LIFETIME = 86400
#: ``--expires`` bound (either way), seconds: ten years
MAX_EXPIRES = 10 * 365 * 86400
#: ``--raw`` bound, bytes
MAX_RAW = 16 * 1024 * 1024
NAMES = {"ispa": "ISP A", "ispb": "ISP B"}
PROXY_DRAFT = "draft-ietf-intarea-proxy-config-14"


def rfc3339(when: float) -> str:
    """``when`` (a Unix time) as an RFC 3339 UTC timestamp, whole seconds."""
    moment = datetime.datetime.fromtimestamp(int(when), datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def url_of(plan: IspPlan) -> str:
    """The well-known URI of an ISP's PvD Additional Information."""
    return f"https://{plan.pvd_id}/.well-known/pvd"


def default_object(plan: IspPlan, now: float) -> dict[str, Any]:
    """The object ``plan``'s ISP serves after ``lab up``."""
    obj: dict[str, Any] = {"identifier": plan.pvd_id, "expires": rfc3339(now + DEFAULT_LIFETIME),
                           "prefixes": [plan.prefix_v6], "name": NAMES.get(plan.name, plan.name),
                           "dnsZones": [plan.search_domain]}
    if plan.name == "ispa":
        obj["noInternet"] = True
    if plan.proxy_name:
        obj["proxies"] = [{"protocol": "http-connect",
                           "proxy": f"{plan.proxy_name}:{PROXY_PORT}"}]
    return obj


def encode(obj: dict[str, Any]) -> bytes:
    """The bytes served for an object."""
    return (json.dumps(obj, indent=1) + "\n").encode()


def write_body(path: Path | str, data: bytes) -> None:
    """Replace the served body atomically (a request sees the old or the new bytes)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


# -- lab pvd-info ---------------------------------------------------------------------------

def _entry(name: str, isp: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the lab's state, the ISP's pvd_info entry), or the error ``lab pvd-info`` reports."""
    lab_state.check_name(name)
    lab = lab_state.load(name)
    if lab is None:
        raise LabNotUp(f"lab {name!r} is not up (pvdrun lab up --scenario N --name {name})")
    if isp not in ISPS:
        raise LabBadInput(f"unknown ISP {isp!r} (one of: {', '.join(ISPS)})")
    entry = lab.get("pvd_info", {}).get(isp)
    if entry is None:
        raise LabBadInput(f"lab {name!r} is scenario {lab['scenario']}: no PvD options, so no "
                          "PvD Additional Information (scenarios 1 and 2 have them)")
    return lab, entry


def served(name: str, isp: str) -> bytes:
    """The bytes ``isp`` of lab ``name`` serves now."""
    _lab, entry = _entry(name, isp)
    return Path(entry["body"]).read_bytes()


def parse_set(item: str) -> tuple[str, Any]:
    """``KEY=JSON`` -> (key, value); :class:`LabBadInput` for a bad one."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise LabBadInput(f"--set {item!r}: give KEY=JSON (e.g. noInternet=false)")
    try:
        return key.strip(), json.loads(raw)
    except ValueError as exc:
        raise LabBadInput(f"--set {key.strip()}: the value is not JSON ({exc}); quote strings: "
                          f"{key.strip()}='\"text\"'") from None


def parse_expires(raw: str) -> float:
    """``--expires SECONDS`` (from now; negative: already expired)."""
    try:
        value = float(raw)
    except ValueError:
        raise LabBadInput(f"--expires {raw}: not a number of seconds") from None
    if not math.isfinite(value) or abs(value) > MAX_EXPIRES:
        raise LabBadInput(f"--expires {raw}: at most {MAX_EXPIRES} seconds either way")
    return value


def read_raw(path: str) -> bytes:
    """The bytes of ``--raw FILE``."""
    try:
        size = os.path.getsize(path)
        if size > MAX_RAW:
            raise LabBadInput(f"--raw {path}: {size} bytes, at most {MAX_RAW}")
        with open(path, "rb") as handle:
            return handle.read(MAX_RAW + 1)
    except OSError as exc:
        raise LabBadInput(f"--raw {path}: {exc.strerror or exc}") from None


def change(name: str, isp: str, sets: list[str] | None = None, unsets: list[str] | None = None,
           expires: str | None = None, raw: str | None = None,
           bump_sequence: bool = False) -> dict[str, Any]:
    """Change what ``isp`` of lab ``name`` serves and/or announces (``lab pvd-info``): ``sets``
    ``KEY=JSON`` items, ``unsets`` keys, ``expires`` seconds from now, ``raw`` a file whose
    bytes to serve, ``bump_sequence``.  Returns the change as recorded.  Everything is checked
    before anything changes."""
    sets, unsets = list(sets or []), list(unsets or [])
    lab, entry = _entry(name, isp)
    if os.geteuid() != 0:
        raise LabPrereqMissing("lab pvd-info changes need root")
    edits = [parse_set(item) for item in sets]
    seconds = parse_expires(expires) if expires is not None else None
    if raw is not None and (edits or unsets or seconds is not None):
        raise LabBadInput("--raw serves exactly FILE's bytes: not with --set, --unset or "
                          "--expires")
    data = read_raw(raw) if raw is not None else None
    record: dict[str, Any] = {"time": rfc3339(time.time())}
    if data is not None:
        write_body(entry["body"], data)
        entry["raw"] = {"file": os.path.abspath(raw or ""), "size": len(data)}
        record["raw"] = entry["raw"]
    elif edits or unsets or seconds is not None:
        obj = entry["object"]
        for key in unsets:
            obj.pop(key, None)
        for key, value in edits:
            obj[key] = value
        if seconds is not None:
            obj["expires"] = rfc3339(time.time() + seconds)
        write_body(entry["body"], encode(obj))
        entry["raw"] = None
        record.update({k: v for k, v in (("set", dict(edits)), ("unset", list(unsets)))
                       if v})
        if seconds is not None:
            record["expires"] = obj["expires"]
    if bump_sequence:
        entry["sequence"] = (int(entry["sequence"]) + 1) & 0xFFFF
        record["sequence"] = entry["sequence"]
    if len(record) > 1:
        entry.setdefault("changes", []).append(record)
    lab_state.save(name, lab)
    if bump_sequence:
        _announce(name, lab, isp, entry["sequence"])
    return record


def _announce(name: str, lab: dict[str, Any], isp: str, sequence: int) -> None:
    """Put ``sequence`` in every RA config that announces ``isp``'s PvD, and make each sender
    re-read its config and send at once (SIGHUP)."""
    plan = isp_plans(int(lab["scenario"]))[isp]
    directory = lab_state.run_dir(name)
    for proc in lab["processes"]:
        if proc["what"] not in ("pvd-ra", "fault-ra"):
            continue
        config = directory / (f"{proc['role']}-pvd-ra.json" if proc["what"] == "pvd-ra"
                              else f"{proc['role']}-fault-ra.json")
        try:
            spec = json.loads(config.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        mine = [ra for ra in spec["ras"] if ra.get("pvd_id") == plan.pvd_id]
        if not mine:
            continue
        for ra in mine:
            ra["sequence"] = sequence
        tmp = config.with_name(config.name + ".tmp")
        tmp.write_text(json.dumps(spec, indent=1), encoding="utf-8")
        os.replace(tmp, config)
        if not _runs_config(proc["pid"], str(config)):
            raise LabError(f"the RA sender of {isp} ({proc['what']}, pid {proc['pid']}) is "
                           "not running")
        os.kill(proc["pid"], signal.SIGHUP)


def _runs_config(pid: int, config: str) -> bool:
    """True if ``pid`` is an RA sender of ``config`` (a recycled pid is never signalled)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return config.encode() in cmdline.read().split(b"\0")
    except OSError:
        return False


def status_entry(entry: dict[str, Any] | None) -> dict[str, Any] | None:
    """What ``lab status`` shows of an ISP's pvd_info state."""
    if entry is None:
        return None
    keys = ("url", "addresses", "port", "object", "raw", "h_flag", "sequence", "body", "log",
            "cert", "changes")
    shown = {k: entry.get(k) for k in keys}
    shown["changes"] = list(entry.get("changes", []))
    if entry.get("raw"):
        shown["object"] = None  # what is served is the raw bytes, not the object
    return shown
