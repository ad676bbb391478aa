"""Faults in a running lab (``lab fault`` / ``lab heal``), recorded in its state file.

Every fault acts in the ISP's own namespace, on ``down0`` (its link towards the host, or
towards the gateway in scenario 2), and records what :func:`heal` needs to undo it:

* ``down``: ``ip link set down0 down``.  The kernel drops the link's IPv6 addresses and
  every route through it, so the fault first records them (``ip -j addr``, ``ip route show
  table all dev down0``) and heal brings the link up and puts back whatever is missing.
* ``loss PCT``: ``tc qdisc add dev down0 root netem loss PCT%``; without netem in the
  kernel, an nftables table ``inet pvdrun_fault_loss`` whose postrouting chain drops
  ``numgen random mod 10000 < PCT*100`` of what leaves by down0 (everything at 100).
* ``delay MS``: ``tc qdisc add dev down0 root netem delay MSms``; without netem nothing
  here can delay packets, so it is refused (:class:`NetemMissing`, exit 5).
* ``dns-down``: an nftables table ``inet pvdrun_fault_dns`` dropping TCP and UDP to port
  53 in the ISP's input hook (dnsmasq keeps running: it also sends the ISP's RAs).
* ``ra-lifetime 0`` / ``withdraw-prefix``: the router's own RAs (dnsmasq's, and the lab's
  PvD RAs) are dropped on their way out (nftables table ``inet pvdrun_fault_ra``: RAs
  leaving by down0 without the mark :data:`FAULT_RA_MARK`), and a second sender
  (``python -m pvdrun.lab.ra``, socket marked) announces the same RA from the same
  link-local address but with router lifetime 0, or with the prefix's valid and preferred
  lifetimes 0.  Not in scenario 2, where one gateway's RA serves both ISPs.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from typing import Any

from pvdrun.lab import state as lab_state
from pvdrun.lab.errors import LabBadInput, LabError, LabNotUp, LabPrereqMissing
from pvdrun.lab.netns import NetnsTool, terminate
from pvdrun.lab.plan import ISP_DOWNLINK, ISPS, PVD_RA_INTERVAL, ROUTER_LIFETIME, isp_plans

KINDS = ("down", "loss", "delay", "dns-down", "ra-lifetime", "withdraw-prefix")
RA_KINDS = ("ra-lifetime", "withdraw-prefix")
RA_TABLE = "pvdrun_fault_ra"
#: SO_MARK of the fault's RA sender, the one sender whose RAs the fault lets out
FAULT_RA_MARK = 0x7076
#: kinds that carry a number, with (lowest exclusive, highest inclusive) bounds and unit
RANGES: dict[str, tuple[float, float, str]] = {"loss": (0.0, 100.0, "PCT"),
                                               "delay": (0.0, 10000.0, "MS")}
LOSS_TABLE = "pvdrun_fault_loss"
DNS_TABLE = "pvdrun_fault_dns"


class NetemMissing(LabPrereqMissing):
    """The kernel has no netem qdisc, and nothing else here can delay packets."""


def parse_value(kind: str, raw: str | None) -> float | None:
    """The number a fault of ``kind`` carries, checked against its range; None for flags."""
    if kind not in KINDS:
        raise LabBadInput(f"unknown fault {kind!r} (one of: {', '.join(KINDS)})")
    if kind == "ra-lifetime":
        if raw is None or raw.strip() not in ("0", "0.0"):
            raise LabBadInput(f"--ra-lifetime {raw}: only 0 is supported")
        return 0
    if kind not in RANGES:
        return None
    low, high, unit = RANGES[kind]
    try:
        value = float(raw if raw is not None else "")
    except ValueError:
        raise LabBadInput(f"--{kind} {raw}: not a number") from None
    if not math.isfinite(value) or not low < value <= high:
        raise LabBadInput(f"--{kind} {raw}: {unit} must be > {low:g} and <= {high:g}")
    return value


def _tools() -> tuple[NetnsTool, str, str]:
    ip = shutil.which("ip") or "/usr/sbin/ip"
    tc = shutil.which("tc") or "/usr/sbin/tc"
    nft = shutil.which("nft") or "/usr/sbin/nft"
    return NetnsTool(ip), tc, nft


def _loaded(name: str) -> dict[str, Any]:
    lab_state.check_name(name)
    if os.geteuid() != 0:
        raise LabPrereqMissing("lab faults need root")
    lab = lab_state.load(name)
    if lab is None:
        raise LabNotUp(f"lab {name!r} is not up (pvdrun lab up --scenario N --name {name})")
    return lab


def _check_isp(isp: str) -> str:
    if isp not in ISPS:
        raise LabBadInput(f"unknown ISP {isp!r} (one of: {', '.join(ISPS)})")
    return isp


def in_force(name: str) -> dict[str, list[dict[str, Any]]]:
    """ISP -> the faults in force, as ``{kind, value}``, for every ISP of a lab."""
    lab = _loaded(name)
    recorded = lab.get("faults", {})
    return {isp: [{"kind": f["kind"], "value": f["value"]} for f in recorded.get(isp, [])]
            for isp in ISPS}


def _run(net: NetnsTool, ns: str, argv: list[str], stdin: str | None = None,
         check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(net.exec_argv(ns, argv), input=stdin, capture_output=True, text=True,
                          check=False, timeout=30)
    if check and done.returncode != 0:
        raise LabError(f"in {ns}: {' '.join(argv)}: {done.stderr.strip() or 'failed'}")
    return done


def _netem(net: NetnsTool, tc: str, ns: str, args: list[str]) -> bool:
    """Add a netem root qdisc on down0; False when the kernel has no netem."""
    done = _run(net, ns, [tc, "qdisc", "add", "dev", ISP_DOWNLINK, "root", "netem", *args],
                check=False)
    if done.returncode == 0:
        return True
    if "unknown" in done.stderr.lower():
        return False
    raise LabError(f"in {ns}: tc qdisc add ... netem: {done.stderr.strip() or 'failed'}")


def _nft_table(net: NetnsTool, nft: str, ns: str, table: str, chain: str) -> None:
    _run(net, ns, [nft, "-f", "-"], stdin=f"table inet {table} {{\n{chain}\n}}\n")


def _snapshot_link(net: NetnsTool, ns: str) -> dict[str, Any]:
    """The addresses and routes of down0 that ``ip link set down`` takes away."""
    addresses = []
    for link in net.ip_json(ns, "addr", "show", "dev", ISP_DOWNLINK):
        for info in link.get("addr_info", []):
            if info.get("scope") == "link":
                continue
            addresses.append({"family": info["family"],
                              "cidr": f"{info['local']}/{info['prefixlen']}"})
    routes = []
    for family in ("-4", "-6"):
        shown = net.ip(ns, family, "route", "show", "table", "all", "dev", ISP_DOWNLINK).stdout
        for line in shown.splitlines():
            words = line.split()
            if not words or "proto kernel" in line or words[0] in (
                    "local", "broadcast", "multicast", "anycast") or words[0].startswith("fe80"):
                continue
            routes.append({"family": family, "words": words})
    return {"addresses": addresses, "routes": routes}


def _restore_link(net: NetnsTool, ns: str, snapshot: dict[str, Any]) -> None:
    net.ip(ns, "link", "set", ISP_DOWNLINK, "up")
    for address in snapshot["addresses"]:
        extra = ["nodad"] if address["family"] == "inet6" else []
        net.ip(ns, "addr", "replace", address["cidr"], "dev", ISP_DOWNLINK, *extra)
    for route in snapshot["routes"]:
        net.ip(ns, route["family"], "route", "replace", *route["words"], "dev", ISP_DOWNLINK)


def apply(name: str, isp: str, kind: str, raw: str | None = None) -> dict[str, Any]:
    """Put fault ``kind`` (with its number ``raw``) on ``isp`` of lab ``name``; the fault."""
    lab = _loaded(name)
    _check_isp(isp)
    value = parse_value(kind, raw)
    faults = lab.setdefault("faults", {})
    current = faults.setdefault(isp, [])
    if any(f["kind"] == kind for f in current):
        raise LabBadInput(f"{isp} already has a {kind} fault (pvdrun lab heal --name {name} {isp})")
    if kind in ("loss", "delay") and any(f.get("via") == "netem" for f in current):
        raise LabBadInput(f"{isp} already has a netem fault: heal it first")
    net, tc, nft = _tools()
    ns = lab["namespaces"][isp]
    fault: dict[str, Any] = {"kind": kind, "value": value}
    if kind == "down":
        fault["snapshot"] = _snapshot_link(net, ns)
        net.ip(ns, "link", "set", ISP_DOWNLINK, "down")
    elif kind == "loss":
        assert value is not None
        if _netem(net, tc, ns, ["loss", f"{value:g}%"]):
            fault["via"] = "netem"
        else:
            share = round(value * 100)
            chance = "" if share >= 10000 else f"numgen random mod 10000 < {share} "
            _nft_table(net, nft, ns, LOSS_TABLE,
                       "chain postrouting { type filter hook postrouting priority 0; "
                       f'oifname "{ISP_DOWNLINK}" {chance}drop; }}')
            fault["via"] = "nft"
    elif kind == "delay":
        assert value is not None
        if not _netem(net, tc, ns, ["delay", f"{value:g}ms"]):
            raise NetemMissing("this kernel has no netem qdisc (sch_netem), and nothing else "
                               "here can delay packets: --delay is not available")
        fault["via"] = "netem"
    elif kind == "dns-down":
        _nft_table(net, nft, ns, DNS_TABLE,
                   "chain input { type filter hook input priority 0; "
                   "meta l4proto { tcp, udp } th dport 53 drop; }")
    elif kind in RA_KINDS:
        _ra_fault(net, nft, lab, name, isp, kind, fault)
    current.append(fault)
    lab_state.save(name, lab)
    return {"kind": kind, "value": value}


def _ra_fault(net: NetnsTool, nft: str, lab: dict[str, Any], name: str, isp: str, kind: str,
              fault: dict[str, Any]) -> None:
    """Replace the router's RAs by a marked sender's, with router or prefix lifetime 0."""
    scenario = int(lab["scenario"])
    if scenario == 2:
        raise LabBadInput(f"--{kind} is not available in scenario 2 (one gateway advertises "
                          "both ISPs)")
    if any(f["kind"] in RA_KINDS for f in lab["faults"].get(isp, [])):
        raise LabBadInput(f"{isp} already has an RA fault: heal it first")
    plan = isp_plans(scenario)[isp]
    ns = lab["namespaces"][isp]
    spec = {"pvd_id": plan.pvd_id, "prefix": plan.prefix_v6,
            "routes": [plan.service_prefix_v6] if scenario == 1 else [],
            "rdnss": [plan.dns_v6], "dnssl": [plan.search_domain], "top_level_all": True,
            "router_lifetime": 0 if kind == "ra-lifetime" else ROUTER_LIFETIME,
            "prefix_lifetime": 0 if kind == "withdraw-prefix" else 3600}
    announced = lab.get("pvd_info", {}).get(isp)
    if announced is not None:  # the same H flag and Sequence Number as the router's own RA
        spec.update(h=True, sequence=announced["sequence"])
    config = {"ifname": ISP_DOWNLINK, "interval": PVD_RA_INTERVAL, "mark": FAULT_RA_MARK,
              "ras": [spec]}
    directory = lab_state.run_dir(name)
    path = directory / f"{isp}-fault-ra.json"
    path.write_text(json.dumps(config, indent=1), encoding="utf-8")
    _nft_table(net, nft, ns, RA_TABLE,
               "chain output { type filter hook output priority 0; "
               f'oifname "{ISP_DOWNLINK}" icmpv6 type nd-router-advert '
               f"meta mark != {FAULT_RA_MARK:#x} drop; }}")
    log_path = directory / f"{isp}-fault-ra.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(net.exec_argv(ns, [sys.executable, "-m", "pvdrun.lab.ra",
                                                   "--lab", name, "--config", str(path)]),
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                cwd="/", start_new_session=True, close_fds=True)
    fault["pid"] = proc.pid
    lab["processes"].append({"pid": proc.pid, "ns": ns, "role": isp, "what": "fault-ra",
                             "log": str(log_path)})


def _undo(net: NetnsTool, tc: str, nft: str, ns: str, fault: dict[str, Any]) -> None:
    kind = fault["kind"]
    if kind == "down":
        _restore_link(net, ns, fault["snapshot"])
    elif fault.get("via") == "netem":
        _run(net, ns, [tc, "qdisc", "del", "dev", ISP_DOWNLINK, "root"])
    elif kind == "loss":
        _run(net, ns, [nft, "delete", "table", "inet", LOSS_TABLE])
    elif kind == "dns-down":
        _run(net, ns, [nft, "delete", "table", "inet", DNS_TABLE])
    elif kind in RA_KINDS:
        if _is_fault_sender(fault["pid"]):
            terminate([fault["pid"]])
        _run(net, ns, [nft, "delete", "table", "inet", RA_TABLE])


def _is_fault_sender(pid: int) -> bool:
    """True if ``pid`` is still a fault's RA sender (a recycled pid is never touched)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return b"-fault-ra.json" in cmdline.read()
    except OSError:
        return False


def heal(name: str, isp: str | None = None) -> list[dict[str, Any]]:
    """Undo every fault of ``isp`` (every ISP when None), newest first; what was healed."""
    lab = _loaded(name)
    targets = [_check_isp(isp)] if isp is not None else list(ISPS)
    net, tc, nft = _tools()
    faults = lab.setdefault("faults", {})
    healed = []
    for target in targets:
        current = faults.get(target, [])
        while current:
            fault = current[-1]
            _undo(net, tc, nft, lab["namespaces"][target], fault)
            current.pop()
            if "pid" in fault:
                lab["processes"] = [p for p in lab["processes"] if p["pid"] != fault["pid"]]
            lab_state.save(name, lab)
            healed.append({"isp": target, "kind": fault["kind"], "value": fault["value"]})
        faults.pop(target, None)
    lab_state.save(name, lab)
    if healed:
        _solicit(net, lab, sorted({h["isp"] for h in healed}))
    return healed


def _solicit(net: NetnsTool, lab: dict[str, Any], isps: list[str]) -> None:
    """Ask the healed ISPs' routers for an RA now (a Router Solicitation from the host on
    their links), instead of waiting up to ~20 s for dnsmasq's next unsolicited one: what an
    RA fault took away (default route, prefix) comes back at once.  Best effort."""
    plans = isp_plans(int(lab["scenario"]))
    interfaces = sorted({i for isp in isps for i in plans[isp].host_interfaces})
    code = "import sys; from pvdrun.lab.pvdwait import solicit; solicit(sys.argv[1:])"
    argv = [sys.executable, "-c", code, *interfaces]
    try:
        subprocess.run(net.exec_argv(lab["namespaces"]["host"], argv), capture_output=True,
                       check=False, timeout=15)
    except (OSError, subprocess.TimeoutExpired):
        pass
