"""The status of a running lab (``lab status``): the plan plus live host addresses."""
from __future__ import annotations

import ipaddress
import shutil
from typing import Any

from pvdrun.lab import state as lab_state
from pvdrun.lab.pvdinfo import status_entry
from pvdrun.lab.errors import LabNotUp
from pvdrun.lab.netns import NetnsTool
from pvdrun.lab.plan import ISP_DOWNLINK, IspPlan, isp_plans


def _addresses(net: NetnsTool, ns: str) -> list[dict[str, Any]]:
    """``ip -j addr show`` of a namespace, [] when it is gone."""
    if not net.netns_exists(ns):
        return []
    return net.ip_json(ns, "addr", "show")


def _link_local(links: list[dict[str, Any]], ifname: str) -> str | None:
    for link in links:
        if link.get("ifname") == ifname:
            for info in link.get("addr_info", []):
                if info.get("family") == "inet6" and info.get("scope") == "link":
                    return info["local"]
    return None


def _host_addresses(links: list[dict[str, Any]], plan: IspPlan) -> list[str]:
    """The host's global addresses from this ISP: its IPv4 address and SLAAC addresses."""
    prefix = ipaddress.IPv6Network(plan.prefix_v6)
    found: list[str] = []
    for link in links:
        if link.get("ifname") not in plan.host_interfaces:
            continue
        for info in link.get("addr_info", []):
            if info.get("scope") != "global":
                continue
            address = ipaddress.ip_address(info["local"])
            if (address.version == 6 and address in prefix) or \
                    (address.version == 4 and info["local"] == plan.host_v4):
                found.append(info["local"])
    return found


def lab_status(name: str) -> dict[str, Any]:
    """The status dict of lab ``name`` (docs/lab.md lists the keys)."""
    lab_state.check_name(name)
    lab = lab_state.load(name)
    if lab is None:
        raise LabNotUp(f"lab {name!r} is not up (pvdrun lab up --scenario N --name {name})")
    net = NetnsTool(shutil.which("ip") or "/usr/sbin/ip")
    scenario = int(lab["scenario"])
    namespaces = dict(lab["namespaces"])
    host_ns = namespaces.get("host")
    host_links = _addresses(net, host_ns) if host_ns else []
    router_role = {name_: ("gw" if scenario == 2 else name_) for name_ in ("ispa", "ispb")}
    isps: dict[str, Any] = {}
    for isp, plan in isp_plans(scenario).items():
        router_ns = namespaces.get(router_role[isp])
        router_links = _addresses(net, router_ns) if router_ns else []
        isps[isp] = {
            "host_interfaces": list(plan.host_interfaces),
            "host_addresses": _host_addresses(host_links, plan),
            "router_v4": plan.router_v4,
            "router_v6": plan.router_v6,
            "router_ll": _link_local(router_links, ISP_DOWNLINK),
            "router_ns": router_ns,
            "dns_v4": plan.dns_v4,
            "dns_v6": plan.dns_v6,
            "service_v4": plan.service_v4,
            "service_v6": plan.service_v6,
            "intranet_v4": plan.intranet_v4,
            "intranet_v6": plan.intranet_v6,
            "mail_v4": plan.mail_v4,
            "mail_v6": plan.mail_v6,
            "prefix_v6": plan.prefix_v6,
            "service_prefix_v6": plan.service_prefix_v6,
            "v4_metric": plan.v4_metric,
            "pvd_id": plan.pvd_id,
            "search_domain": plan.search_domain,
            "capture_ns": namespaces.get(isp),
            "capture_if": ISP_DOWNLINK,
            "pvd_info": status_entry(lab.get("pvd_info", {}).get(isp)),
            "proxy": lab.get("proxy", {}).get(isp),
        }
    recorded = lab.get("faults", {})
    faults = {isp: [{"kind": f["kind"], "value": f["value"]} for f in recorded.get(isp, [])]
              for isp in isps}
    return {"name": name, "scenario": scenario, "namespaces": namespaces, "host_ns": host_ns,
            "ca_file": lab.get("ca_file"), "isps": isps, "faults": faults,
            "processes": [{k: p[k] for k in ("pid", "ns", "what")} for p in lab["processes"]]}


def format_table(status: dict[str, Any]) -> str:
    """A human-readable view of :func:`lab_status`."""
    lines = [f"lab {status['name']}: scenario {status['scenario']}, host namespace "
             f"{status['host_ns']}",
             "namespaces: " + ", ".join(f"{r}={n}" for r, n in status["namespaces"].items())]
    keys = ["host_interfaces", "host_addresses", "router_v4", "router_v6", "router_ll",
            "dns_v4", "dns_v6", "service_v4", "service_v6", "prefix_v6", "pvd_id",
            "search_domain", "capture_ns", "capture_if"]
    isps = status["isps"]
    rows = []
    for key in keys:
        cells = []
        for isp in isps.values():
            value = isp[key]
            cells.append(",".join(value) if isinstance(value, list)
                         else ("-" if value is None else str(value)))
        rows.append((key, cells))
    width = max(len(k) for k in keys)
    columns = [max([len(name)] + [len(cells[i]) for _, cells in rows])
               for i, name in enumerate(isps)]
    lines.append(f"{'':{width}}  " + "  ".join(f"{n:<{w}}" for n, w in zip(isps, columns)).rstrip())
    for key, cells in rows:
        lines.append(f"{key:<{width}}  "
                     + "  ".join(f"{c:<{w}}" for c, w in zip(cells, columns)).rstrip())
    if status.get("ca_file"):
        lines.append(f"ca_file: {status['ca_file']}")
    for isp_name, isp in isps.items():
        info = isp.get("pvd_info")
        if info:
            what = "raw bytes" if info["raw"] else "object"
            lines.append(f"pvd info {isp_name}: {info['url']} at "
                         f"{', '.join(info['addresses'])} ({what}, H flag, sequence "
                         f"{info['sequence']}, {len(info['changes'])} change(s)); log {info['log']}")
        if isp.get("proxy"):
            lines.append(f"proxy {isp_name}: {isp['proxy']['url']} ({isp['proxy']['name']}); "
                         f"log {isp['proxy']['log']}")
    faults = status.get("faults", {})
    lines.append("faults: " + "; ".join(
        f"{isp} " + (", ".join(f["kind"] if f["value"] is None else f"{f['kind']} {f['value']:g}"
                               for f in found) or "none")
        for isp, found in faults.items()))
    return "\n".join(lines)
