"""DNS servers on link-local addresses (RFC 8106 lets a router announce its own, as home
routers do).  Two links, each to a router namespace whose only DNS server is its link-local
address **fe80::1**, the same address on both links, with different answers: each router
answers every name under ``ll.example`` with its own global address (``2001:db8:1::1`` /
``2001:db8:2::1``), where it also serves HTTP saying which router it is.

The routers announce RDNSS fe80::1 (and nothing else about DNS).  Discovery keeps the zone
(``fe80::1%l1``, ``fe80::1%l2``): `pvdrun list`, the scope line, the shim's resolver, the
Python resolver (`pvdrun resolve`, pvdd), the private resolv.conf of the root path and the
shim's resolv.conf view (a user's dig) all reach the server of their own link, on that link,
from its link-local address.  Captures
(fixtures/capture.py, proven live by markers) on both links: the query (a token per test) is
on the PvD's link, to fe80::1, and nothing carrying the token is on the other link; the
control (dig to the other link's server, unscoped) is caught by the same verdict.  As root
without pvdd, and as an unprivileged user with pvdd serving the table (and answering its
own ``resolve`` request).  Unit tests of the
resolver's source choice run without root."""
from __future__ import annotations

import json
import os
import secrets
import sys
from typing import Any, Iterator

import pytest

from fixtures.capture import LinkCapture, assert_caught, assert_no_leak, ip_destination, ip_source, udp_ports
from fixtures.netns import Namespaces, ifindex, sh, wait_for
from fixtures.prereq import require
from fixtures.pvdd import Pvdd
from fixtures.unprivileged import User
from pvdrun.discovery import ra as craft
from pvdrun.model import Pvd
from pvdrun.resolve.resolvconf import render_resolv_conf
from pvdrun.resolve.sockets import server_address, usable_servers
from pvdrun.shim import binding, library_path

PVDRUN = [sys.executable, "-m", "pvdrun.cli"]
LINKS = {"l1": ("r1", "2001:db8:1::"), "l2": ("r2", "2001:db8:2::")}
OTHER = {"l1": "l2", "l2": "l1"}
SERVER = "fe80::1"

#: One router: RAs (RDNSS fe80::1) every half second and in answer to each Router Solicitation, DNS on fe80::1%r0 (UDP and TCP), HTTP on
#: port 80 saying its name.  Every query is written to the log as "QNAME SOURCE".
ROUTER = r"""
import socket, sys, threading, time
import dns.message, dns.rcode, dns.rdatatype, dns.rrset
from http.server import BaseHTTPRequestHandler, HTTPServer
name, answer, ra_hex, log_path = sys.argv[1:5]
index = socket.if_nametoindex("r0")
log = open(log_path, "a", buffering=1)

def reply_to(data, source):
    query = dns.message.from_wire(data)
    question = query.question[0]
    log.write(f"{question.name.to_text(omit_final_dot=True)} {source}\n")
    reply = dns.message.make_response(query)
    if question.name.to_text().endswith("ll.example."):
        if question.rdtype == dns.rdatatype.AAAA:
            reply.answer.append(dns.rrset.from_text(question.name, 5, "IN", "AAAA", answer))
    else:
        reply.set_rcode(dns.rcode.REFUSED)
    return reply.to_wire()

udp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
udp.bind(("fe80::1", 53, 0, index))
tcp = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
tcp.bind(("fe80::1", 53, 0, index))
tcp.listen(8)

def serve_udp():
    while True:
        data, peer = udp.recvfrom(4096)
        udp.sendto(reply_to(data, peer[0]), peer)

def serve_tcp():
    while True:
        conn, peer = tcp.accept()
        with conn:
            size = int.from_bytes(conn.recv(2), "big")
            data = b""
            while len(data) < size:
                data += conn.recv(size - len(data))
            out = reply_to(data, peer[0])
            conn.sendall(len(out).to_bytes(2, "big") + out)

class Http(BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"{name}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass

class Http6(HTTPServer):
    address_family = socket.AF_INET6

web = Http6(("::", 80), Http)
ra = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
ra.bind(("fe80::1", 0, 0, index))
ra.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
# a router answers Router Solicitations (RFC 4861) at once: a one-shot discovery need not wait
# for the next periodic RA, which under load could come after its listening window
ra.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP,
              socket.inet_pton(socket.AF_INET6, "ff02::2") + index.to_bytes(4, sys.byteorder))

def answer_solicitations():
    while True:
        data, _ = ra.recvfrom(1500)
        if data[:1] == bytes([133]):
            try:
                ra.sendto(bytes.fromhex(ra_hex), ("ff02::1", 0, 0, index))
            except OSError:
                pass

for target in (serve_udp, serve_tcp, web.serve_forever, answer_solicitations):
    threading.Thread(target=target, daemon=True).start()
print("ready", flush=True)
while True:
    try:
        ra.sendto(bytes.fromhex(ra_hex), ("ff02::1", 0, 0, index))
    except OSError:  # the link is not up yet
        pass
    time.sleep(0.5)
"""


class LinkLocalLab:
    """The host namespace with links l1 and l2, routers r1 and r2 behind them (see module)."""

    def __init__(self, spaces: Namespaces) -> None:
        self.spaces = spaces
        tag = f"pll{os.getpid() % 100000}"
        self.host = spaces.add(f"{tag}h")
        self.dir = spaces.mkdtemp(f"{tag}-", 0o755)
        self.logs: dict[str, str] = {}
        ra_message = craft.router_advert(craft.rdnss([SERVER]), router_lifetime=1800)
        for link, (router, prefix) in LINKS.items():
            ns = spaces.add(f"{tag}{router}")
            spaces.veth(self.host, link, ns, "r0", addresses=[f"{prefix}10/64"],
                        peer_addresses=[f"{SERVER}/64", f"{prefix}1/64"])
            self.logs[link] = os.path.join(self.dir, f"{router}.log")
            proc = spaces.popen(ns, [sys.executable, "-c", ROUTER, router, f"{prefix}1", ra_message.hex(),
                                     self.logs[link]], stdout=-1, stderr=-1, text=True)
            line = proc.stdout.readline() if proc.stdout else ""
            assert line.strip() == "ready", proc.stderr.read() if proc.stderr else line
        for link in LINKS:  # the host heard each router (its RA made the default route through it)
            wait_for(lambda link=link: "default" in sh("ip", "-6", "route", "show", "dev", link, ns=self.host).stdout,
                     what=f"an RA on {link}")
        for link in LINKS:  # the host's own link-local addresses have passed DAD: a tentative
            # one is no source, and the first lookup would find no usable server on that link
            wait_for(lambda link=link: self.link_local(link) is not None, what=f"a usable link-local address on {link}")
        self.host_ll = {link: str(self.link_local(link)) for link in LINKS}

    def link_local(self, link: str) -> str | None:
        """The host's link-local address on ``link``, once it is usable (not tentative)."""
        shown = json.loads(sh("ip", "-j", "-6", "addr", "show", "dev", link, ns=self.host).stdout)
        return next((a["local"] for a in shown[0]["addr_info"]
                     if a.get("scope") == "link" and not a.get("tentative")), None)

    def run(self, argv: list[str], env: dict[str, str] | None = None, timeout: float = 60) -> Any:
        """``argv`` in the host namespace, pvdd never asked (its socket names nothing)."""
        no_daemon = {"PVDRUN_SOCKET": os.path.join(self.dir, "no-pvdd.sock")}
        return self.spaces.run(self.host, argv, env={**os.environ, **no_daemon, **(env or {})}, timeout=timeout)

    def capture(self, link: str) -> LinkCapture:
        return LinkCapture(self.host, link, label=link)

    def queries(self, link: str, token: str) -> list[str]:
        """Sources of the queries for names holding ``token`` that link's router received."""
        try:
            with open(self.logs[link], encoding="utf-8") as handle:
                return [line.split()[1] for line in handle if token in line.split()[0]]
        except FileNotFoundError:
            return []


@pytest.fixture(scope="module")
def lab() -> Iterator[LinkLocalLab]:
    require(os.geteuid() == 0, "root (network namespaces)")
    with Namespaces() as spaces:
        yield LinkLocalLab(spaces)


def _dns_to_server(frame: bytes) -> bool:
    ports = udp_ports(frame)
    return ports is not None and ports[1] == 53 and ip_destination(frame) == SERVER


def check_on_links(lab: LinkLocalLab, link: str, token: str, own: LinkCapture, other: LinkCapture,
                   *context: Any, sources: set[str] | None = None) -> None:
    """The query is on ``link``, to fe80::1, from that link's link-local address (or one of
    ``sources``), and reached that link's router; nothing carrying the token is on the other
    link."""
    allowed = sources or {lab.host_ll[link]}
    asked = [f for f in own.carrying(token) if _dns_to_server(f)]
    assert asked, (own.show(), *context)
    assert {ip_source(f) for f in asked} <= allowed, own.show(asked)
    assert lab.queries(link, token) and set(lab.queries(link, token)) <= allowed
    assert not lab.queries(OTHER[link], token)
    assert_no_leak(other, *context, tokens=[token])


def token_name() -> tuple[str, str]:
    token = f"t{secrets.token_hex(5)}"
    return token, f"{token}.ll.example"


# ---- unit tests: no root -------------------------------------------------------------------

def test_link_local_server_is_reached_only_on_its_own_link() -> None:
    def usable(pvd: Pvd, server: str) -> bool:
        return binding.dns_server_usable(pvd.to_scope(), server)

    pvd = Pvd(pvd_id="implicit:a0", handle=7, interfaces=["a0"], ifindexes=[2],
              addresses=["2001:db8:a::2/64", "fe80::2/64"], dns_servers=["fe80::1%a0"])
    assert usable(pvd, "fe80::1%a0") and usable(pvd, "fe80::1%2")
    assert usable(pvd, "fe80::1")  # no zone: the PvD's only link
    assert not usable(pvd, "fe80::1%b0") and not usable(pvd, "fe80::1%3")
    assert usable_servers(pvd) == ["fe80::1%a0"]
    two = Pvd(pvd_id="x", handle=8, interfaces=["a0", "b0"], ifindexes=[2, 3], addresses=["2001:db8:a::2/64"])
    assert not usable(two, "fe80::1")  # no zone, two links: which one?
    assert usable(two, "fe80::1%b0")
    assert server_address("2001:db8::53") == ("2001:db8::53", 53, 0, 0)


def test_resolv_conf_names_the_link_of_a_link_local_server() -> None:
    pvd = Pvd(pvd_id="implicit:a0", handle=7, interfaces=["a0"], ifindexes=[2],
              addresses=["2001:db8:a::2/64"], dns_servers=["fe80::1%a0", "2001:db8:a::53"])
    assert "nameserver fe80::1%a0\nnameserver 2001:db8:a::53\n" in render_resolv_conf(pvd)


# ---- the lab: as root, without pvdd ---------------------------------------------------------

@pytest.mark.root
def test_list_and_show_keep_the_zone(lab: LinkLocalLab) -> None:
    listed = lab.run([*PVDRUN, "list", "--json", "--no-daemon"])
    assert listed.returncode == 0, listed.stderr
    pvds = {p["pvd_id"]: p for p in json.loads(listed.stdout)["pvds"]}
    for link in LINKS:
        pvd = pvds[f"implicit:{link}"]
        assert pvd["dns_servers"] == [f"{SERVER}%{link}"], pvd
        assert f"dns={SERVER}%{link}" in pvd["scope"].split()
    shown = lab.run([*PVDRUN, "show", "l1", "--no-daemon"])
    assert shown.returncode == 0 and f"{SERVER}%l1" in shown.stdout, (shown.stdout, shown.stderr)


TOOLS = ["curl", "python", "dig", "dig-at", "resolve"]


def lookup_argv(tool: str, link: str, name: str, socket_args: list[str] | None = None) -> list[str]:
    """The command that resolves ``name`` in PvD ``link`` with ``tool`` (under ``pvdrun --pvd``
    except ``resolve``, which is pvdrun's own); its output holds the answer."""
    scoped = [*PVDRUN, "--pvd", link, *(socket_args or []), "--"]
    if tool == "curl":
        return [*scoped, "curl", "-sS", "-m", "10", f"http://{name}/"]
    if tool == "python":
        code = ("import socket, sys; print(socket.getaddrinfo(sys.argv[1], 80, socket.AF_INET6, "
                "socket.SOCK_STREAM)[0][4][0])")
        return [*scoped, sys.executable, "-c", code, name]
    if tool == "dig":  # reads resolv.conf: the PvD's (root: the private mount; a user: the shim's view)
        return [*scoped, "dig", "+short", "+tries=1", "+time=5", "AAAA", name]
    if tool == "dig-at":  # the program names the server itself, with its zone
        return [*scoped, "dig", "+short", "+tries=1", "+time=5", f"@{SERVER}%{link}", "AAAA", name]
    if tool == "pvdd":  # pvdd's own resolver (op "resolve"), asked over its socket
        assert socket_args, "pvdd's resolver needs pvdd"
        return [sys.executable, "-c", PVDD_RESOLVE, socket_args[-1], link, name]
    return [*PVDRUN, "resolve", "--pvd", link, *(socket_args or []), "--type", "AAAA", name]


#: Ask pvdd (socket, PvD name, host) for AAAA records; prints them, one a line.
PVDD_RESOLVE = r"""
import json, socket, sys
path, pvd, host = sys.argv[1:4]
with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
    sock.settimeout(30)
    sock.connect(path)
    sock.sendall(json.dumps({"v": 1, "op": "resolve", "name": pvd, "host": host, "type": "AAAA"}).encode() + bytes([10]))
    reply = json.loads(sock.makefile("rb").readline())
if not reply.get("ok"):
    sys.exit(f"pvdd: {reply}")
print(*reply["answer"]["records"], sep=chr(10))
"""


def expected(tool: str, link: str) -> str:
    router, prefix = LINKS[link]
    return router if tool == "curl" else f"{prefix}1"


@pytest.mark.root
@pytest.mark.parametrize("link", sorted(LINKS))
@pytest.mark.parametrize("tool", TOOLS)
def test_lookup_by_name_as_root(lab: LinkLocalLab, tool: str, link: str) -> None:
    token, name = token_name()
    with lab.capture(link) as own, lab.capture(OTHER[link]) as other:
        done = lab.run(lookup_argv(tool, link, name))
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert expected(tool, link) in done.stdout.split(), done.stdout  # this link's server answered
    check_on_links(lab, link, token, own, other, done.stdout, done.stderr)


@pytest.mark.root
def test_program_may_name_only_its_own_links_server(lab: LinkLocalLab) -> None:
    """The shim's scope-ID check: ``dig @fe80::1%l2`` inside PvD l1 is refused (EINVAL, nothing
    on l2); the same unscoped is the control, caught on l2 by the same verdict."""
    token, name = token_name()
    with lab.capture("l2") as other:
        refused = lab.run([*PVDRUN, "--pvd", "l1", "--", "dig", "+short", "+tries=1", "+time=2",
                           f"@{SERVER}%l2", "AAAA", name])
    assert refused.returncode != 0 and "2001:db8:2::1" not in refused.stdout, refused.stdout
    assert_no_leak(other, refused.stdout, refused.stderr, tokens=[token])
    assert not lab.queries("l2", token)
    send = ("import socket, sys; s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\n"
            "try:\n s.sendto(b'x', ('fe80::1', 9, 0, socket.if_nametoindex(sys.argv[1]))); print('sent')\n"
            "except OSError as e:\n print(e.errno)")
    for zone, outcome in (("l1", "sent"), ("l2", "22")):  # EINVAL: a scope ID outside the PvD
        done = lab.run([*PVDRUN, "--pvd", "l1", "--", sys.executable, "-c", send, zone])
        assert done.stdout.split() == [outcome], (zone, done.stdout, done.stderr)
    with lab.capture("l2") as control:
        plain = lab.run(["dig", "+short", "+tries=1", "+time=5", f"@{SERVER}%l2", "AAAA", name])
    assert "2001:db8:2::1" in plain.stdout, plain.stdout
    assert_caught(control, plain.stdout, tokens=[token])


@pytest.mark.root
def test_shared_link_pvd_reaches_its_link_local_server_from_the_link_local_address(lab: LinkLocalLab) -> None:
    """``srcbind=1`` (a PvD sharing its link binds every socket to one of its addresses): the
    shim's own DNS sockets (getaddrinfo) reach a link-local server from the link's link-local
    address.  dig binds its socket to the wildcard before it knows where it sends, and srcbind
    narrows that bind to the PvD's first address: its query leaves from the PvD's own global
    address, still on the PvD's link only (R6), and is answered there."""
    index = ifindex(lab.host, "l1")
    line = f"v=1 id=implicit:l1 handle=77 if=l1:{index} addr=2001:db8:1::10 dns={SERVER}%l1 srcbind=1"
    env = {"LD_PRELOAD": library_path(), "PVDRUN_SCOPE": line}
    for tool in ("dig-at", "python"):
        token, name = token_name()
        argv = lookup_argv(tool, "l1", name)
        argv = argv[argv.index("--") + 1:]  # the program alone: the scope line is this test's
        with lab.capture("l1") as own, lab.capture("l2") as other:
            done = lab.run(argv, env=env)
        assert "2001:db8:1::1" in done.stdout.split(), (done.stdout, done.stderr)
        sources = {lab.host_ll["l1"], "2001:db8:1::10"} if tool == "dig-at" else None
        check_on_links(lab, "l1", token, own, other, done.stdout, done.stderr, sources=sources)


@pytest.mark.root
def test_marked_pvd_reaches_its_link_local_server(lab: LinkLocalLab) -> None:
    """A PvD with pvdd's mark (here: restricted to root) has its own routing table, after which
    marked traffic stops at an unreachable rule: the table holds its link's link-local prefix,
    so the shim's DNS sockets, a program's own (dig binds first) and the Python resolver's
    reach fe80::1 on that link.  Runs before the user tests' pvdd starts (one pvdd at a time
    in a namespace), and removes what its pvdd installed."""
    daemon = Pvdd(lab.host, '[pvd.one]\ninterface = "l1"\nrestricted = true\nusers = ["root"]\n')
    try:
        daemon.start(until=lambda: any(p.get("mark") for p in daemon_pvds(daemon)))
        assert "fe80::/64 dev l1" in sh("ip", "-6", "route", "show", "table", "all", "proto", "153",
                                         ns=lab.host).stdout
        for tool in ("python", "dig-at", "resolve"):
            token, name = token_name()
            # l1 drops unmarked frames (pvdd's nftables): its capture's markers could not leave,
            # so the router's own log says where the query came from
            with lab.capture("l2") as other:
                done = lab.run(lookup_argv(tool, "l1", name, ["--socket", daemon.socket]))
            assert done.returncode == 0 and expected(tool, "l1") in done.stdout.split(), \
                (tool, done.stdout, done.stderr)
            assert lab.queries("l1", token) and set(lab.queries("l1", token)) == {lab.host_ll["l1"]}
            assert not lab.queries("l2", token)
            assert_no_leak(other, done.stdout, done.stderr, tokens=[token])
    finally:
        daemon.close(remove_state=True)


# ---- the lab: an unprivileged user, pvdd serving the table ----------------------------------

@pytest.fixture(scope="module")
def served(lab: LinkLocalLab) -> Iterator[tuple[Pvdd, User]]:
    user = User()
    daemon = Pvdd(lab.host)
    try:
        daemon.start(until=lambda: all(
            p.get("dns_servers") == [f"{SERVER}%{p['interfaces'][0]}"] for p in daemon_pvds(daemon)
            if p["pvd_id"].startswith("implicit:l")) and len(daemon_pvds(daemon)) >= 2)
        yield daemon, user
    finally:
        daemon.close(remove_state=True)
        user.remove()


def daemon_pvds(daemon: Pvdd) -> list[dict[str, Any]]:
    done = sh(*PVDRUN, "list", "--json", "--socket", daemon.socket, ns=daemon.ns, check=False)
    return json.loads(done.stdout)["pvds"] if done.returncode == 0 else []


USER_TOOLS = ["curl", "python", "dig", "dig-at", "resolve", "pvdd"]


@pytest.mark.root
@pytest.mark.parametrize("link", sorted(LINKS))
@pytest.mark.parametrize("tool", USER_TOOLS)
def test_lookup_by_name_as_a_user_with_pvdd(lab: LinkLocalLab, served: tuple[Pvdd, User], tool: str,
                                            link: str) -> None:
    daemon, user = served
    token, name = token_name()
    argv = lookup_argv(tool, link, name, ["--socket", daemon.socket])
    with lab.capture(link) as own, lab.capture(OTHER[link]) as other:
        done = lab.spaces.run(lab.host, user.argv(argv), timeout=60)
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert expected(tool, link) in done.stdout.split(), done.stdout
    check_on_links(lab, link, token, own, other, done.stdout, done.stderr)
