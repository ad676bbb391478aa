"""getaddrinfo & co inside a PvD, through the installed libpvdshim.so, in the
two-ISP lab of fixtures/resolve_lab.py (R3 for getaddrinfo, R25, R26, section
5.2 of draft-kline-mif-mpvd-api-reqs; section 5.3 of the Troan multihoming
document: DNS server selection, split horizon, local names)."""
from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from fixtures.capture import assert_caught, assert_no_leak
from fixtures.resolve_lab import ResolveLab, asan_preload, overlap_lab, probe, shim_lib, split_lab, spoofing_server, hostile_server, link_local_server  # noqa: F401

pytestmark = pytest.mark.root

EAI = {name: getattr(socket, name) for name in
       ("EAI_NONAME", "EAI_AGAIN", "EAI_FAIL", "EAI_NODATA", "EAI_FAMILY") if hasattr(socket, name)}


def gai(lab: ResolveLab, probe: Path, lib: str, scope: str | None, name: str,
        family: str = "unspec", flags: str = "none", env: dict[str, str] | None = None
        ) -> tuple[int, list[str], str]:
    """Run getaddrinfo in the client namespace; (rc, address lines, stderr)."""
    proc = lab.run([str(probe), "gai", name, family, flags], scope=scope, preload=lib, env=env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    head = lines[0].split()
    rc = int(head[0].split("=")[1])
    assert head[1] == "errno_kept=1" or scope is None, lines  # errno preserved
    return rc, lines[1:], proc.stderr


def addrs(lines: list[str]) -> list[str]:
    return [line.split()[1] for line in lines if not line.startswith("canon=")]


def test_split_horizon_answer_is_each_pvds_own(split_lab: ResolveLab, probe: Path, shim_lib: str) -> None:
    rc, lines, _ = gai(split_lab, probe, shim_lib, split_lab.scope("a"), "svc.example")
    assert rc == 0
    assert addrs(lines) == ["2001:db8:a::80", "10.1.0.80"]  # RFC 6724: IPv6 first from a dual-stack PvD
    rc, lines, _ = gai(split_lab, probe, shim_lib, split_lab.scope("b"), "svc.example")
    assert rc == 0
    assert addrs(lines) == ["2001:db8:b::80", "10.2.0.80"]  # IPv4 last: PvD B has no IPv4 source (rule 1)


def test_local_name_resolves_under_a_and_fails_cleanly_under_b(split_lab: ResolveLab, probe: Path,
                                                                shim_lib: str) -> None:
    rc, lines, _ = gai(split_lab, probe, shim_lib, split_lab.scope("a"), "intranet.isp-a.example")
    assert rc == 0 and addrs(lines) == ["10.1.0.81"]
    rc, lines, err = gai(split_lab, probe, shim_lib, split_lab.scope("b"), "intranet.isp-a.example")
    assert rc == EAI["EAI_NONAME"] and lines == [] and err == ""


def test_search_domain_and_ndots(split_lab: ResolveLab, probe: Path, shim_lib: str) -> None:
    # "intranet" has no dot: the PvD's search domain isp-a.example is tried first.
    rc, lines, _ = gai(split_lab, probe, shim_lib, split_lab.scope("a"), "intranet", flags="canonname")
    assert rc == 0 and lines[0] == "canon=intranet.isp-a.example" and addrs(lines) == ["10.1.0.81"]
    # Under B the search list is B's own: www -> www.isp-b.example.
    rc, lines, _ = gai(split_lab, probe, shim_lib, split_lab.scope("b"), "www")
    assert rc == 0 and addrs(lines) == ["2001:db8:b::81"]
    # ndots:3 makes "svc.example" (1 dot) try the search list first: svc.example.isp-a.example
    # does not exist, then the name as is.
    rc, lines, _ = gai(split_lab, probe, shim_lib, split_lab.scope("a"), "svc.example",
                       env={"RES_OPTIONS": "timeout:2 attempts:1 ndots:3"})
    assert rc == 0 and "10.1.0.80" in addrs(lines)
    log = split_lab.isps["a"].log.read_text()
    assert "svc.example.isp-a.example" in log


def test_cname_chain_gives_canonical_name(split_lab: ResolveLab, probe: Path, shim_lib: str) -> None:
    rc, lines, _ = gai(split_lab, probe, shim_lib, split_lab.scope("a"), "www.example", "inet",
                       "canonname")
    assert rc == 0 and lines == ["canon=svc.example", "inet 10.1.0.80 80"]


def test_truncated_answer_is_retried_over_tcp(split_lab: ResolveLab, probe: Path, shim_lib: str) -> None:
    with split_lab.capture("a") as pcap:
        rc, lines, _ = gai(split_lab, probe, shim_lib, split_lab.scope("a"), "big.example", "inet")
    assert rc == 0
    assert sorted(addrs(lines)) == sorted(f"10.1.1.{i}" for i in range(1, 41))
    packets = split_lab.packets(pcap)
    assert any("Flags [S]" in p and ".53:" in p for p in packets), packets  # a TCP connection to port 53


def test_addrconfig_returns_only_the_pvds_families(split_lab: ResolveLab, probe: Path, shim_lib: str) -> None:
    """R26: judged against the PvD's addresses; the client namespace itself has IPv4 (via A)."""
    rc, lines, _ = gai(split_lab, probe, shim_lib, split_lab.scope("b"), "svc.example", flags="addrconfig")
    assert rc == 0 and addrs(lines) == ["2001:db8:b::80"]
    rc, lines, _ = gai(split_lab, probe, shim_lib, split_lab.scope("b"), "svc.example", "inet", "addrconfig")
    assert rc == EAI["EAI_NONAME"] and lines == []
    rc, lines, _ = gai(split_lab, probe, shim_lib, split_lab.scope("a"), "svc.example", flags="addrconfig")
    assert rc == 0 and addrs(lines) == ["2001:db8:a::80", "10.1.0.80"]
    # An IPv4-only view of PvD A: only IPv4 answers.
    scope = split_lab.scope("a", addresses=["10.1.0.2/24"], dns_servers=["10.1.0.1"])
    rc, lines, _ = gai(split_lab, probe, shim_lib, scope, "svc.example", flags="addrconfig")
    assert rc == 0 and addrs(lines) == ["10.1.0.80"]


def test_v4mapped_and_nodata(split_lab: ResolveLab, probe: Path, shim_lib: str) -> None:
    rc, lines, _ = gai(split_lab, probe, shim_lib, split_lab.scope("a"), "intranet.isp-a.example",
                       "inet6", "v4mapped")
    assert rc == 0 and addrs(lines) == ["::ffff:10.1.0.81"]
    rc, _, _ = gai(split_lab, probe, shim_lib, split_lab.scope("a"), "intranet.isp-a.example", "inet6")
    assert rc == EAI["EAI_NODATA"]


def test_capture_shows_no_query_at_the_other_isp(split_lab: ResolveLab, probe: Path, shim_lib: str) -> None:
    """R25: with PvD A, queries reach A's DNS on A's link only, and the reverse.  Even when the
    system's resolv.conf names the other ISP's server.  Control: the same lookups without the
    shim ask that server, on the other link, where the same capture and verdict find them."""
    for own, other in (("a", "b"), ("b", "a")):
        system = split_lab.isps[other].dns  # what glibc alone would ask
        with split_lab.capture(own) as own_pcap, split_lab.capture(other) as other_pcap:
            for name in ("svc.example", "nonexistent.example"):
                done = split_lab.run([str(probe), "gai", name, "unspec", "none"], scope=split_lab.scope(own),
                                     preload=shim_lib, resolv_conf=system)
                assert done.returncode == 0 and done.stdout.startswith(("rc=0 ", f"rc={EAI['EAI_NONAME']} ")), \
                    (done.stdout, done.stderr)
        own_packets = split_lab.packets(own_pcap)
        assert own_packets, f"no DNS packet on ISP {own}'s link"
        prefix = "10.1.0." if own == "a" else "2001:db8:b::"
        assert all(prefix in p for p in own_packets), own_packets  # from the PvD's own addresses
        assert_no_leak(other_pcap, **split_lab.leak_rules(own))
        with split_lab.capture(other) as control:
            plain = split_lab.run([str(probe), "gai", "svc.example", "unspec", "none"], resolv_conf=system)
        assert_caught(control, plain.stdout, plain.stderr, **split_lab.leak_rules(own))


def test_spoofed_and_mismatched_replies_are_dropped(split_lab: ResolveLab, probe: Path, shim_lib: str) -> None:
    """Wrong id, wrong source address or port, garbage: dropped; the real answer is used."""
    with spoofing_server(split_lab) as server:
        scope = split_lab.scope("a", dns_servers=[server])
        rc, lines, _ = gai(split_lab, probe, shim_lib, scope, "spoof.example", "inet")
    assert rc == 0 and addrs(lines) == ["10.1.0.77"]


@pytest.mark.parametrize("name", ["loop.example", "trunc.example", "oversize.example", "longname.example"])
def test_malformed_answers_fail_cleanly(split_lab: ResolveLab, probe: Path, shim_lib: str, name: str) -> None:
    """Every reply is malformed, so each is dropped and the lookup times out: EAI_AGAIN, no crash."""
    with hostile_server(split_lab) as server:
        proc = split_lab.run([str(probe), "gai", name, "inet", "none"],
                             scope=split_lab.scope("a", dns_servers=[server]), preload=shim_lib,
                             env={"RES_OPTIONS": "timeout:1 attempts:1"})
    assert proc.returncode == 0, proc.stderr  # no crash
    assert proc.stdout.splitlines()[0].startswith(f"rc={EAI['EAI_AGAIN']} ")


def test_link_local_dns_server(split_lab: ResolveLab, probe: Path, shim_lib: str) -> None:
    """A link-local server (zone by name or by index) is asked from the PvD's link-local address."""
    with link_local_server(split_lab) as server, split_lab.capture("b") as pcap:
        index_form = server.split("%")[0] + f"%{split_lab.isps['b'].ifindex}"
        for dns_server in (server, index_form):
            rc, lines, _ = gai(split_lab, probe, shim_lib, split_lab.scope("b", dns_servers=[dns_server]),
                               "ll.example", "inet6")
            assert rc == 0 and addrs(lines) == ["2001:db8:b::99"]
    queries = [p for p in split_lab.packets(pcap) if "fe80::b1.53:" in p and ">" in p]
    assert queries and all(p.split()[2].startswith("fe80::2.") for p in queries), queries


def test_overlapping_dns_addresses_reach_each_pvds_own_server(overlap_lab: ResolveLab, probe: Path,
                                                              shim_lib: str) -> None:
    """Scenario 3: both DNS servers are 10.0.0.1; device binding picks the right one."""
    with overlap_lab.capture("a") as pcap_a, overlap_lab.capture("b") as pcap_b:
        rc_a, lines_a, _ = gai(overlap_lab, probe, shim_lib, overlap_lab.scope("a"), "svc.example", "inet")
    assert rc_a == 0 and addrs(lines_a) == ["10.0.0.80"]
    assert overlap_lab.packets(pcap_a)
    assert_no_leak(pcap_b, **overlap_lab.leak_rules("a"))
    with overlap_lab.capture("a") as pcap_a, overlap_lab.capture("b") as pcap_b:
        rc_b, lines_b, _ = gai(overlap_lab, probe, shim_lib, overlap_lab.scope("b"), "svc.example", "inet")
    assert rc_b == 0 and addrs(lines_b) == ["10.0.0.90"]
    assert overlap_lab.packets(pcap_b)
    assert_no_leak(pcap_a, **overlap_lab.leak_rules("b"))


def test_pvd_without_dns_servers_fails_fast_and_says_so_once(split_lab: ResolveLab, probe: Path,
                                                             shim_lib: str) -> None:
    """A PvD without DNS servers fails (EAI_AGAIN, said once) and never falls back to the
    system's resolvers: here the system's resolv.conf names ISP A's server, which a fallback
    would reach on the captured link.  Control: the same lookup without the shim does."""
    scope = split_lab.scope("a", dns_servers=[])
    system = ["10.1.0.1"]
    with split_lab.capture("a") as pcap:
        proc = split_lab.run([str(probe), "threads", "svc.example", "4"], scope=scope, preload=shim_lib,
                             resolv_conf=system)
        once = split_lab.run([str(probe), "gai", "svc.example", "unspec", "none"], scope=scope,
                             preload=shim_lib, resolv_conf=system)
    assert proc.stdout.strip() == "ok=0 of 4"
    assert proc.stderr.count("has no DNS server") == 1  # once per process, not per thread
    assert once.stdout.startswith(f"rc={EAI['EAI_AGAIN']} ") and "PvD ispa.example has no DNS server" in once.stderr
    assert_no_leak(pcap, proc.stderr, once.stdout, **split_lab.silent_rules("a"))
    with split_lab.capture("a") as control:
        plain = split_lab.run([str(probe), "gai", "svc.example", "unspec", "none"], resolv_conf=system)
    assert plain.stdout.startswith("rc=0 "), plain.stdout  # glibc asked 10.1.0.1 and got A's answer
    assert_caught(control, plain.stdout, **split_lab.silent_rules("a"))


def test_unreachable_server_times_out_with_eai_again(split_lab: ResolveLab, probe: Path, shim_lib: str) -> None:
    scope = split_lab.scope("a", dns_servers=["10.1.0.99"])  # on-link, nobody home
    rc, _, _ = gai(split_lab, probe, shim_lib, scope, "svc.example", "inet",
                   env={"RES_OPTIONS": "timeout:1 attempts:1"})
    assert rc == EAI["EAI_AGAIN"]


def test_attempts_and_server_order_as_resolv_conf(split_lab: ResolveLab, probe: Path, shim_lib: str) -> None:
    """10.1.0.8 is an ISP A address with no DNS server: each attempt asks it once, then gives up;
    listed before the real server, it is skipped after its timeout."""
    dead = split_lab.scope("a", dns_servers=["10.1.0.8"])
    with split_lab.capture("a") as pcap:
        rc, _, _ = gai(split_lab, probe, shim_lib, dead, "svc.example", "inet",
                       env={"RES_OPTIONS": "timeout:1 attempts:2"})
    assert rc == EAI["EAI_AGAIN"]
    queries = [p for p in split_lab.packets(pcap) if "> 10.1.0.8.53:" in p]
    assert len(queries) == 2, queries
    # A and AAAA together, as glibc does: each attempt sends both from one socket (one port),
    # so a dead server costs attempts x timeout, not twice that.
    with split_lab.capture("a") as pcap:
        rc, _, _ = gai(split_lab, probe, shim_lib, dead, "svc.example", "unspec",
                       env={"RES_OPTIONS": "timeout:1 attempts:2"})
    assert rc == EAI["EAI_AGAIN"]
    queries = [p.split() for p in split_lab.packets(pcap) if "> 10.1.0.8.53:" in p]
    assert len(queries) == 4, queries
    ports = [fields[2] for fields in queries]  # "10.1.0.2.PORT"
    assert ports[0] == ports[1] and ports[2] == ports[3] and ports[0] != ports[2], queries
    assert {f[-3] for f in queries[:2]} == {"A?", "AAAA?"}, queries
    both = split_lab.scope("a", dns_servers=["10.1.0.8", "10.1.0.1"])
    rc, lines, _ = gai(split_lab, probe, shim_lib, both, "svc.example", "inet",
                       env={"RES_OPTIONS": "timeout:1 attempts:2"})
    assert rc == 0 and addrs(lines) == ["10.1.0.80"]


def test_server_without_a_source_of_its_family_is_not_used(split_lab: ResolveLab, probe: Path,
                                                           shim_lib: str) -> None:
    """R25: an IPv4 server in a PvD that has no IPv4 address is never asked from another address."""
    scope = split_lab.scope("b", dns_servers=["10.1.0.1"])
    with split_lab.capture("a") as pcap:
        rc, _, err = gai(split_lab, probe, shim_lib, scope, "svc.example")
    assert rc == EAI["EAI_AGAIN"] and "no DNS server" in err
    assert_no_leak(pcap, err, quiet=split_lab.isps["a"].client_addrs + split_lab.isps["b"].client_addrs,
                   destinations=["10.1.0.1"])


def test_null_pvd_fails_fast_but_hosts_file_answers(split_lab: ResolveLab, probe: Path, shim_lib: str) -> None:
    null = "v=1 id=null handle=4294967295"
    rc, _, _ = gai(split_lab, probe, shim_lib, null, "svc.example")
    assert rc == EAI["EAI_FAIL"]
    rc, lines, _ = gai(split_lab, probe, shim_lib, null, "localhost", "inet")
    assert rc == 0 and addrs(lines) == ["127.0.0.1"]


def test_hosts_file_answers_first(split_lab: ResolveLab, probe: Path, shim_lib: str, tmp_path: Path) -> None:
    """/etc/hosts before DNS, as nsswitch says: a private mount namespace gets its own hosts file."""
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n10.9.9.9 svc.example svc-alias\n")
    script = f"mount --bind {hosts} /etc/hosts && exec {probe} gai svc-alias inet canonname"
    proc = split_lab.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                         scope=split_lab.scope("a"), preload=shim_lib)
    assert proc.stdout.splitlines() == ["rc=0 errno_kept=1 ok", "canon=svc.example", "inet 10.9.9.9 80"]


@pytest.mark.parametrize("hosts_line,name,expected", [
    ("hosts: files dns", "svc.example", "inet 10.9.9.9 80"),    # files first: the hosts file wins
    ("hosts: dns files", "svc.example", "inet 10.1.0.80 80"),   # dns first: the PvD's answer wins
    ("hosts: dns files", "svc-alias", "inet 10.9.9.9 80"),      # not in DNS: files after it
    ("hosts: mymachines resolve [!UNAVAIL=return] files myhostname dns", "svc.example",
     "inet 10.1.0.80 80"),                                      # resolve = the PvD's DNS
    ("hosts: files", "intranet.isp-a.example", None),           # no DNS source: nothing asked
])
def test_nsswitch_order(split_lab: ResolveLab, probe: Path, shim_lib: str, tmp_path: Path,
                        hosts_line: str, name: str, expected: str | None) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n10.9.9.9 svc.example svc-alias\n")
    nsswitch = tmp_path / "nsswitch.conf"
    nsswitch.write_text(f"passwd: files\n{hosts_line}\n")
    script = (f"mount --bind {hosts} /etc/hosts && mount --bind {nsswitch} /etc/nsswitch.conf && "
              f"exec {probe} gai {name} inet none")
    with split_lab.capture("a") as pcap:
        proc = split_lab.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                             scope=split_lab.scope("a"), preload=shim_lib)
    lines = proc.stdout.splitlines()
    if expected is None:
        assert lines[0].startswith(f"rc={EAI['EAI_NONAME']} "), lines
        assert_no_leak(pcap, lines, **split_lab.silent_rules("a"))
    else:
        assert lines[1:] == [expected], (lines, proc.stderr)


def test_dns_sockets_carry_the_pvds_mark(split_lab: ResolveLab, probe: Path, shim_lib: str) -> None:
    """mark= in the scope: DNS sockets are marked (as root, directly).  An IPv6 rule that makes the
    mark unreachable in the client namespace proves it: marked lookups fail, unmarked ones work.
    (IPv6, PvD B: for IPv4 the kernel sends a device-bound socket's packets on-link even when a
    rule says unreachable, so such a rule would prove nothing there.)"""
    rule = ["ip", "-6", "-n", split_lab.client_ns, "rule", "add", "fwmark", "0x42", "unreachable", "pref", "90"]
    subprocess.run(rule, check=True)
    try:
        rc, _, _ = gai(split_lab, probe, shim_lib, split_lab.scope("b", mark=0x42), "svc.example", "inet6")
        assert rc == EAI["EAI_AGAIN"]
        rc, lines, _ = gai(split_lab, probe, shim_lib, split_lab.scope("b"), "svc.example", "inet6")
        assert rc == 0 and addrs(lines) == ["2001:db8:b::80"]
    finally:
        subprocess.run(["ip", "-6", "-n", split_lab.client_ns, "rule", "del", "pref", "90"], check=False)


def test_unprivileged_lookups(split_lab: ResolveLab, probe: Path, shim_lib: str) -> None:
    """As nobody: device and source binding need no privilege; a PvD whose sockets need a mark
    (and no pvdd to set it) fails closed and says why, once."""
    shared = Path(tempfile.mkdtemp(prefix="pvdrun-resolve-"))
    try:
        shared.chmod(0o755)
        for src in (probe, Path(shim_lib)):
            shutil.copy(src, shared / src.name)
        user = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", str(shared / probe.name)]
        env = {"PVDRUN_SOCKET": str(shared / "no-pvdd.sock")}
        lib = str(shared / Path(shim_lib).name)
        ok = split_lab.run([*user, "gai", "svc.example", "inet", "none"], scope=split_lab.scope("a"),
                           preload=lib, env=env)
        assert ok.stdout.splitlines()[1:] == ["inet 10.1.0.80 80"], (ok.stdout, ok.stderr)
        marked = split_lab.run([*user, "gai", "svc.example", "inet", "none"],
                               scope=split_lab.scope("a", mark=0x42), preload=lib, env=env)
        assert marked.stdout.startswith(f"rc={EAI['EAI_AGAIN']} "), marked.stdout
        assert marked.stderr.count("cannot mark a DNS socket") == 1, marked.stderr
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def test_malformed_scope_fails_closed(split_lab: ResolveLab, probe: Path, shim_lib: str) -> None:
    rc, _, _ = gai(split_lab, probe, shim_lib, "v=9 id=x", "svc.example")
    assert rc == EAI["EAI_FAIL"]


def test_bad_service_fails_before_any_query(split_lab: ResolveLab, probe: Path, shim_lib: str) -> None:
    with split_lab.capture("a") as pcap:
        proc = split_lab.run([str(probe), "gai", "svc.example", "unspec", "none", "no-such-service"],
                             scope=split_lab.scope("a"), preload=shim_lib)
    assert proc.stdout.startswith(f"rc={socket.EAI_SERVICE} "), proc.stdout
    assert_no_leak(pcap, proc.stdout, **split_lab.silent_rules("a"))


def test_numeric_hosts_need_no_dns(split_lab: ResolveLab, probe: Path, shim_lib: str) -> None:
    rc, lines, _ = gai(split_lab, probe, shim_lib, split_lab.scope("b", dns_servers=[]), "2001:db8::5")
    assert rc == 0 and addrs(lines) == ["2001:db8::5"]


def test_getnameinfo_uses_the_pvds_ptr_records(split_lab: ResolveLab, probe: Path, shim_lib: str) -> None:
    out = split_lab.run([str(probe), "gni", "10.1.0.81", "namereqd"], scope=split_lab.scope("a"),
                        preload=shim_lib).stdout.strip()
    assert out == "rc=0 host=intranet.isp-a.example serv=http"
    out = split_lab.run([str(probe), "gni", "10.1.0.81", "namereqd"], scope=split_lab.scope("b"),
                        preload=shim_lib).stdout.strip()
    assert out.startswith(f"rc={EAI['EAI_NONAME']} ")
    out = split_lab.run([str(probe), "gni", "10.1.0.81"], scope=split_lab.scope("b"),
                        preload=shim_lib).stdout.strip()
    assert out == "rc=0 host=10.1.0.81 serv=http"


def test_gethostbyname_family(split_lab: ResolveLab, probe: Path, shim_lib: str) -> None:
    out = split_lab.run([str(probe), "ghbn", "www.example"], scope=split_lab.scope("a"),
                        preload=shim_lib).stdout.splitlines()
    assert out == ["h_errno=0", "name=svc.example", "alias=www.example", "10.1.0.80"]
    out = split_lab.run([str(probe), "ghbn", "svc.example", "inet6"], scope=split_lab.scope("b"),
                        preload=shim_lib).stdout.splitlines()
    assert out == ["h_errno=0", "name=svc.example", "2001:db8:b::80"]
    out = split_lab.run([str(probe), "ghbn", "intranet.isp-a.example"], scope=split_lab.scope("b"),
                        preload=shim_lib).stdout.splitlines()
    assert out == [f"h_errno={1}"]  # HOST_NOT_FOUND
    out = split_lab.run([str(probe), "ghbnr", "svc.example"], scope=split_lab.scope("a"),
                        preload=shim_lib).stdout.splitlines()
    assert out == ["small rc=34", "rc=0 h_errno=0 found=1", "name=svc.example", "10.1.0.80"]  # ERANGE


def test_thread_scope_changes_that_threads_lookups(split_lab: ResolveLab, probe: Path, shim_lib: str) -> None:
    """R3/R12: pvd_set_thread_scope(B) in one thread; the process stays in A."""
    proc = split_lab.run([str(probe), "thread-scope", split_lab.scope("b"), "svc.example"],
                         scope=split_lab.scope("a"), preload=shim_lib)
    assert proc.stdout.splitlines() == ["thread rc=0 first=2001:db8:b::80",
                                        "main rc=0 first=2001:db8:a::80"], proc.stderr


def test_concurrent_lookups(split_lab: ResolveLab, probe: Path, shim_lib: str) -> None:
    proc = split_lab.run([str(probe), "threads", "svc.example", "16"], scope=split_lab.scope("a"),
                         preload=shim_lib)
    assert proc.stdout.strip() == "ok=16 of 16"


def test_without_scope_the_system_resolver_is_used(split_lab: ResolveLab, probe: Path, shim_lib: str) -> None:
    rc, lines, _ = gai(split_lab, probe, shim_lib, None, "localhost", "inet")
    assert rc == 0 and addrs(lines) == ["127.0.0.1"]


ASAN_CASES = [["gai", "svc.example", "unspec", "canonname"], ["gai", "www.example", "inet6", "v4mapped,all"],
              ["gai", "big.example", "inet", "none"], ["gai", "intranet", "unspec", "addrconfig"],
              ["gai", "nonexistent.example"], ["gai", "localhost"], ["gai", "svc.example", "unspec", "none", "nosuchsvc"],
              ["gni", "10.1.0.81", "namereqd"], ["gni", "10.9.9.9"], ["ghbn", "www.example"],
              ["ghbn", "svc.example", "inet6"], ["ghbnr", "svc.example"], ["threads", "svc.example", "8"]]


def test_resolver_paths_under_asan(split_lab: ResolveLab, probe: Path, asan_preload: str) -> None:
    """The shim built with ASan/UBSan and leak detection: every path, and a hostile server,
    runs without a report (exit status 99 would mean one)."""
    env = {"ASAN_OPTIONS": "detect_leaks=1:exitcode=99", "UBSAN_OPTIONS": "halt_on_error=1:exitcode=99"}
    for case in ASAN_CASES:
        proc = split_lab.run([str(probe), *case], scope=split_lab.scope("a"), preload=asan_preload, env=env)
        assert proc.returncode == 0 and "ERROR: " not in proc.stderr, (case, proc.stderr[-2000:])
        assert proc.stdout, case
    with hostile_server(split_lab) as server:
        for name in ("loop.example", "trunc.example", "oversize.example", "longname.example"):
            proc = split_lab.run([str(probe), "gai", name, "inet", "none"],
                                 scope=split_lab.scope("a", dns_servers=[server]), preload=asan_preload,
                                 env={**env, "RES_OPTIONS": "timeout:1 attempts:1"})
            assert proc.returncode == 0 and "ERROR: " not in proc.stderr, (name, proc.stderr[-2000:])
