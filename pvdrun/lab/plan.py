"""Address plans of the three lab scenarios (docs/lab.md has the diagrams).

Scenarios follow Figures 1-3 of the Troan et al. multihoming draft
(/work/shared/seeds/ipv6-multihoming-without-nat-troan-2014.txt):

1. one host link shared by two ISP routers (a bridge in ``<NAME>-link``);
2. one gateway (``<NAME>-gw``) with an upstream to each ISP;
3. two host interfaces ``ispa`` and ``ispb``, one per ISP, with OVERLAPPING
   IPv4 plans (same access subnet, router, host, DNS and service address).
"""
from __future__ import annotations

from dataclasses import dataclass, field

ISPS = ("ispa", "ispb")
SCENARIOS = (1, 2, 3)

#: Router lifetime of every RA in the lab (dnsmasq's and the lab's own).
ROUTER_LIFETIME = 1800
#: Seconds between the lab's own (RFC 8801) RAs.
PVD_RA_INTERVAL = 2
#: Seconds between dnsmasq's unsolicited RAs (it also answers RSs at once).
DNSMASQ_RA_INTERVAL = 10

ACCESS_V4_PLEN = 24
ROUTER_V4 = "192.0.2.1"
HOST_V4 = "192.0.2.10"
#: Interface of each ISP namespace towards the host (or the gateway).
ISP_DOWNLINK = "down0"
#: Host interface in scenarios 1 and 2.
HOST_LAN = "lan0"
#: Host IPv4 route metrics, as a network manager would set them.
V4_METRIC = {"ispa": 100, "ispb": 200}


@dataclass
class IspPlan:
    """Everything one ISP provides in one scenario (None: not in this scenario)."""

    name: str
    prefix_v6: str
    router_v6: str
    service_v6: str
    dns_v6: str
    intranet_v6: str | None
    mail_v6: str
    service_prefix_v6: str
    host_interfaces: list[str]
    search_domain: str
    pvd_id: str | None
    router_v4: str | None = None
    host_v4: str | None = None
    service_v4: str | None = None
    dns_v4: str | None = None
    intranet_v4: str | None = None
    #: mail.<search domain>'s A record: DNS data only (MX and SRV targets), nothing listens there
    mail_v4: str | None = None
    v4_metric: int | None = None
    upstream_v6: dict[str, str] = field(default_factory=dict)  # scenario 2: isp/gw link addresses
    upstream_v4: dict[str, str] = field(default_factory=dict)
    #: the HTTPS server of the PvD Additional Information (scenarios 1, 2: where pvd_id is set)
    pvd_info_v6: str | None = None
    pvd_info_v4: str | None = None
    #: the ISP's HTTP proxy (tinyproxy; ispb in scenarios 1, 2), and its name in the ISP's DNS
    proxy_v6: str | None = None
    proxy_name: str | None = None


def _isp_v6(name: str) -> dict[str, str | None]:
    letter = name[-1]
    return {
        "prefix_v6": f"2001:db8:{letter}::/64",
        "router_v6": f"2001:db8:{letter}::1",
        "service_prefix_v6": f"2001:db8:{letter}:1::/64",
        "service_v6": f"2001:db8:{letter}:1::80",
        "dns_v6": f"2001:db8:{letter}:1::53",
        "intranet_v6": f"2001:db8:{letter}:1::81" if name == "ispa" else None,
        "mail_v6": f"2001:db8:{letter}:1::25",
    }


#: Port of every ISP's HTTP proxy (tinyproxy), where there is one.
PROXY_PORT = 3128
#: The ISP that runs an HTTP proxy (scenarios 1, 2).
PROXY_ISP = "ispb"
#: IPv4 address of the PvD Additional Information server where the ISP has IPv4 (scenarios 1, 2).
PVD_INFO_V4 = {"ispa": "198.51.100.43"}


#: mail.<search domain>'s IPv4 address in every scenario (a record only, also where the ISP has
#: no IPv4 service): each ISP's own, so that an A answer tells which ISP's DNS gave it.
MAIL_V4 = {"ispa": "198.51.100.25", "ispb": "203.0.113.25"}


#: IPv4 service side per ISP where the plans are distinct (scenarios 1, 2).
_DISTINCT_V4 = {
    "ispa": {"service_v4": "198.51.100.80", "dns_v4": "198.51.100.53",
             "intranet_v4": "198.51.100.81"},
    "ispb": {"service_v4": "203.0.113.80", "dns_v4": "203.0.113.53", "intranet_v4": None},
}
#: Scenario 3: both ISPs use the SAME IPv4 addresses, so only scoping picks one.
_OVERLAP_V4 = {
    "ispa": {"service_v4": "198.51.100.80", "dns_v4": "198.51.100.53",
             "intranet_v4": "198.51.100.81"},
    "ispb": {"service_v4": "198.51.100.80", "dns_v4": "198.51.100.53", "intranet_v4": None},
}


def isp_plans(scenario: int) -> dict[str, IspPlan]:
    """The ISP plans of one scenario, keyed by ISP name."""
    plans: dict[str, IspPlan] = {}
    for name in ISPS:
        letter = name[-1]
        plan = IspPlan(name=name, search_domain=f"{name}.example",
                       pvd_id=None if scenario == 3 else f"{name}.example", mail_v4=MAIL_V4[name],
                       host_interfaces=[name] if scenario == 3 else [HOST_LAN],
                       **_isp_v6(name))  # type: ignore[arg-type]
        has_v4 = scenario == 3 or name == "ispa"  # scenarios 1, 2: one IPv4 router only
        if has_v4:
            v4 = (_OVERLAP_V4 if scenario == 3 else _DISTINCT_V4)[name]
            plan.router_v4, plan.host_v4 = ROUTER_V4, HOST_V4
            plan.service_v4, plan.dns_v4 = v4["service_v4"], v4["dns_v4"]
            plan.intranet_v4, plan.v4_metric = v4["intranet_v4"], V4_METRIC[name]
        if plan.pvd_id is not None:
            plan.pvd_info_v6 = f"2001:db8:{letter}:1::443"
            plan.pvd_info_v4 = PVD_INFO_V4.get(name) if has_v4 else None
            if name == PROXY_ISP:
                plan.proxy_v6 = f"2001:db8:{letter}:1::3128"
                plan.proxy_name = f"proxy.{plan.search_domain}"
        if scenario == 2:
            plan.upstream_v6 = {"isp": f"2001:db8:{letter}:ff::1", "gw": f"2001:db8:{letter}:ff::2",
                                "plen": "64"}
            if has_v4:
                plan.upstream_v4 = {"isp": "100.64.1.1", "gw": "100.64.1.2", "plen": "30"}
        plans[name] = plan
    return plans
