"""A small two-ISP DNS lab for the resolution tests (fixtures only, no tests).

Three network namespaces per lab, named with this run's pid: a client and
ISP A and ISP B, each ISP linked to the client by a veth pair and running its
own dnsmasq with its own view of the names (split horizon, local names).

``split``  ISP A dual-stack (10.1.0.0/24, 2001:db8:a::/64), DNS 10.1.0.1 and
           2001:db8:a::1; ISP B IPv6-only (2001:db8:b::/64), DNS 2001:db8:b::1.
``overlap`` lab scenario 3: both ISPs number their link 10.0.0.0/24 and both
           DNS servers are 10.0.0.1.

Built with fixtures/netns.py; everything is removed in the fixture finalizer, also
when a test fails.  The lab is independent of ``pvdrun.lab`` on purpose: it only needs
``ip`` and ``dnsmasq``.
"""
from __future__ import annotations

import contextlib
import itertools
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest

from fixtures.capture import LinkCapture
from fixtures.netns import Namespaces, ifindex, in_ns, serving, sh, wait_for  # sh: imported from here
from fixtures.prereq import missing, require
from fixtures.shim_source import all_sources
from fixtures.shim_source import flags as shim_flags
from pvdrun.model import Pvd, make_handle

TESTS = Path(__file__).resolve().parent
PROBE_SRC = TESTS / "c" / "dns_gai_probe.c"

#: Names and answers of each ISP's DNS (split lab).
SPLIT_RECORDS = {
    "a": ["--host-record=svc.example,10.1.0.80,2001:db8:a::80",
          "--host-record=intranet.isp-a.example,10.1.0.81",
          "--cname=www.example,svc.example",
          *[f"--host-record=big.example,10.1.1.{i}" for i in range(1, 41)],  # > 512 octets: TC
          "--host-record=v6only.example,2001:db8:a::66",
          # a PTR without a forward name, a mail exchanger and a service of ISP A's own
          "--ptr-record=98.0.1.10.in-addr.arpa,printer.isp-a.example",
          "--mx-host=isp-a.example,mail.isp-a.example,10",
          "--srv-host=_ldap._tcp.isp-a.example,ldap.isp-a.example,389,0,100",
          "--local=/example/", "--local=/arpa/"],
    "b": ["--host-record=svc.example,10.2.0.80,2001:db8:b::80",
          "--host-record=www.isp-b.example,2001:db8:b::81",
          "--ptr-record=8.9.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.b.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa,printer.isp-b.example",
          "--mx-host=isp-b.example,mail.isp-b.example,20",
          "--srv-host=_ldap._tcp.isp-b.example,ldap.isp-b.example,389,0,100",
          "--local=/example/", "--local=/arpa/"],
}
#: The split lab's PvDs as a configuration file declares them (fixtures/pvdd.py: config_only).
SPLIT_PVDS = {"ispa": {"interface": "a0", "dns": ["10.1.0.1"], "search": ["isp-a.example"]},
              "ispb": {"interface": "b0", "dns": ["2001:db8:b::1"], "search": ["isp-b.example"]}}
OVERLAP_RECORDS = {
    "a": ["--host-record=svc.example,10.0.0.80", "--local=/example/"],
    "b": ["--host-record=svc.example,10.0.0.90", "--local=/example/"],
}


@dataclass
class Isp:
    """One ISP namespace and what the client sees of it."""

    key: str
    ns: str
    client_if: str
    client_addrs: list[str]
    dns: list[str]
    search: list[str]
    ifindex: int = 0
    dnsmasq: subprocess.Popen | None = None
    log: Path | None = None


@dataclass
class ResolveLab:
    """A running lab: the client namespace and the two ISPs."""

    mode: str
    client_ns: str
    isps: dict[str, Isp]
    workdir: Path
    spaces: Namespaces = field(default_factory=Namespaces)

    @property
    def processes(self) -> list[subprocess.Popen]:
        """The processes started in the lab (stopped by destroy_lab)."""
        return self.spaces.procs

    def pvd(self, key: str, **changes: object) -> Pvd:
        """The PvD the client has through ISP `key` (changes override fields)."""
        isp = self.isps[key]
        pvd = Pvd(pvd_id=f"isp{key}.example", handle=make_handle(f"isp{key}.example", isp.ifindex, 1),
                  names=[f"isp{key}"], interfaces=[isp.client_if], ifindexes=[isp.ifindex],
                  addresses=list(isp.client_addrs), dns_servers=list(isp.dns),
                  search_domains=list(isp.search))
        for name, value in changes.items():
            setattr(pvd, name, value)
        return pvd

    def scope(self, key: str, **changes: object) -> str:
        return self.pvd(key, **changes).to_scope()

    def run(self, argv: list[str], scope: str | None = None, env: dict[str, str] | None = None,
            preload: str | None = None, timeout: float = 60,
            resolv_conf: list[str] | None = None) -> subprocess.CompletedProcess:
        """Run argv in the client namespace, optionally scoped with the shim; ``resolv_conf``:
        the nameservers of a private /etc/resolv.conf (its own mount namespace) for it."""
        full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "RES_OPTIONS": "timeout:2 attempts:1"}
        if scope is not None:
            full_env["PVDRUN_SCOPE"] = scope
        if preload:
            full_env["LD_PRELOAD"] = preload
        full_env.update(env or {})
        if resolv_conf is not None:
            path = self.workdir / f"resolv-{time.monotonic_ns()}.conf"
            path.write_text("".join(f"nameserver {server}\n" for server in resolv_conf))
            path.chmod(0o644)
            script = f"mount --bind {shlex.quote(str(path))} /etc/resolv.conf && exec {shlex.join(argv)}"
            argv = ["unshare", "-m", "--propagation", "private", "sh", "-c", script]
        cmd = in_ns(self.client_ns, ["env", "-i", *[f"{k}={v}" for k, v in full_env.items()], *argv])
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)

    def capture(self, key: str) -> LinkCapture:
        """The suite's capture (fixtures/capture.py: proven live, nothing filtered out) on ISP
        `key`'s side of its link, for the duration of a ``with`` block."""
        return LinkCapture(self.isps[key].ns, "up0", label=f"ISP {key.upper()}")

    @staticmethod
    def packets(cap: LinkCapture) -> list[str]:
        """tcpdump's lines for the DNS packets (UDP or TCP, port 53) the capture holds."""
        return [line for line in cap.lines if (m := _ADDR_RE.search(line)) and "53" in (_port(m[1]), _port(m[2]))]

    def leak_rules(self, key: str) -> dict[str, list[str]]:
        """What the OTHER ISP's link must not hold of a program scoped to PvD ``key``: no frame
        from ``key``'s client addresses, none to the other ISP's DNS servers, only link control
        from the client's addresses on that link."""
        other = self.isps["b" if key == "a" else "a"]
        return {"sources": self.isps[key].client_addrs, "quiet": other.client_addrs,
                "destinations": [server.split("%")[0] for server in other.dns]}

    def silent_rules(self, key: str) -> dict[str, list[str]]:
        """ISP ``key``'s link must hold nothing of the client but the kernel's link control
        (its Router Solicitations go on for ever): nothing was asked."""
        return {"quiet": self.isps[key].client_addrs, "destinations": [s.split("%")[0] for s in self.isps[key].dns]}


#: "HH:MM:SS.us IP SRC.PORT > DST.PORT: ..." in ``tcpdump -n`` output.
_ADDR_RE = re.compile(r"\bIP6? (\S+) > (\S+?):? ")


def _port(field: str) -> str:
    """The port of a tcpdump address field (``10.1.0.2.53``, ``2001:db8:a::1.53``), or ''."""
    head, _, port = field.rpartition(".")
    return port if head and (":" in head or head.count(".") == 3) else ""


SPOOF_SERVER = r"""
import socket, sys, time
import dns.message, dns.rrset
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("10.1.0.7", 53))
other_addr = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
other_addr.bind(("10.1.0.8", 53))
other_port = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
other_port.bind(("10.1.0.7", 5353))
print("ready", flush=True)
def answer(query, address, qid=None):
    reply = dns.message.make_response(query)
    if qid is not None:
        reply.id = qid
    reply.answer.append(dns.rrset.from_text(query.question[0].name, 60, "IN", "A", address))
    return reply.to_wire()
while True:
    data, peer = sock.recvfrom(4096)
    query = dns.message.from_wire(data)
    if query.question[0].rdtype != 1:
        sock.sendto(dns.message.make_response(query).to_wire(), peer)  # NODATA for AAAA
        continue
    sock.sendto(answer(query, "6.6.6.1", qid=(query.id + 1) & 0xFFFF), peer)  # wrong id
    other_addr.sendto(answer(query, "6.6.6.2"), peer)                          # wrong address
    other_port.sendto(answer(query, "6.6.6.3"), peer)                          # wrong port
    sock.sendto(b"\x00garbage", peer)                                          # malformed
    time.sleep(0.2)
    sock.sendto(answer(query, "10.1.0.77"), peer)                              # the real one
"""


@contextlib.contextmanager
def spoofing_server(lab: "ResolveLab") -> Iterator[str]:
    """A DNS server on ISP A (10.1.0.7) that precedes each real answer with
    replies a resolver must drop: wrong id, wrong source address, wrong
    source port, garbage.  Yields the server's address."""
    with serving(lab.isps["a"].ns, [sys.executable, "-c", SPOOF_SERVER]):
        yield "10.1.0.7"


HOSTILE_SERVER = r"""
import socket, struct
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("10.1.0.9", 53))
print("ready", flush=True)
while True:
    data, peer = sock.recvfrom(4096)
    qid = data[:2]
    question = data[12:]
    qname = question[1:question[0] + 1].decode(errors="replace")
    head = lambda an: qid + struct.pack("!HHHHH", 0x8180, 1, an, 0, 0)
    here = 12 + len(question)
    a_rdata = struct.pack("!HHIH", 1, 1, 60, 4) + bytes([10, 1, 0, 80])
    if qname == "loop":        # answer owner name is a pointer to itself
        reply = head(1) + question + struct.pack("!H", 0xC000 | here) + a_rdata
    elif qname == "trunc":     # the answer stops in the middle, TC not set
        reply = (head(1) + question + b"\xc0\x0c" + a_rdata)[:-3]
    elif qname == "oversize":  # more answers than any stub keeps
        reply = head(60) + question + (b"\xc0\x0c" + a_rdata) * 60
    elif qname == "longname":  # CNAME target longer than 255 octets
        target = (b"\x3f" + b"x" * 63) * 5 + b"\x00"
        reply = head(1) + question + b"\xc0\x0c" + struct.pack("!HHIH", 5, 1, 60, len(target)) + target
    else:
        reply = head(0) + question
    sock.sendto(reply, peer)
"""


@contextlib.contextmanager
def hostile_server(lab: "ResolveLab") -> Iterator[str]:
    """A DNS server on ISP A (10.1.0.9) whose only replies are malformed, by the first label
    of the name: loop (compression loop), trunc (cut answer), oversize (60 answers),
    longname (CNAME target over 255 octets).  Yields its address."""
    with serving(lab.isps["a"].ns, [sys.executable, "-c", HOSTILE_SERVER]):
        yield "10.1.0.9"


LINK_LOCAL_SERVER = r"""
import socket, dns.message, dns.rrset
sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
sock.bind(("fe80::b1", 53, 0, socket.if_nametoindex("up0")))
print("ready", flush=True)
while True:
    data, peer = sock.recvfrom(4096)
    query = dns.message.from_wire(data)
    reply = dns.message.make_response(query)
    if query.question[0].rdtype == 28:
        reply.answer.append(dns.rrset.from_text(query.question[0].name, 60, "IN", "AAAA", "2001:db8:b::99"))
    sock.sendto(reply.to_wire(), peer)
"""


@contextlib.contextmanager
def link_local_server(lab: "ResolveLab") -> Iterator[str]:
    """A DNS server on ISP B's link-local address fe80::b1, answering every AAAA question
    with 2001:db8:b::99 (RDNSS servers are often link-local).  Yields "fe80::b1%b0"."""
    with serving(lab.isps["b"].ns, [sys.executable, "-c", LINK_LOCAL_SERVER]):
        yield f"fe80::b1%{lab.isps['b'].client_if}"


def _start_dnsmasq(lab: "ResolveLab", isp: Isp, listen: list[str], records: list[str]) -> None:
    isp.log = lab.workdir / f"dnsmasq-{isp.key}.log"
    cmd = ["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
           "--no-resolv", "--no-hosts", "--bind-interfaces", "--user=root", "--group=root",
           f"--pid-file={lab.workdir}/dnsmasq-{isp.key}.pid", "--log-queries",
           f"--log-facility={isp.log}", "--port=53", "--local-ttl=60",
           *[f"--listen-address={a}" for a in listen], *records]
    dnsmasq = isp.dnsmasq = lab.spaces.popen(isp.ns, cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def answers() -> bool:  # on its first address
        if dnsmasq.poll() is not None:
            raise RuntimeError(f"dnsmasq for ISP {isp.key} exited: {dnsmasq.stderr.read()!r}")
        probe = sh("dig", "+time=1", "+tries=1", f"@{listen[0]}", "svc.example", ns=isp.ns, check=False)
        return "ANSWER SECTION" in probe.stdout

    wait_for(answers, timeout=10, interval=0.1, what=f"dnsmasq for ISP {isp.key} answering")


_BUILDS = itertools.count()


def lab_tag(mode: str, build: int) -> str:
    """The unique part of a lab's namespace names: pid, mode, build number."""
    return f"{os.getpid()}{mode[0]}{build}"


def build_lab(mode: str, workdir: Path, build: int) -> ResolveLab:
    """Create the namespaces, links, addresses and DNS servers of one lab (fixtures/netns.py);
    what was made is removed again when a step fails."""
    tag = lab_tag(mode, build)
    client = f"rsvc{tag}"
    isps = {"a": Isp("a", f"rsva{tag}", "a0", [], [], []),
            "b": Isp("b", f"rsvb{tag}", "b0", [], [], [])}
    lab = ResolveLab(mode=mode, client_ns=client, isps=isps, workdir=workdir)
    try:
        for ns in (client, isps["a"].ns, isps["b"].ns):
            lab.spaces.add(ns)
        if mode == "split":
            # 10.1.0.7 and 10.1.0.8 on ISP A: spoofing_server(); 10.1.0.9: hostile_server().
            plan = {"a": (["10.1.0.2/24", "2001:db8:a::2/64"],
                          ["10.1.0.1/24", "2001:db8:a::1/64", "10.1.0.7/24", "10.1.0.8/24", "10.1.0.9/24"],
                          ["10.1.0.1", "2001:db8:a::1"], ["isp-a.example"]),
                    "b": (["2001:db8:b::2/64", "fe80::2/64"], ["2001:db8:b::1/64", "fe80::b1/64"],
                          ["2001:db8:b::1"], ["isp-b.example"])}  # fe80::b1: link_local_server()
            records = SPLIT_RECORDS
        else:
            plan = {"a": (["10.0.0.2/24"], ["10.0.0.1/24"], ["10.0.0.1"], []),
                    "b": (["10.0.0.3/24"], ["10.0.0.1/24"], ["10.0.0.1"], [])}
            records = OVERLAP_RECORDS
        for key, isp in isps.items():
            client_addrs, isp_addrs, dns_servers, search = plan[key]
            lab.spaces.veth(client, isp.client_if, isp.ns, "up0", client_addrs, isp_addrs)
            isp.ifindex = ifindex(client, isp.client_if)
            isp.client_addrs = client_addrs
            isp.dns = dns_servers
            isp.search = search
            _start_dnsmasq(lab, isp, dns_servers, records[key])
            if mode == "split":
                _start_http(lab, isp, HTTP_ADDRS[key])
    except BaseException:
        destroy_lab(lab)
        raise
    return lab


#: Where each ISP's web server for svc.example listens (split lab).
HTTP_ADDRS = {"a": ["10.1.0.80/24", "2001:db8:a::80/64"], "b": ["2001:db8:b::80/64"]}


def _start_http(lab: ResolveLab, isp: Isp, addrs: list[str]) -> None:
    """An HTTP server on port 80 of `addrs` in the ISP namespace, serving "hello from ISP X"."""
    lab.spaces.addresses(isp.ns, "up0", *addrs)
    root = lab.workdir / f"www-{isp.key}"
    root.mkdir()
    (root / "index.html").write_text(f"hello from ISP {isp.key.upper()}\n")
    lab.spaces.popen(isp.ns, [sys.executable, "-m", "http.server", "80", "--bind", "::", "--directory", str(root)],
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    probe_addr = addrs[0].split("/")[0]
    url_host = f"[{probe_addr}]" if ":" in probe_addr else probe_addr
    wait_for(lambda: sh("curl", "-s", "-m", "1", f"http://{url_host}/", ns=isp.ns, check=False).returncode == 0,
             timeout=10, interval=0.1, what=f"HTTP server of ISP {isp.key} answering")


def destroy_lab(lab: ResolveLab) -> None:
    """Stop the lab's processes and delete its namespaces (never raises)."""
    lab.spaces.close()


def _lab_fixture(mode: str, factory: pytest.TempPathFactory) -> Iterator[ResolveLab]:
    require(os.geteuid() == 0, "root (the resolve lab builds network namespaces)")
    workdir = factory.mktemp(f"resolve-{mode}")
    lab = build_lab(mode, workdir, next(_BUILDS))  # each test module importing the fixture gets its own lab
    try:
        yield lab
    finally:
        destroy_lab(lab)


@pytest.fixture(scope="session")
def split_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ResolveLab]:
    """Two ISPs with split-horizon DNS (see module docstring)."""
    yield from _lab_fixture("split", tmp_path_factory)


@pytest.fixture(scope="session")
def overlap_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ResolveLab]:
    """Two ISPs with the same IPv4 DNS server address (scenario 3)."""
    yield from _lab_fixture("overlap", tmp_path_factory)


@pytest.fixture(scope="session")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/c/dns_gai_probe.c, compiled."""
    out = tmp_path_factory.mktemp("probe") / "dns_gai_probe"
    sh(os.environ.get("CC", "cc"), "-std=gnu11", "-O1", "-g", "-Wall", "-Wextra", "-Werror",
       "-D_GNU_SOURCE", "-o", str(out), str(PROBE_SRC), "-pthread")
    return out


@pytest.fixture(scope="session")
def asan_preload(tmp_path_factory: pytest.TempPathFactory) -> str:
    """LD_PRELOAD value for the shim built from shim/*.c with ASan/UBSan (libasan first)."""
    libasan = sh(os.environ.get("CC", "cc"), "-print-file-name=libasan.so").stdout.strip()
    if not os.path.isabs(libasan) or not os.path.exists(libasan):
        missing(f"libasan for {os.environ.get('CC', 'cc')} (Debian: libasan8, with gcc)")
    out = tmp_path_factory.mktemp("asan") / "libpvdshim.so"
    build = shim_flags()
    sh(os.environ.get("CC", "cc"), "-O1", "-g", *build["SHIM_CFLAGS"], "-fsanitize=address,undefined",
       "-fno-omit-frame-pointer", "-shared", "-o", str(out), *all_sources(), *build["SHIM_LDFLAGS"], timeout=120)
    return f"{os.path.realpath(libasan)} {out}"


@pytest.fixture(scope="session")
def shim_lib() -> str:
    """The installed preload library."""
    from pvdrun.shim import library_path
    return library_path()
