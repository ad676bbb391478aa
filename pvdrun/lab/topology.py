"""Building a lab: namespaces, links, addresses, routes, daemons (``lab up``).

Every step is recorded in the state file before the next one starts, so a
failure midway is torn down completely by :func:`pvdrun.lab.teardown.down`.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

from pvdrun.lab import pki, proxy, pvdinfo
from pvdrun.lab import state as lab_state
from pvdrun.lab.dnsmasq import gateway_dnsmasq_argv, isp_dnsmasq_argv
from pvdrun.lab.errors import LabError
from pvdrun.lab.netns import NetnsTool
from pvdrun.lab.plan import (ACCESS_V4_PLEN, HOST_LAN, ISP_DOWNLINK, ISPS, PROXY_PORT,
                             PVD_RA_INTERVAL, ROUTER_LIFETIME, IspPlan, isp_plans)
from pvdrun.lab.pvdserver import HTTPS_PORT
from pvdrun.lab.ra import spec_sequence

#: Popen objects of daemons this process started, by pid, so teardown can reap them.
CHILDREN: dict[int, subprocess.Popen] = {}

ROUTER_SYSCTLS = {"net.ipv4.ip_forward": 1, "net.ipv6.conf.all.forwarding": 1,
                  "net.ipv6.conf.default.forwarding": 1,
                  # static router addresses must be usable at once (dnsmasq binds them)
                  "net.ipv6.conf.all.accept_dad": 0, "net.ipv6.conf.default.accept_dad": 0}
#: Source-routing tables of scenario 2's gateway.
GW_TABLES = {"ispa": 101, "ispb": 102}


class LabBuilder:
    """Builds one scenario; ``state`` is the state-file dict it keeps up to date."""

    def __init__(self, name: str, scenario: int, tools: dict[str, str],
                 lab: dict[str, Any]) -> None:
        self.name = name
        self.scenario = scenario
        self.tools = tools
        self.lab = lab
        self.net = NetnsTool(tools["ip"], tools["sysctl"])
        self.plans = isp_plans(scenario)
        self.run_dir = lab_state.run_dir(name)

    # -- bookkeeping ---------------------------------------------------------
    def ns(self, role: str) -> str:
        """Namespace name of a role."""
        return f"{self.name}-{role}"

    def save(self) -> None:
        lab_state.save(self.name, self.lab)

    def add_ns(self, role: str, router: bool) -> str:
        """Create the namespace of ``role`` (recorded first, so teardown finds it)."""
        ns = self.ns(role)
        self.lab["namespaces"][role] = ns
        self.save()
        self.net.add_netns(ns)
        if router:
            self.net.sysctl(ns, ROUTER_SYSCTLS)
        return ns

    def spawn(self, role: str, what: str, argv: list[str]) -> int:
        """Start a daemon inside ``role``'s namespace; its output goes to a log file."""
        ns = self.ns(role)
        log_path = self.run_dir / f"{role}-{what}.log"
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(self.net.exec_argv(ns, argv), stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT, cwd="/",
                                    start_new_session=True, close_fds=True)
        CHILDREN[proc.pid] = proc
        self.lab["processes"].append({"pid": proc.pid, "ns": ns, "role": role, "what": what,
                                      "log": str(log_path)})
        self.save()
        return proc.pid

    def check_spawned(self) -> None:
        """Fail (with the log's last line) if a daemon already exited."""
        for entry in self.lab["processes"]:
            proc = CHILDREN.get(entry["pid"])
            if proc is not None and proc.poll() is not None:
                with open(entry["log"], encoding="utf-8", errors="replace") as log:
                    lines = log.read().strip().splitlines() or ["(no output)"]
                raise LabError(f"{entry['what']} in {entry['ns']} exited "
                               f"({proc.returncode}): {lines[-1]}")

    # -- pieces ----------------------------------------------------------------
    def addr(self, role: str, ifname: str, cidr: str, *extra: str) -> None:
        self.net.ip(self.ns(role), "addr", "add", cidr, "dev", ifname, *extra)

    def up_link(self, role: str, ifname: str) -> None:
        self.net.ip(self.ns(role), "link", "set", ifname, "up")

    def isp_service_addresses(self, plan: IspPlan) -> None:
        """Service, DNS and intranet addresses on the ISP's loopback."""
        role = plan.name
        for address in (plan.service_v4, plan.dns_v4, plan.intranet_v4, plan.pvd_info_v4):
            if address:
                self.addr(role, "lo", f"{address}/32")
        for address in (plan.service_v6, plan.dns_v6, plan.intranet_v6, plan.pvd_info_v6,
                        plan.proxy_v6):
            if address:
                self.addr(role, "lo", f"{address}/128", "nodad")

    def isp_access_addresses(self, plan: IspPlan) -> None:
        """The ISP router's addresses on its access link (scenarios 1 and 3)."""
        if plan.router_v4:
            self.addr(plan.name, ISP_DOWNLINK, f"{plan.router_v4}/{ACCESS_V4_PLEN}")
        self.addr(plan.name, ISP_DOWNLINK, f"{plan.router_v6}/64", "nodad")

    def host_interface(self, ifname: str, ra_metric: int | None = None) -> None:
        """RA/SLAAC settings of a host interface (link stays down until the routers run)."""
        prefix = f"net.ipv6.conf.{ifname}"
        settings: dict[str, str | int] = {f"{prefix}.accept_ra": 2, f"{prefix}.autoconf": 1,
                                          f"{prefix}.accept_ra_rt_info_max_plen": 64,
                                          f"{prefix}.forwarding": 0}
        if ra_metric is not None:
            settings[f"{prefix}.ra_defrtr_metric"] = ra_metric
        self.net.sysctl(self.ns("host"), settings)

    def host_v4(self, plan: IspPlan, ifname: str) -> None:
        """Host IPv4 as a network manager leaves it: address, subnet and default with a metric."""
        host = self.ns("host")
        metric = str(plan.v4_metric)
        self.net.ip(host, "addr", "add", f"{plan.host_v4}/{ACCESS_V4_PLEN}", "dev", ifname,
                    "noprefixroute")
        self.net.ip(host, "route", "add", f"192.0.2.0/{ACCESS_V4_PLEN}", "dev", ifname,
                    "metric", metric, "src", str(plan.host_v4))
        self.net.ip(host, "route", "add", "default", "via", str(plan.router_v4), "dev", ifname,
                    "metric", metric)

    def start_isp(self, plan: IspPlan, send_ra: bool) -> None:
        """dnsmasq and the HTTP/UDP-echo service of one ISP."""
        pid_file = str(self.run_dir / f"{plan.name}-dnsmasq.pid")
        self.spawn(plan.name, "dnsmasq",
                   isp_dnsmasq_argv(self.tools["dnsmasq"], plan, pid_file, send_ra))
        service = [sys.executable, "-m", "pvdrun.lab.service", "--lab", self.name,
                   "--isp", plan.name]
        for address in (plan.service_v4, plan.service_v6):
            if address:
                service += ["--address", address]
        self.spawn(plan.name, "service", service)
        if plan.pvd_info_v6:
            self.start_pvd_info(plan)
        if plan.proxy_v6:
            config = proxy.write_config(self.run_dir, plan)
            self.lab.setdefault("proxy", {})[plan.name] = {
                "name": plan.proxy_name, "address": plan.proxy_v6, "port": PROXY_PORT,
                "url": f"http://[{plan.proxy_v6}]:{PROXY_PORT}", "config": str(config),
                "log": str(self.run_dir / f"{plan.name}-tinyproxy.log"),
                "allow": [plan.prefix_v6]}
            self.spawn(plan.name, "tinyproxy", proxy.argv(self.tools["tinyproxy"], config))

    def make_ca(self) -> None:
        """The lab's CA (scenarios 1, 2), recorded as ``ca_file``."""
        self.lab["ca_file"] = str(pki.make_ca(self.tools["openssl"], self.run_dir, self.name))
        self.save()

    def start_pvd_info(self, plan: IspPlan) -> None:
        """The ISP's certificate, object and HTTPS server (RFC 8801 PvD Additional Information)."""
        assert plan.pvd_id is not None and plan.pvd_info_v6 is not None
        stem = f"{plan.name}-pvd-info"
        cert, key = pki.server_cert(self.tools["openssl"], self.run_dir, stem, plan.pvd_id)
        obj = pvdinfo.default_object(plan, time.time())
        body = self.run_dir / f"{stem}.body"
        pvdinfo.write_body(body, pvdinfo.encode(obj))
        log = self.run_dir / f"{stem}-requests.log"
        log.touch()
        addresses = [a for a in (plan.pvd_info_v6, plan.pvd_info_v4) if a]
        self.lab.setdefault("pvd_info", {})[plan.name] = {
            "url": pvdinfo.url_of(plan), "addresses": addresses, "port": HTTPS_PORT,
            "object": obj, "raw": None, "h_flag": True, "sequence": None, "body": str(body),
            "log": str(log), "cert": str(cert), "key": str(key), "changes": []}
        argv = [sys.executable, "-m", "pvdrun.lab.pvdserver", "--lab", self.name,
                "--isp", plan.name, "--cert", str(cert), "--key", str(key),
                "--body", str(body), "--log", str(log)]
        for address in addresses:
            argv += ["--address", address]
        self.spawn(plan.name, "pvd-info", argv)
    def start_pvd_ra(self, role: str, plans: list[IspPlan]) -> None:
        """The lab's own RFC 8801 RA sender on ``role``'s down0 (see ra.py)."""
        ras: list[dict[str, Any]] = [
            {"pvd_id": p.pvd_id, "prefix": p.prefix_v6, "routes": [p.service_prefix_v6],
             "rdnss": [p.dns_v6], "dnssl": [p.search_domain], "h": p.pvd_info_v6 is not None,
             "router_lifetime": ROUTER_LIFETIME, "top_level_routes": True} for p in plans]
        config = {"ifname": ISP_DOWNLINK, "interval": PVD_RA_INTERVAL, "ras": ras}
        for spec, plan in zip(ras, plans):
            spec["sequence"] = spec_sequence(spec)  # explicit: lab pvd-info --bump-sequence
            if plan.name in self.lab.get("pvd_info", {}):
                self.lab["pvd_info"][plan.name]["sequence"] = spec["sequence"]
        path = self.run_dir / f"{role}-pvd-ra.json"
        path.write_text(json.dumps(config, indent=1), encoding="utf-8")
        self.spawn(role, "pvd-ra", [sys.executable, "-m", "pvdrun.lab.ra", "--lab", self.name,
                                    "--config", str(path)])

    # -- scenarios ---------------------------------------------------------------
    def build(self) -> None:
        """Create the scenario's namespaces, links and daemons; host links come up last."""
        self.add_ns("host", router=False)
        if self.scenario in (1, 2):
            self.make_ca()
        {1: self.build_shared_link, 2: self.build_gateway, 3: self.build_two_uplinks}[
            self.scenario]()

    def build_two_uplinks(self) -> None:
        """Scenario 3 (Figure 3): host interfaces ``ispa``/``ispb``, one per ISP router."""
        for name in ISPS:
            plan = self.plans[name]
            self.add_ns(name, router=True)
            self.net.veth(self.ns("host"), name, self.ns(name), ISP_DOWNLINK)
            self.isp_service_addresses(plan)
            self.isp_access_addresses(plan)
            self.up_link(name, ISP_DOWNLINK)
            self.host_interface(name, ra_metric=plan.v4_metric)
        for name in ISPS:
            self.start_isp(self.plans[name], send_ra=True)
        for name in ISPS:
            self.up_link("host", name)
            self.host_v4(self.plans[name], name)

    def build_shared_link(self) -> None:
        """Scenario 1 (Figure 1): one host link (a bridge) shared by both ISP routers."""
        link = self.add_ns("link", router=False)
        # a pure L2 segment: no IPv6 of its own (no RS, no SLAAC on the bridge)
        self.net.sysctl(link, {"net.ipv6.conf.all.disable_ipv6": 1,
                               "net.ipv6.conf.default.disable_ipv6": 1})
        self.net.ip(link, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
        self.net.ip(link, "link", "set", "br0", "up")
        self.net.veth(self.ns("host"), HOST_LAN, link, "host")
        for name in ISPS:
            plan = self.plans[name]
            self.add_ns(name, router=True)
            self.net.veth(self.ns(name), ISP_DOWNLINK, link, name)
            self.isp_service_addresses(plan)
            self.isp_access_addresses(plan)
        for port in ("host", *ISPS):
            self.net.ip(link, "link", "set", port, "master", "br0", "up")
        for name in ISPS:
            self.up_link(name, ISP_DOWNLINK)
            self.start_isp(self.plans[name], send_ra=True)
            self.start_pvd_ra(name, [self.plans[name]])
        self.host_interface(HOST_LAN)
        self.up_link("host", HOST_LAN)
        self.host_v4(self.plans["ispa"], HOST_LAN)

    def build_gateway(self) -> None:
        """Scenario 2 (Figure 2): one gateway, source-routed to two upstream ISPs."""
        gw = self.add_ns("gw", router=True)
        self.net.veth(self.ns("host"), HOST_LAN, gw, ISP_DOWNLINK)
        self.net.ip(gw, "addr", "add", f"{self.plans['ispa'].router_v4}/{ACCESS_V4_PLEN}",
                    "dev", ISP_DOWNLINK)
        self.net.ip(gw, "-6", "rule", "add", "pref", "1000", "lookup", "main",
                    "suppress_prefixlength", "0")
        for name in ISPS:
            plan = self.plans[name]
            uplink = f"up-{name[-1]}"
            self.add_ns(name, router=True)
            self.net.veth(gw, uplink, self.ns(name), ISP_DOWNLINK)
            self.isp_service_addresses(plan)
            up6 = plan.upstream_v6
            self.addr(name, ISP_DOWNLINK, f"{up6['isp']}/{up6['plen']}", "nodad")
            self.net.ip(gw, "addr", "add", f"{up6['gw']}/{up6['plen']}", "dev", uplink, "nodad")
            self.net.ip(gw, "addr", "add", f"{plan.router_v6}/64", "dev", ISP_DOWNLINK, "nodad")
            self.up_link(name, ISP_DOWNLINK)
            self.up_link("gw", uplink)
            # the ISP routes the host's prefix (and IPv4 subnet) back to the gateway
            self.net.ip(self.ns(name), "-6", "route", "add", plan.prefix_v6, "via", up6["gw"])
            table = str(GW_TABLES[name])
            self.net.ip(gw, "-6", "route", "add", "default", "via", up6["isp"], "dev", uplink,
                        "table", table)
            network48 = plan.prefix_v6.replace("::/64", "::/48")
            self.net.ip(gw, "-6", "rule", "add", "pref", str(1000 + int(table) - 100),
                        "from", network48, "iif", ISP_DOWNLINK, "lookup", table)
            if plan.upstream_v4:
                up4 = plan.upstream_v4
                self.addr(name, ISP_DOWNLINK, f"{up4['isp']}/{up4['plen']}")
                self.net.ip(gw, "addr", "add", f"{up4['gw']}/{up4['plen']}", "dev", uplink)
                self.net.ip(gw, "route", "add", "default", "via", up4["isp"])
                self.net.ip(self.ns(name), "route", "add", f"192.0.2.0/{ACCESS_V4_PLEN}",
                            "via", up4["gw"])
        self.up_link("gw", ISP_DOWNLINK)
        for name in ISPS:
            self.start_isp(self.plans[name], send_ra=False)
        pid_file = str(self.run_dir / "gw-dnsmasq.pid")
        self.spawn("gw", "dnsmasq", gateway_dnsmasq_argv(
            self.tools["dnsmasq"], [self.plans[n] for n in ISPS], pid_file))
        self.start_pvd_ra("gw", [self.plans[n] for n in ISPS])
        self.host_interface(HOST_LAN)
        self.up_link("host", HOST_LAN)
        self.host_v4(self.plans["ispa"], HOST_LAN)

    # -- readiness -----------------------------------------------------------------
    def wait_ready(self, timeout: float, isps: tuple[str, ...] | None = None) -> None:
        """Wait until the host has its SLAAC addresses and every service answers (of the
        ISPs ``isps``; every ISP when None)."""
        deadline = time.monotonic() + timeout
        host = self.ns("host")
        plans = [p for p in self.plans.values() if isps is None or p.name in isps]
        while True:
            self.check_spawned()
            missing = [p.name for p in plans
                       if not _has_slaac_address(self.net, host, p.prefix_v6)]
            if not missing:
                break
            if time.monotonic() >= deadline:
                raise LabError(f"lab {self.name}: no SLAAC address from {', '.join(missing)} "
                               f"within {timeout:g} s")
            time.sleep(0.2)
        targets: list[dict[str, Any]] = []
        for plan in plans:
            device = plan.host_interfaces[0]
            for address in (plan.service_v4, plan.service_v6):
                if address:
                    targets.append({"kind": "http", "addr": address, "device": device,
                                    "expect": plan.name})
            for address in (plan.pvd_info_v6, plan.pvd_info_v4):
                if address:
                    targets.append({"kind": "tcp", "addr": address, "port": HTTPS_PORT,
                                    "device": device})
            if plan.proxy_v6:
                targets.append({"kind": "tcp", "addr": plan.proxy_v6, "port": PROXY_PORT,
                                "device": device})
            for server in (plan.dns_v4, plan.dns_v6):
                if server:
                    targets.append({"kind": "dns", "addr": server, "device": device,
                                    "name": "svc.example", "type": "AAAA",
                                    "expect": plan.service_v6})
        remaining = max(1.0, deadline - time.monotonic())
        try:
            done = self.net.run_in(host, [sys.executable, "-m", "pvdrun.lab.probe", "wait",
                                          "--targets", json.dumps(targets),
                                          "--timeout", f"{remaining:.1f}"],
                                   check=False, timeout=remaining + 10)
        except subprocess.TimeoutExpired:
            raise LabError(f"lab {self.name}: services not answering within {timeout:g} s "
                           "(the probe did not finish)") from None
        self.check_spawned()
        if done.returncode != 0:
            raise LabError(f"lab {self.name}: services not answering within {timeout:g} s: "
                           f"{done.stderr.strip()[:300]}")


def _has_slaac_address(net: NetnsTool, ns: str, prefix: str) -> bool:
    """True if ``ns`` has a non-tentative global address inside ``prefix``."""
    import ipaddress

    network = ipaddress.IPv6Network(prefix)
    for link in net.ip_json(ns, "-6", "addr", "show"):
        for info in link.get("addr_info", []):
            if info.get("scope") != "global" or info.get("tentative") or info.get("dadfailed"):
                continue
            if ipaddress.IPv6Address(info["local"]) in network:
                return True
    return False


def wait_for_children_exit(pids: list[int]) -> None:
    """Reap daemons this process started (no zombies left behind in tests)."""
    for pid in pids:
        proc = CHILDREN.pop(pid, None)
        if proc is not None:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
