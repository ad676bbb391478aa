"""Command lines of the lab's dnsmasq instances (no config files: everything is argv).

An ISP's dnsmasq answers DNS with that ISP's split-horizon view
(``svc.example`` -> its own service addresses; ``intranet.ispa.example``
only in ispa; ``mail.ispX.example`` only in ispX; in scenarios 1 and 2 the PvD ID
``ispX.example`` -> its PvD Additional Information server and ``proxy.ispb.example`` -> ispb's
HTTP proxy, each only in its own ISP; the MX of ``svc.example`` and the SRV
``_imap._tcp.svc.example`` pointing to it; PTRs for every address; everything else under
``example`` NXDOMAIN, never forwarded)
and, unless a gateway does it, sends RAs on the access link: the ISP's
prefix for SLAAC (``ra-only``), RDNSS and DNSSL.
"""
from __future__ import annotations

from pvdrun.lab.plan import DNSMASQ_RA_INTERVAL, ROUTER_LIFETIME, IspPlan

_COMMON = ["--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
           "--log-facility=-", "--bind-dynamic", "--log-queries"]


def _ra_args(ifname: str, prefixes: list[str], dns_servers: list[str],
             domains: list[str]) -> list[str]:
    args = ["--enable-ra", f"--ra-param={ifname},{DNSMASQ_RA_INTERVAL},{ROUTER_LIFETIME}"]
    for prefix in prefixes:
        network = prefix.split("/")[0]
        args.append(f"--dhcp-range={network},ra-only,64,1h")
    args.append("--dhcp-option=option6:dns-server," + ",".join(f"[{d}]" for d in dns_servers))
    args.append("--dhcp-option=option6:domain-search," + ",".join(domains))
    return args


def isp_dnsmasq_argv(dnsmasq: str, plan: IspPlan, pid_file: str, send_ra: bool) -> list[str]:
    """dnsmasq for one ISP namespace: DNS on the ISP's addresses (+ RAs on down0 if ``send_ra``)."""
    argv = [dnsmasq, *_COMMON, f"--pid-file={pid_file}", "--interface=down0", "--interface=lo",
            "--local=/example/"]
    service = ",".join(a for a in (plan.service_v4, plan.service_v6) if a)
    argv.append(f"--host-record=svc.example,{service}")
    argv.append(f"--host-record=dns.{plan.search_domain},"
                + ",".join(a for a in (plan.dns_v4, plan.dns_v6) if a))
    mail = f"mail.{plan.search_domain}"
    argv.append(f"--host-record={mail},{plan.mail_v4},{plan.mail_v6}")
    argv.append(f"--mx-host=svc.example,{mail},10")
    argv.append(f"--srv-host=_imap._tcp.svc.example,{mail},143,0,0")
    if plan.intranet_v6:
        intranet = ",".join(a for a in (plan.intranet_v4, plan.intranet_v6) if a)
        argv.append(f"--host-record=intranet.{plan.search_domain},{intranet}")
    if plan.pvd_id and plan.pvd_info_v6:  # the PvD ID names the Additional Information server
        argv.append(f"--host-record={plan.pvd_id},"
                    + ",".join(a for a in (plan.pvd_info_v4, plan.pvd_info_v6) if a))
    if plan.proxy_name and plan.proxy_v6:
        argv.append(f"--host-record={plan.proxy_name},{plan.proxy_v6}")
    if send_ra:
        argv += _ra_args("down0", [plan.prefix_v6], [plan.dns_v6], [plan.search_domain])
    return argv


def gateway_dnsmasq_argv(dnsmasq: str, plans: list[IspPlan], pid_file: str) -> list[str]:
    """dnsmasq of scenario 2's gateway: RAs only (``--port=0``), both prefixes, both RDNSS."""
    return [dnsmasq, *_COMMON, f"--pid-file={pid_file}", "--port=0", "--interface=down0",
            *_ra_args("down0", [p.prefix_v6 for p in plans], [p.dns_v6 for p in plans],
                      [p.search_domain for p in plans])]
