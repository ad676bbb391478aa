"""What the host knows about a link outside the kernel: its kind, and its DNS.

* Kind aliases come from sysfs (``/sys/class/net/X``): ``wifi`` (a
  ``wireless`` or ``phy80211`` entry, or DEVTYPE=wlan), ``cellular``
  (DEVTYPE=wwan), ``vpn`` (tun/tap, wireguard, ppp, xfrm/vti/ipsec links),
  ``ethernet`` (an ARPHRD_ETHER link backed by a physical device).  A veth is
  *not* ethernet: it has no device, so it gets no kind alias.
* Per-link DNS comes from whichever store is present: systemd-networkd /
  systemd-resolved (``/run/systemd/netif/links/<ifindex>``,
  ``/run/systemd/resolve/netif/<ifindex>``), resolvconf
  (``/run/resolvconf/interface/<ifname>[.*]``), NetworkManager (``nmcli``).
  These stores describe the host's initial network namespace; inside another
  namespace they are not read (their ifindexes and names would belong to other
  links), unless PVDRUN_LINKSTATE_ROOT points at a tree to read instead (tests).
* The system resolv.conf is only the last resort, for the default PvD;
  loopback nameservers there (a local stub resolver) are skipped, since a
  stub would resolve through any PvD.
"""
from __future__ import annotations

import functools
import ipaddress
import logging
import os
import shutil
import subprocess
from dataclasses import dataclass, field

from pvdrun.discovery.kernel import ARPHRD_ETHER, ARPHRD_PPP, Link

log = logging.getLogger("pvdrun.discovery")

LINKSTATE_ROOT_ENV = "PVDRUN_LINKSTATE_ROOT"
_VPN_KINDS = {"tun", "tap", "wireguard", "ppp", "xfrm", "vti", "vti6", "ipip", "gre", "ip6tnl"}
SYSFS_NET = "/sys/class/net"


@dataclass
class LinkDns:
    """DNS servers and search domains one store gives for one link."""

    servers: list[str] = field(default_factory=list)
    domains: list[str] = field(default_factory=list)
    store: str | None = None


def _uevent(ifname: str) -> dict[str, str]:
    try:
        with open(os.path.join(SYSFS_NET, ifname, "uevent"), encoding="utf-8") as handle:
            return dict(line.strip().split("=", 1) for line in handle if "=" in line)
    except OSError:
        return {}


def link_kind(link: Link) -> str | None:
    """The kind alias of a link: wifi, cellular, vpn, ethernet, or None."""
    if link.link_kind is not None and link.link_kind != "wwan":
        # a link made from an rtnetlink kind (veth, bridge, vlan, wireguard...) has no radio
        # and no device behind it: no sysfs to read (a thousand veths cost 50 ms of it)
        return "vpn" if link.link_kind in _VPN_KINDS else None
    base = os.path.join(SYSFS_NET, link.name)
    devtype = _uevent(link.name).get("DEVTYPE")
    if os.path.exists(os.path.join(base, "wireless")) or os.path.exists(os.path.join(base, "phy80211")) \
            or devtype == "wlan":
        return "wifi"
    if devtype == "wwan":
        return "cellular"
    if link.link_kind in _VPN_KINDS or link.arphrd == ARPHRD_PPP \
            or os.path.exists(os.path.join(base, "tun_flags")):
        return "vpn"
    if link.arphrd == ARPHRD_ETHER and link.link_kind is None \
            and os.path.exists(os.path.join(base, "device")):
        return "ethernet"
    return None


def _in_initial_netns() -> bool:
    try:
        return os.stat("/proc/self/ns/net").st_ino == os.stat("/proc/1/ns/net").st_ino
    except OSError:
        return False


def _store_root() -> str | None:
    """Root of the per-link stores, or None when they do not describe this netns."""
    root = os.environ.get(LINKSTATE_ROOT_ENV)
    if root:
        return root
    return "/" if _in_initial_netns() else None


def _read_kv(path: str) -> dict[str, str]:
    values: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                line = line.strip()
                if line and not line.startswith("#") and "=" in line:
                    key, value = line.split("=", 1)
                    values[key.strip()] = value.strip()
    except OSError:
        pass
    return values


def _valid_servers(words: list[str]) -> list[str]:
    servers = []
    for word in words:
        word = word.split("#", 1)[0]  # resolved writes "addr#name" for DoT
        try:
            host, sep, zone = word.partition("%")  # a zone is kept: the link decides (assemble)
            servers.append(str(ipaddress.ip_address(host)) + sep + zone)
        except ValueError:
            log.info("ignoring DNS server %r from a link store", word)
    return servers


def _systemd(root: str, link: Link) -> LinkDns | None:
    for rel in ("run/systemd/resolve/netif", "run/systemd/netif/links"):
        values = _read_kv(os.path.join(root, rel, str(link.index)))
        if values.get("DNS") or values.get("DOMAINS"):
            domains = [d.lstrip("~") for d in values.get("DOMAINS", "").split() if d != "~."]
            return LinkDns(servers=_valid_servers(values.get("DNS", "").split()),
                           domains=[d.lower().rstrip(".") for d in domains if d], store=f"systemd:{rel}")
    return None


def parse_resolv_conf(text: str) -> LinkDns:
    """nameserver and search/domain lines of a resolv.conf-format text."""
    dns = LinkDns()
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver":
            dns.servers += _valid_servers(words[1:2])
        elif words and words[0] in ("search", "domain"):
            dns.domains = [w.lower().rstrip(".") for w in words[1:]]
    return dns


@functools.lru_cache(maxsize=8)
def _entries(directory: str, changed: int) -> list[str]:
    """A directory's entries, sorted; read again when it changed (``changed``: its mtime)."""
    return sorted(os.listdir(directory))


def _resolvconf(root: str, link: Link) -> LinkDns | None:
    directory = os.path.join(root, "run/resolvconf/interface")
    try:  # one listing for every link, not one per link
        entries = _entries(directory, os.stat(directory).st_mtime_ns)
    except OSError:
        return None
    merged = LinkDns(store="resolvconf")
    for entry in entries:
        if entry == link.name or entry.startswith(link.name + "."):
            try:
                with open(os.path.join(directory, entry), encoding="utf-8") as handle:
                    part = parse_resolv_conf(handle.read())
            except OSError:
                continue
            merged.servers += part.servers
            merged.domains += part.domains
    return merged if merged.servers or merged.domains else None


def _network_manager(root: str, link: Link) -> LinkDns | None:
    if root != "/" or not os.path.isdir("/run/NetworkManager") or not shutil.which("nmcli"):
        return None
    try:
        out = subprocess.run(["nmcli", "-t", "-f", "IP4.DNS,IP6.DNS,IP4.DOMAIN,IP6.DOMAIN",
                              "device", "show", link.name], capture_output=True, text=True,
                             timeout=3, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    dns = LinkDns(store="networkmanager")
    for line in out.splitlines():
        key, _, value = line.partition(":")
        if ".DNS[" in key:
            dns.servers += _valid_servers([value])
        elif ".DOMAIN[" in key:
            dns.domains.append(value.lower().rstrip("."))
    return dns if dns.servers or dns.domains else None


def link_dns(link: Link) -> LinkDns | None:
    """DNS of one link from the first store that knows it, or None."""
    root = _store_root()
    if root is None:
        return None
    for reader in (_systemd, _resolvconf, _network_manager):
        found = reader(root, link)
        if found is not None:
            return found
    return None


def system_resolv_conf(path: str = "/etc/resolv.conf") -> LinkDns:
    """The system resolv.conf without loopback nameservers (last resort, default PvD only)."""
    try:
        with open(path, encoding="utf-8") as handle:
            dns = parse_resolv_conf(handle.read())
    except OSError:
        return LinkDns()
    dns.servers = [s for s in dns.servers if not ipaddress.ip_address(s.partition("%")[0]).is_loopback]
    dns.store = "resolv.conf"
    return dns
