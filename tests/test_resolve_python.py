"""The Python per-PvD resolver (pvdrun.resolve), its cache, the resolv.conf
view for dig & co, and ``pvdrun resolve`` (R25; section 5.3 of the Troan
multihoming document).  Lab tests run their code inside the client namespace
of fixtures/resolve_lab.py's labs."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fixtures.capture import assert_caught, assert_no_leak
from pvdrun.model import Pvd
from pvdrun.resolve.cache import DnsCache
from pvdrun.resolve.errors import NO_SERVER, NXDOMAIN, ResolveError
from pvdrun.resolve.order import sort_destinations
from pvdrun.resolve.resolvconf import NO_SERVER_PLACEHOLDER, render_resolv_conf
from pvdrun.resolve.resolver import Answer, PvdResolver, ResolverOptions
from pvdrun.resolve.sockets import usable_servers
from fixtures.pvdd import config_only
from fixtures.resolve_lab import SPLIT_PVDS, ResolveLab, overlap_lab, split_lab, spoofing_server, hostile_server, link_local_server  # noqa: F401


def make_pvd(**fields: object) -> Pvd:
    base = dict(pvd_id="ispa.example", handle=7, interfaces=["a0"], ifindexes=[2],
                addresses=["10.1.0.2/24", "2001:db8:a::2/64"], dns_servers=["10.1.0.1"],
                search_domains=["isp-a.example"])
    base.update(fields)
    return Pvd(**base)  # type: ignore[arg-type]


class FakeClock:
    """A clock the test moves by hand (no sleeping, no wall-clock assertions)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- pure parts ---------------------------------------------------------------

def test_cache_honours_ttl() -> None:
    clock = FakeClock()
    cache = DnsCache(clock=clock)
    answer = Answer("svc.example", "A", "svc.example", 30, ["10.1.0.80"], "10.1.0.1")
    cache.put("ispa.example", "SVC.example.", "a", answer, 30)
    assert cache.get("ispa.example", "svc.example", "A") is answer
    assert cache.get("ispb.example", "svc.example", "A") is None  # per PvD
    clock.now += 29.9
    assert cache.get("ispa.example", "svc.example", "A") is answer
    clock.now += 0.2
    assert cache.get("ispa.example", "svc.example", "A") is None
    cache.put("ispa.example", "zero.example", "A", answer, 0)
    assert cache.get("ispa.example", "zero.example", "A") is None


def test_cache_flushes_when_the_pvds_dns_changes() -> None:
    cache = DnsCache(clock=FakeClock())
    pvd = make_pvd()
    assert cache.observe(pvd) is False
    cache.put(pvd.pvd_id, "svc.example", "A", "x", 60)
    cache.put("ispb.example", "svc.example", "A", "y", 60)
    assert cache.observe(make_pvd()) is False  # same configuration: kept
    assert cache.get(pvd.pvd_id, "svc.example", "A") == "x"
    assert cache.observe(make_pvd(dns_servers=["10.1.0.53"])) is True
    assert cache.get(pvd.pvd_id, "svc.example", "A") is None
    assert cache.get("ispb.example", "svc.example", "A") == "y"  # other PvDs untouched
    cache.put(pvd.pvd_id, "svc.example", "A", "x", 60)
    assert cache.observe(make_pvd(dns_servers=["10.1.0.53"], search_domains=[])) is True
    assert len(cache) == 1


def test_service_sync_flushes_changed_and_forgets_removed_pvds() -> None:
    from pvdrun.resolve.service import PvdResolverService

    service = PvdResolverService(DnsCache(clock=FakeClock()))
    a, b = make_pvd(), make_pvd(pvd_id="ispb.example", dns_servers=["2001:db8:b::1"])
    assert service.sync([a, b]) == []
    service.cache.put(a.pvd_id, "svc.example", "A", "from-a", 60)
    service.cache.put(b.pvd_id, "svc.example", "A", "from-b", 60)
    assert service.sync([a, b]) == []  # nothing changed: both kept
    assert service.sync([make_pvd(dns_servers=["10.1.0.53"]), b]) == ["ispa.example"]
    assert service.cache.get(a.pvd_id, "svc.example", "A") is None
    assert service.cache.get(b.pvd_id, "svc.example", "A") == "from-b"
    assert service.sync([make_pvd(dns_servers=["10.1.0.53"])]) == ["ispb.example"]  # B is gone
    assert service.cache.get(b.pvd_id, "svc.example", "A") is None


def test_service_cached_walks_the_search_list_from_the_cache_alone() -> None:
    """What pvdd answers in its event loop: resolve()'s search, read from the cache only; None
    as soon as a name of the search is not cached (then resolve() asks the servers)."""
    from pvdrun.resolve.errors import NODATA
    from pvdrun.resolve.service import PvdResolverService

    clock = FakeClock()
    service = PvdResolverService(DnsCache(clock=clock))
    pvd = make_pvd()  # search isp-a.example, ndots 1: "intranet" is asked searched first
    service.sync([pvd])
    assert service.cached(pvd, "intranet", "A") is None
    missing = ResolveError(NXDOMAIN, "intranet.isp-a.example: no such name")
    service.cache.put(pvd.pvd_id, "intranet.isp-a.example", "A", missing, 60)
    assert service.cached(pvd, "intranet", "A") is None  # "intranet" itself not cached yet
    answer = Answer("intranet", "A", "intranet", 30, ["10.1.0.81"], "10.1.0.1")
    service.cache.put(pvd.pvd_id, "intranet", "A", answer, 30)
    clock.now += 10
    cached, left = service.cached(pvd, "intranet", "A")  # type: ignore[misc]
    assert cached is answer and left == 20
    assert service.cached(pvd, "intranet", "AAAA") is None  # per type
    service.cache.put(pvd.pvd_id, "intranet", "A", ResolveError(NXDOMAIN, "no"), 60)
    failed = service.cached(pvd, "intranet", "A")
    assert isinstance(failed, ResolveError) and failed.kind == NXDOMAIN and "PvD ispa.example" in str(failed)
    service.cache.put(pvd.pvd_id, "intranet", "A", ResolveError(NODATA, "no A"), 60)
    failed = service.cached(pvd, "intranet", "A")
    assert isinstance(failed, ResolveError) and failed.kind == NODATA  # as resolve(): NODATA first
    clock.now += 61
    assert service.cached(pvd, "intranet", "A") is None  # expired
    assert service.cached(pvd, "bad..name", "A") is None  # resolve() says why


def test_cache_keeps_no_answer_of_a_lookup_that_started_before_a_change() -> None:
    """A lookup that asked the PvD's old DNS servers and comes back after pvdd saw the new
    ones stores nothing (it would be served for the new configuration), nor for a PvD gone."""
    from pvdrun.resolve.cache import dns_fingerprint

    cache = DnsCache(clock=FakeClock())
    old, new = make_pvd(), make_pvd(dns_servers=["10.1.0.53"])
    cache.observe(old)
    cache.put(old.pvd_id, "svc.example", "A", "from-old", 60, dns_fingerprint(old))
    assert cache.get(old.pvd_id, "svc.example", "A") == "from-old"
    assert cache.observe(new) is True  # flushed
    cache.put(old.pvd_id, "svc.example", "A", "from-old", 60, dns_fingerprint(old))  # came back late
    assert cache.get(old.pvd_id, "svc.example", "A") is None
    cache.put(new.pvd_id, "svc.example", "A", "from-new", 60, dns_fingerprint(new))
    assert cache.get(new.pvd_id, "svc.example", "A") == "from-new"
    cache.forget(new.pvd_id)
    cache.put(new.pvd_id, "svc.example", "A", "gone", 60, dns_fingerprint(new))
    assert cache.get(new.pvd_id, "svc.example", "A") is None


def test_cache_evicts_least_recently_used() -> None:
    cache = DnsCache(max_entries=2, clock=FakeClock())
    cache.put("p", "a", "A", 1, 60)
    cache.put("p", "b", "A", 2, 60)
    assert cache.get("p", "a", "A") == 1
    cache.put("p", "c", "A", 3, 60)
    assert cache.get("p", "b", "A") is None and cache.get("p", "a", "A") == 1


def test_search_candidates_follow_ndots() -> None:
    resolver = PvdResolver(make_pvd(search_domains=["isp-a.example", "corp.example."]))
    assert resolver.candidates("intranet") == ["intranet.isp-a.example", "intranet.corp.example",
                                               "intranet"]
    assert resolver.candidates("svc.example") == ["svc.example", "svc.example.isp-a.example",
                                                  "svc.example.corp.example"]
    assert resolver.candidates("svc.example.") == ["svc.example."]
    ndots3 = PvdResolver(make_pvd(), ResolverOptions(ndots=3))
    assert ndots3.candidates("svc.example")[-1] == "svc.example"
    for bad in ["", "a..b", ".a", "x" * 254]:
        with pytest.raises(ResolveError):
            resolver.candidates(bad)


def test_servers_usable_need_a_pvd_address_of_their_family() -> None:
    servers = ["10.1.0.1", "2001:db8:a::1", "fe80::1%a0"]
    pvd = make_pvd(addresses=["10.1.0.2/24", "fe80::2/64", "2001:db8:a::2/64"], dns_servers=servers)
    assert usable_servers(pvd) == servers
    assert usable_servers(make_pvd(addresses=["2001:db8:b::2/64"], dns_servers=servers)) == servers[1:]


def test_pvd_without_servers_never_asks_anyone() -> None:
    with pytest.raises(ResolveError) as info:
        PvdResolver(make_pvd(dns_servers=[])).resolve("svc.example")
    assert info.value.kind == NO_SERVER and "has no DNS server" in str(info.value)
    with pytest.raises(ResolveError) as info:
        PvdResolver(make_pvd(addresses=["2001:db8:a::2/64"])).resolve("svc.example")
    assert info.value.kind == NO_SERVER and "reachable from its own addresses" in str(info.value)


def test_rfc6724_order_from_the_pvds_sources() -> None:
    """The same cases as the C sort (test_resolve_wire.py): both resolvers order alike."""
    dual = make_pvd(addresses=["10.1.0.2/24", "2001:db8:a::2/64"])
    v4only = make_pvd(addresses=["10.2.0.2/24"])
    v6only = make_pvd(addresses=["2001:db8:b::2/64"])
    assert sort_destinations(dual, ["10.1.0.80", "2001:db8:a::80", "fe80::1"]) == \
        ["2001:db8:a::80", "10.1.0.80", "fe80::1"]
    assert sort_destinations(v4only, ["2001:db8:a::80", "10.1.0.80"]) == ["10.1.0.80", "2001:db8:a::80"]
    assert sort_destinations(v6only, ["10.1.0.80", "2001:db8:a::80"]) == ["2001:db8:a::80", "10.1.0.80"]
    assert sort_destinations(v6only, ["2001:db8:a::80", "2001:db8:b::80"]) == \
        ["2001:db8:b::80", "2001:db8:a::80"]


def test_render_resolv_conf() -> None:
    text = render_resolv_conf(make_pvd(dns_servers=["10.1.0.1", "2001:db8:a::1", "fe80::1%a0",
                                                    "10.1.0.2"]))
    lines = text.splitlines()
    assert lines[1:] == ["nameserver 10.1.0.1", "nameserver 2001:db8:a::1", "nameserver fe80::1%a0",
                         "# (beyond glibc's 3) nameserver 10.1.0.2", "search isp-a.example",
                         "options timeout:5 attempts:2 ndots:1"]
    empty = render_resolv_conf(make_pvd(dns_servers=[], search_domains=[]))
    assert f"nameserver {NO_SERVER_PLACEHOLDER}" in empty.splitlines()


# -- in the lab ---------------------------------------------------------------

def run_py(lab: ResolveLab, code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run Python code in the lab's client namespace."""
    return lab.run([sys.executable, "-c", textwrap.dedent(code)], env=env)


def resolve_in_lab(lab: ResolveLab, key: str, host: str, rdtype: str = "A", twice: bool = False,
                   **changes: object) -> dict:
    """Resolve with PvdResolver for PvD `key` inside the client namespace; JSON result."""
    pvd_json = json.dumps(lab.pvd(key, **changes).to_dict())
    code = f"""
        import json
        from pvdrun.model import Pvd
        from pvdrun.resolve import PvdResolver, ResolveError, ResolverOptions
        from pvdrun.resolve.cache import DnsCache
        pvd = Pvd.from_dict(json.loads({pvd_json!r}))
        resolver = PvdResolver(pvd, ResolverOptions(timeout=2, attempts=1), cache=DnsCache())
        out = []
        for _ in range({2 if twice else 1}):
            try:
                out.append(resolver.resolve({host!r}, {rdtype!r}).to_dict())
            except ResolveError as exc:
                out.append({{"error": exc.kind, "message": str(exc)}})
        print(json.dumps(out))
    """
    proc = run_py(lab, code)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    return result if twice else result[0]


@pytest.mark.root
def test_split_horizon_per_pvd(split_lab: ResolveLab) -> None:
    a = resolve_in_lab(split_lab, "a", "svc.example")
    assert a["records"] == ["10.1.0.80"] and a["server"] == "10.1.0.1"
    b = resolve_in_lab(split_lab, "b", "svc.example", "AAAA")
    assert b["records"] == ["2001:db8:b::80"] and b["server"] == "2001:db8:b::1"


@pytest.mark.root
def test_local_name_only_under_a(split_lab: ResolveLab) -> None:
    assert resolve_in_lab(split_lab, "a", "intranet")["canonical_name"] == "intranet.isp-a.example"
    b = resolve_in_lab(split_lab, "b", "intranet.isp-a.example", "AAAA")
    assert b["error"] == NXDOMAIN


@pytest.mark.root
def test_cname_and_tcp_after_truncation(split_lab: ResolveLab) -> None:
    www = resolve_in_lab(split_lab, "a", "www.example")
    assert www["canonical_name"] == "svc.example" and www["records"] == ["10.1.0.80"]
    with split_lab.capture("a") as pcap:
        big = resolve_in_lab(split_lab, "a", "big.example")
    assert sorted(big["records"]) == sorted(f"10.1.1.{i}" for i in range(1, 41))
    assert any("Flags [S]" in p for p in split_lab.packets(pcap))


@pytest.mark.root
def test_second_lookup_comes_from_the_cache(split_lab: ResolveLab) -> None:
    with split_lab.capture("a") as pcap:
        first, second = resolve_in_lab(split_lab, "a", "svc.example", twice=True)
    assert first["server"] == "10.1.0.1" and first["ttl"] == 60
    # the cached answer, saying it is one: no server asked, the TTL that is left
    assert second["server"] is None and 0 < second["ttl"] <= first["ttl"]
    assert {**second, "server": None, "ttl": 0} == {**first, "server": None, "ttl": 0}
    queries = [p for p in split_lab.packets(pcap) if "A? svc.example" in p]
    assert len(queries) == 1, queries  # one query on the wire for two lookups


@pytest.mark.root
@pytest.mark.parametrize("name", ["loop.example", "trunc.example", "oversize.example", "longname.example"])
def test_malformed_answers_fail_cleanly(split_lab: ResolveLab, name: str) -> None:
    """Malformed replies are dropped (ignore_errors) until the timeout.  60 copies of one A
    record is well-formed DNS: dnspython merges them (the C stub refuses more than 48)."""
    with hostile_server(split_lab) as server:
        result = resolve_in_lab(split_lab, "a", name, dns_servers=[server])
    if name == "oversize.example":
        assert result["records"] == ["10.1.0.80"], result
    else:
        assert result["error"] == "timeout", result


@pytest.mark.root
def test_dns_sockets_carry_the_pvds_mark(split_lab: ResolveLab) -> None:
    """As the C test: an IPv6 rule making fwmark 0x42 unreachable fails marked lookups only."""
    rule = ["ip", "-6", "-n", split_lab.client_ns, "rule", "add", "fwmark", "0x42", "unreachable", "pref", "91"]
    subprocess.run(rule, check=True)
    try:
        marked = resolve_in_lab(split_lab, "b", "svc.example", "AAAA", mark=0x42)
        assert marked.get("error") == "timeout" and "unreachable" in marked["message"], marked
        plain = resolve_in_lab(split_lab, "b", "svc.example", "AAAA")
        assert plain["records"] == ["2001:db8:b::80"]
    finally:
        subprocess.run(["ip", "-6", "-n", split_lab.client_ns, "rule", "del", "pref", "91"], check=False)


@pytest.mark.root
def test_link_local_dns_server(split_lab: ResolveLab) -> None:
    with link_local_server(split_lab) as server:
        answer = resolve_in_lab(split_lab, "b", "ll.example", "AAAA", dns_servers=[server])
    assert answer["records"] == ["2001:db8:b::99"] and answer["server"] == server


@pytest.mark.root
def test_dead_server_is_skipped_for_the_next(split_lab: ResolveLab) -> None:
    answer = resolve_in_lab(split_lab, "a", "svc.example", dns_servers=["10.1.0.8", "10.1.0.1"])
    assert answer["records"] == ["10.1.0.80"] and answer["server"] == "10.1.0.1"
    failed = resolve_in_lab(split_lab, "a", "svc.example", dns_servers=["10.1.0.8"])
    assert failed["error"] == "timeout"


@pytest.mark.root
def test_spoofed_and_mismatched_replies_are_dropped(split_lab: ResolveLab) -> None:
    with spoofing_server(split_lab) as server:
        answer = resolve_in_lab(split_lab, "a", "spoof.example", dns_servers=[server])
    assert answer["records"] == ["10.1.0.77"]


@pytest.mark.root
def test_no_query_reaches_the_other_isp(split_lab: ResolveLab) -> None:
    """PvD B's lookups reach B's server only.  Control: the same library (dnspython's stub
    resolver) without pvdrun, given a resolv.conf naming ISP A's server, asks it on A's link,
    where the same capture and verdict find it."""
    with split_lab.capture("a") as pcap_a, split_lab.capture("b") as pcap_b:
        found = resolve_in_lab(split_lab, "b", "svc.example", "AAAA")
        none = resolve_in_lab(split_lab, "b", "nothing-here.example", "A")
    assert found["records"] == ["2001:db8:b::80"] and none.get("error"), (found, none)
    assert split_lab.packets(pcap_b)
    assert_no_leak(pcap_a, found, none, **split_lab.leak_rules("b"))
    code = "import dns.resolver; print(dns.resolver.resolve('svc.example', 'AAAA', lifetime=5).rrset)"
    with split_lab.capture("a") as control:
        plain = split_lab.run([sys.executable, "-c", code], resolv_conf=split_lab.isps["a"].dns)
    assert_caught(control, plain.stdout, plain.stderr, **split_lab.leak_rules("b"))


@pytest.mark.root
def test_overlapping_server_addresses(overlap_lab: ResolveLab) -> None:
    assert resolve_in_lab(overlap_lab, "a", "svc.example")["records"] == ["10.0.0.80"]
    assert resolve_in_lab(overlap_lab, "b", "svc.example")["records"] == ["10.0.0.90"]


@pytest.mark.root
def test_dig_reads_the_pvds_resolv_conf(split_lab: ResolveLab) -> None:
    """dig reads /etc/resolv.conf itself: inside the private mount namespace it asks the PvD's server."""
    host_before = Path("/etc/resolv.conf").read_bytes()
    for key, expected in (("a", "10.1.0.80"), ("b", "10.2.0.80")):
        pvd_json = json.dumps(split_lab.pvd(key).to_dict())
        code = f"""
            import json, os
            from pvdrun.model import Pvd
            from pvdrun.resolve.resolvconf import enter_private_resolv_conf
            enter_private_resolv_conf(Pvd.from_dict(json.loads({pvd_json!r})))
            os.execvp("dig", ["dig", "+short", "+time=2", "+tries=1", "svc.example"])
        """
        with split_lab.capture(key) as own:
            proc = run_py(split_lab, code)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == [expected]
        assert split_lab.packets(own)
    assert Path("/etc/resolv.conf").read_bytes() == host_before  # the host's file is untouched


def config_env(tmp_path: Path) -> dict[str, str]:
    """Environment for PvD lookups from a configuration file, without pvdd (ISP B's PvD
    without a search list)."""
    ispb = {key: value for key, value in SPLIT_PVDS["ispb"].items() if key != "search"}
    return config_only(tmp_path, {"ispa": SPLIT_PVDS["ispa"], "ispb": ispb})


def pvdrun_resolve(lab: ResolveLab, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """``pvdrun resolve`` in the client namespace, PvDs from a configuration file, no daemon."""
    return lab.run([sys.executable, "-m", "pvdrun.cli", "resolve", *args], env=config_env(tmp_path))


@pytest.mark.root
def test_python_api_by_pvd_name(split_lab: ResolveLab, tmp_path: Path) -> None:
    code = """
        import pvdrun.resolve as r
        from pvdrun.api import PvdLookupError
        print(r.addresses("ispa", "svc.example"), r.addresses("ispb", "svc.example", 6))
        try:
            r.resolve("nosuchpvd", "svc.example")
        except PvdLookupError as exc:
            print("unknown", exc.name)
    """
    proc = run_py(split_lab, code, env=config_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["['2001:db8:a::80', '10.1.0.80'] ['2001:db8:b::80']",
                                        "unknown nosuchpvd"]


@pytest.mark.root
def test_pvdrun_resolve_command(split_lab: ResolveLab, tmp_path: Path) -> None:
    proc = pvdrun_resolve(split_lab, tmp_path, "--pvd", "ispa", "intranet")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["intranet.isp-a.example\t60\tA\t10.1.0.81"]
    proc = pvdrun_resolve(split_lab, tmp_path, "--pvd", "ispb", "--type", "aaaa", "svc.example", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["answers"][0]["records"] == ["2001:db8:b::80"]
    assert data["answers"][0]["server"] == "2001:db8:b::1"
    proc = pvdrun_resolve(split_lab, tmp_path, "--pvd", "ispb", "intranet.isp-a.example")
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "no such name" in proc.stderr


@pytest.mark.root
def test_pvdrun_resolve_temporary_failure(split_lab: ResolveLab, tmp_path: Path) -> None:
    config = tmp_path / "dead.toml"
    config.write_text('[pvd.ispa]\ninterface = "a0"\ndns = ["10.1.0.8"]\n')
    env = {**config_env(tmp_path), "PVDRUN_CONFIG": str(config)}
    proc = split_lab.run([sys.executable, "-m", "pvdrun.cli", "resolve", "--pvd", "ispa", "--timeout", "1",
                          "--attempts", "1", "svc.example"], env=env)
    assert proc.returncode == 8 and "answered" in proc.stderr, proc.stderr


@pytest.mark.root
def test_pvdrun_resolve_bad_input(split_lab: ResolveLab, tmp_path: Path) -> None:
    proc = pvdrun_resolve(split_lab, tmp_path, "--pvd", "nosuchpvd", "svc.example")
    assert proc.returncode == 3 and "unknown PvD 'nosuchpvd'" in proc.stderr
    proc = pvdrun_resolve(split_lab, tmp_path, "--pvd", "ispa", "--type", "BOGUS", "svc.example")
    assert proc.returncode == 2 and "unknown record type" in proc.stderr
    proc = pvdrun_resolve(split_lab, tmp_path, "--pvd", "ispa", "a..b")
    assert proc.returncode == 2 and "not a valid DNS name" in proc.stderr
    proc = pvdrun_resolve(split_lab, tmp_path, "--pvd", "null", "svc.example")
    assert proc.returncode == 4
    proc = pvdrun_resolve(split_lab, tmp_path, "--socket", str(tmp_path / "nobody.sock"), "--pvd", "ispa",
                          "svc.example")
    assert proc.returncode == 6 and "pvdd does not answer" in proc.stderr, proc.stderr
    proc = split_lab.run([sys.executable, "-m", "pvdrun.cli", "resolve", "--pvd", "ispa", "svc.example"],
                         env={**config_env(tmp_path), "PVDRUN_CONFIG": str(tmp_path / "missing.toml")})
    assert proc.returncode == 7 and proc.stderr.count("\n") == 1, proc.stderr
    proc = pvdrun_resolve(split_lab, tmp_path, "--pvd", "ispa", "--timeout", "1", "--attempts", "1",
                          "svc.example")  # fine: answered
    assert proc.returncode == 0
