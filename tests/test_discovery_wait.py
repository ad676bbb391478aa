"""A one-shot discovery asks routers only for what it lacks, and keeps what they said.

Namespaces of our own (fixtures/mininet.py): link ``ispa`` to a dnsmasq router (RDNSS and
DNSSL in plain RAs), link ``ispb`` to the lab's RFC 8801 sender (pvdrun.lab.ra: a PvD option
with its RDNSS; it answers Router Solicitations and otherwise repeats itself only every 600 s),
link ``quiet0`` to a namespace where no router runs.  The host's kernel sends no Router
Solicitation of its own (router_solicitations=0), so every one a capture sees is pvdrun's.
The cache is a file of the test's own ($PVDRUN_RA_CACHE).  Nothing here measures time: what
was sent (captures on the routers' side, proven live by markers), printed and logged is
asserted.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from fixtures.capture import LinkCapture
from fixtures.mininet import MiniNet, net, sh  # noqa: F401 (fixture)

pytestmark = pytest.mark.root

RS_FILTER = "icmp6 and ip6[40] == 133"
#: The line a launch prints when it asks: "asking" before the wait when the name already
#: means a PvD, "asked" after it when only the answers gave the name a PvD.
ANNOUNCE = "the routers on"
#: The lab sender's PvD: its RDNSS travels only inside the RFC 8801 option.
ISPB = {"pvd_id": "ispb.example", "prefix": "2001:db8:b::/64", "rdnss": ["2001:db8:b::53"],
        "dnssl": ["ispb.example"], "router_lifetime": 1800, "lifetime": 3600}

#: One-shot discovery in-process with its log on stderr: WANT is a PvD name or "" (the table).
DISCOVER = r"""
import json, logging, sys
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="log: %(message)s")
from pvdrun.discovery.engine import discover
pvds = discover(want=sys.argv[1] or None)
print(json.dumps({p.pvd_id: p.to_dict() for p in pvds}))
"""


def _quiet_host(net: MiniNet) -> None:
    """The host's own kernel solicits nothing on links made from now on."""
    sh("sysctl", "-qw", "net.ipv6.conf.default.router_solicitations=0", ns=net.host)


def _lab_sender(net: MiniNet, router: str, spec: dict[str, Any]) -> None:
    config = Path(net.tmp) / f"{router}-ra.json"
    config.write_text(json.dumps({"ifname": "r0", "interval": 600, "ras": [spec]}))
    net.spaces.popen(router, [sys.executable, "-m", "pvdrun.lab.ra", "--config", str(config)],
                     stdout=open(os.devnull, "w"), stderr=open(os.devnull, "w"))  # noqa: SIM115


def _kernel_knows_router(net: MiniNet, ifname: str) -> bool:
    out = sh("ip", "-6", "route", "show", "default", "dev", ifname, ns=net.host).stdout
    return "via fe80::" in out and "proto ra" in out


def _env(cache: Path) -> dict[str, str]:
    config = cache.parent / "pvd.toml"
    config.touch()
    return {**os.environ, "PVDRUN_RA_CACHE": str(cache), "PVDRUN_CONFIG": str(config),
            "PVDRUN_SOCKET": str(cache.parent / "no-pvdd.sock")}


def _discover(net: MiniNet, cache: Path, want: str = "") -> tuple[dict[str, Any], str]:
    result = net.run(sys.executable, "-c", DISCOVER, want, env=_env(cache), timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), result.stderr


def _solicitations(cap: LinkCapture) -> list[str]:
    assert not cap.live_problems(), cap.live_problems()
    return [line for line in cap.lines if "router solicitation" in line]


def _two_isps(net: MiniNet) -> tuple[str, str]:
    _quiet_host(net)
    net.add_router("ispa", "ra", "2001:db8:a::/64", rdnss="2001:db8:a::53", dnssl="ispa.example")
    rb = net.add_router("ispb", "rb")
    _lab_sender(net, rb, ISPB)
    net.wait_for(lambda: _kernel_knows_router(net, "ispa") and _kernel_knows_router(net, "ispb"),
                 what="the host kernel's default routes via both routers")
    return f"{net.tag}ra", rb


def test_learns_ra_only_dns_and_pvd_option_then_reads_the_cache(net: MiniNet, tmp_path: Path) -> None:
    """The first lookup asks (and says so on stderr), learns the RDNSS of plain RAs and the
    PvD option; the next lookup of the same PvD reads the cache: no Router Solicitation on
    its link, no line on stderr, the same answer."""
    _ra, rb = _two_isps(net)
    cache = tmp_path / "ras.json"
    lookup = [sys.executable, "-c", "import pvdrun; p = pvdrun.lookup('ispb'); "
              "print(p.pvd_id, ','.join(p.dns_servers))"]
    with LinkCapture(rb, "r0", RS_FILTER, label="ispb router") as first_cap:
        first = net.run(*lookup, env=_env(cache), timeout=60)
    assert first.returncode == 0, first.stderr
    assert first.stdout.split() == ["ispb.example", "2001:db8:b::53"]
    # "ispb" is an RA-learned PvD: the answers named it, so the line comes after the wait
    assert first.stderr.startswith("pvdrun: asked the routers on ispa, ispb for PvD data"), \
        first.stderr
    assert "run pvdd to avoid this wait" in first.stderr
    assert len(first.stderr.strip().splitlines()) == 1, first.stderr
    assert _solicitations(first_cap), "the first lookup sent no Router Solicitation on ispb"
    with LinkCapture(rb, "r0", RS_FILTER, label="ispb router") as second_cap:
        second = net.run(*lookup, env=_env(cache), timeout=60)
    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout
    assert second.stderr == "", "a lookup that asked nobody printed something"
    assert _solicitations(second_cap) == []

    pvds, log = _discover(net, cache)  # the whole table: ispa's RDNSS from a plain RA
    assert pvds["implicit:ispa"]["dns_servers"] == ["2001:db8:a::53"]
    assert pvds["implicit:ispa"]["search_domains"] == ["ispa.example"]
    ispb = pvds["ispb.example"]
    assert ispb["explicit"] and ispb["dns_servers"] == ["2001:db8:b::53"]
    assert ANNOUNCE not in log  # only a lookup by name (a launch) announces its wait


def test_list_json_never_prints_the_line(net: MiniNet, tmp_path: Path) -> None:
    """``pvdrun list --json`` asks the routers (an empty cache) without a word on stderr."""
    _two_isps(net)
    result = net.run(sys.executable, "-m", "pvdrun.cli", "list", "--json", "--no-daemon",
                     env=_env(tmp_path / "ras.json"), timeout=60)
    assert result.returncode == 0, result.stderr
    assert ANNOUNCE not in result.stderr
    pvds = {p["pvd_id"]: p for p in json.loads(result.stdout)["pvds"]}
    assert pvds["implicit:ispa"]["dns_servers"] == ["2001:db8:a::53"]
    assert pvds["ispb.example"]["dns_servers"] == ["2001:db8:b::53"]


def test_expired_cache_entry_is_not_used(net: MiniNet, tmp_path: Path) -> None:
    """Entries whose lifetimes ran out are dropped on reading: the routers are asked again."""
    _ra, rb = _two_isps(net)
    cache = tmp_path / "ras.json"
    pvds, _log = _discover(net, cache, "ispb")
    assert pvds["ispb.example"]["dns_servers"] == ["2001:db8:b::53"]
    data = json.loads(cache.read_text())
    (entry,) = data["netns"].values()

    def past(options: dict[str, Any]) -> None:  # every element expired a while ago
        for key in ("prefixes", "rdnss", "dnssl"):
            options[key] = {k: 1.0 for k in options[key]}
        options["routes"] = {k: [p, 1.0] for k, (p, _t) in options["routes"].items()}
        options["prefix_flags"] = {k: [a, b, 1.0] for k, (a, b, _t) in options["prefix_flags"].items()}
        options["default_until"] = 1.0 if options["default_until"] else 0.0

    for record in entry["ras"]["routers"] + entry["ras"]["explicit"]:
        past(record["options"])
    cache.write_text(json.dumps(data))
    with LinkCapture(rb, "r0", RS_FILTER, label="ispb router") as cap:
        pvds, log = _discover(net, cache, "ispb")
    assert _solicitations(cap), "an expired cache entry was taken for an answer"
    assert ANNOUNCE in log
    assert pvds["ispb.example"]["dns_servers"] == ["2001:db8:b::53"]  # heard again
    again = json.loads(cache.read_text())
    (entry,) = again["netns"].values()
    assert any(r["pvd_id"] == "ispb.example" for r in entry["ras"]["explicit"])


def test_link_without_router_waited_on_to_the_bound_once(net: MiniNet, tmp_path: Path) -> None:
    """A link where no router is known gets one solicitation and is listened to until the
    RFC 4861 bound, no more (the log says which); the next discovery does not ask it again."""
    from pvdrun.discovery.engine import PRIME_WAIT

    _quiet_host(net)
    rz = net.add_router("quiet0", "rz", None, ("198.18.5.2/24", "198.18.5.1/24"))
    cache = tmp_path / "ras.json"
    with LinkCapture(rz, "r0", RS_FILTER, label="quiet0 peer") as cap:
        _pvds, log = _discover(net, cache, "quiet0")
    assert len(_solicitations(cap)) == 1, cap.lines
    # implicit:quiet0 exists (its IPv4 address) without DNS servers: said before the wait
    assert f"pvdrun: asking the routers on quiet0 for PvD data ({PRIME_WAIT:.1f} s at most;" in log
    heard = [l for l in log.splitlines() if l.startswith("log: ") and "solicited" in l]
    assert len(heard) == 1 and "answered: none" in heard[0], log
    assert f"listened to the bound ({PRIME_WAIT:.1f} s)" in heard[0], log
    with LinkCapture(rz, "r0", RS_FILTER, label="quiet0 peer") as cap:
        _pvds, log = _discover(net, cache, "quiet0")
    assert _solicitations(cap) == []
    assert ANNOUNCE not in log and "solicited" not in log


def test_launch_says_why_it_waits_only_when_it_asks(net: MiniNet, tmp_path: Path) -> None:
    """``pvdrun --pvd quiet0 true`` (a PvD without DNS servers, on a link without a router)
    asks and says so before waiting, in one line; ``pvdrun --pvd ispb.example true`` (an
    RA-learned PvD) says it after the answers named it; launched again with the answers
    cached, neither asks anyone nor prints anything."""
    _quiet_host(net)
    rz = net.add_router("quiet0", "rz", None, ("198.18.5.2/24", "198.18.5.1/24"))
    rb = net.add_router("ispb", "rb")
    _lab_sender(net, rb, ISPB)
    net.wait_for(lambda: _kernel_knows_router(net, "ispb"), what="the default route via ispb's router")
    cache = tmp_path / "ras.json"
    line = "the routers on {} for PvD data (0.6 s at most; run pvdd to avoid this wait)"
    # quiet0, asked by the first launch, has no router: the second PvD's launch asks ispb only
    for name, links, said, router in (("quiet0", "quiet0", "asking", rz),
                                      ("ispb.example", "ispb", "asked", rb)):
        launch = [sys.executable, "-m", "pvdrun.cli", "--pvd", name, "true"]
        with LinkCapture(router, "r0", RS_FILTER, label=f"{name} router") as first_cap:
            first = net.run(*launch, env=_env(cache), timeout=60)
        assert first.returncode == 0, first.stderr
        assert first.stderr.splitlines() == [f"pvdrun: {said} " + line.format(links)]
        assert len(_solicitations(first_cap)) == 1
        with LinkCapture(router, "r0", RS_FILTER, label=f"{name} router") as second_cap:
            second = net.run(*launch, env=_env(cache), timeout=60)
        assert second.returncode == 0, second.stderr
        assert second.stderr == ""
        assert _solicitations(second_cap) == []
