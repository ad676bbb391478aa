"""Strict mode's DNS forwarder (pvdrun/strict/forwarder.py) in lab 3: two host interfaces,
ispa and ispb, whose DNS servers answer the same names differently (``svc.example`` AAAA is
each ISP's own service address; ``mail.ispb.example`` exists at ISP B only).

The forwarder runs in the lab's host namespace (a small Python program, driven over its
standard input), for a PvD found by the one-shot discovery, and is asked by ``dig`` on
127.0.0.1 and ::1, over UDP and TCP.  The suite's captures (fixtures/capture.py, proven live)
on both links tell where its queries went: to the PvD's own server on the PvD's own link,
nothing on the other link, while host routes send the PvD's server out of the other link for
the block (so that an untied socket would be caught there: the control, dig unscoped, is).
"""
from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from fixtures.capture import assert_caught, assert_no_leak, ip_destination, ip_source, tcp_segment, udp_ports
from fixtures.detour import main_table_prefers
from fixtures.lab_rules import OTHER
from fixtures.lab_rules import leak_rules_separate as leak_rules
from fixtures.netns import stop
from pvdrun.strict.forwarder import servfail

pytestmark = pytest.mark.root

#: The forwarder in the lab's host namespace: started for the PvD of argv[1] (JSON), prints
#: "ready PORT", then obeys "update PVD-JSON" and "close" lines, answering "done COMMAND".
FORWARDER = r"""
import json, logging, sys
from pvdrun.model import Pvd
from pvdrun.strict.forwarder import DnsForwarder
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
forwarder = DnsForwarder(Pvd.from_dict(json.loads(sys.argv[1])))
forwarder.start()
print("ready", forwarder.port, flush=True)
for line in sys.stdin:
    command, _, argument = line.strip().partition(" ")
    if command == "update":
        forwarder.update(Pvd.from_dict(json.loads(argument)))
    elif command == "close":
        forwarder.close()
        forwarder.close()  # idempotent
    print("done", command, flush=True)
forwarder.close()
"""

#: A DNS server that never answers: it reads every UDP query and holds every TCP connection.
SILENT_SERVER = r"""
import socket, sys, threading
address = sys.argv[1]
udp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
udp.bind((address, 53))
tcp = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
tcp.bind((address, 53))
tcp.listen(16)
held = []
def accept():
    while True:
        held.append(tcp.accept()[0])
threading.Thread(target=accept, daemon=True).start()
print("ready", flush=True)
while True:
    udp.recvfrom(4096)
"""
#: Where the silent server listens: an address of ISP B's service prefix, on an interface of its
#: own in ISP B's namespace (not lo, where the ISP's dnsmasq, --bind-dynamic, takes new addresses).
SILENT = "2001:db8:b:1::5e"

#: Binds UDP and TCP on 127.0.0.1 and ::1 port argv[1]: the port is free again.
REBIND = r"""
import socket, sys
port = int(sys.argv[1])
for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(family, kind) as sock:
            if kind == socket.SOCK_STREAM:  # as the forwarder does: a connection in TIME_WAIT is no owner
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
print("rebound")
"""

#: A TCP client that connects to 127.0.0.1 port argv[1], sends half a length prefix and stalls
#: until its standard input closes.
STALLED_CLIENT = r"""
import socket, sys
sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
sock.sendall(b"\x00")
print("ready", flush=True)
sys.stdin.read()
"""


# ---- helpers --------------------------------------------------------------------------------

def is_dns(frame: bytes) -> bool:
    """A UDP or TCP frame to or from port 53."""
    ports = udp_ports(frame) or tcp_segment(frame)
    return ports is not None and 53 in ports[:2]


def only_to(server: str) -> dict[str, Callable[[bytes], bool]]:
    """Verdict rule for the PvD's own link: DNS with ``server`` only."""
    return {f"DNS with another server than {server}":
            lambda f: is_dns(f) and server not in (ip_source(f), ip_destination(f))}


NO_DNS: dict[str, Callable[[bytes], bool]] = {"a DNS frame": is_dns}


def dns_frames(cap: Any, destination: str, tcp: bool = False) -> list[bytes]:
    """Frames of the capture to ``destination`` port 53 (UDP, or TCP with ``tcp``)."""
    found = []
    for frame in cap.frames:
        ports = tcp_segment(frame) if tcp else udp_ports(frame)
        if ports is not None and ports[1] == 53 and ip_destination(frame) == destination:
            found.append(frame)
    return found


@dataclass
class Dig:
    """What dig printed: the status of the answer (None: no answer) and its records."""

    done: subprocess.CompletedProcess
    status: str | None = None
    records: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return f"rc={self.done.returncode}\n{self.done.stdout}\n{self.done.stderr}"


def dig(lab: Any, server: str, port: int, name: str, rdtype: str = "AAAA", *options: str) -> Dig:
    """``dig @server -p port name rdtype`` in the lab's host namespace, one try."""
    done = lab.exec(["dig", "+tries=1", "+time=10", f"@{server}", "-p", str(port), name, rdtype, *options],
                    timeout=60)
    return parse_dig(done, rdtype)


def parse_dig(done: subprocess.CompletedProcess, rdtype: str) -> Dig:
    status = re.search(r"status: (\w+)", done.stdout)
    records = [line.split()[-1] for line in done.stdout.splitlines()
               if line and not line.startswith(";") and len(line.split()) >= 5 and line.split()[3] == rdtype]
    return Dig(done, status[1] if status else None, records)


class Forwarder:
    """FORWARDER running in the lab's host namespace; its log is a file of the test."""

    def __init__(self, lab: Any, pvd: dict[str, Any], log: Path) -> None:
        self.log = log
        self._log_file = log.open("w")
        self.proc = lab.popen([sys.executable, "-c", FORWARDER, json.dumps(pvd)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=self._log_file, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        assert len(line) == 2 and line[0] == "ready", (line, self.logged())
        self.port = int(line[1])

    def logged(self) -> str:
        self._log_file.flush()
        return self.log.read_text()

    def command(self, line: str) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().strip()
        assert answer == f"done {line.split()[0]}", (answer, self.logged())

    def stop(self) -> None:
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            stop(self.proc)
        self._log_file.close()


@contextlib.contextmanager
def forwarding(lab: Any, pvd: dict[str, Any], tmp_path: Path) -> Iterator[Forwarder]:
    """A forwarder for ``pvd`` for the block, stopped afterwards, also when the block fails."""
    forwarder = Forwarder(lab, pvd, tmp_path / f"forwarder-{pvd['pvd_id'].replace(':', '-')}.log")
    try:
        yield forwarder
    finally:
        forwarder.stop()


def with_servers(pvd: dict[str, Any], servers: list[str]) -> dict[str, Any]:
    return {**pvd, "dns_servers": list(servers)}


# ---- fixtures -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pvds(lab3: Any) -> dict[str, dict[str, Any]]:
    """The host's PvDs of lab 3 by ISP, from the one-shot discovery (RDNSS: each ISP's IPv6 DNS)."""
    lab3.refresh()
    done = lab3.exec([sys.executable, "-m", "pvdrun.cli", "list", "--json", "--no-daemon"], timeout=60)
    assert done.returncode == 0, done.stderr
    found = {p["pvd_id"]: p for p in json.loads(done.stdout)["pvds"]}
    by_isp = {}
    for isp in ("ispa", "ispb"):
        pvd = found.get(f"implicit:{isp}")
        assert pvd is not None, sorted(found)
        assert pvd["dns_servers"] == [lab3.isp(isp)["dns_v6"]], pvd
        by_isp[isp] = pvd
    return by_isp


@pytest.fixture(scope="module")
def silent(lab3: Any) -> Iterator[str]:
    """SILENT_SERVER on SILENT in ISP B's namespace for the module; removed afterwards."""
    proc: subprocess.Popen | None = None
    try:
        lab3.exec(["ip", "link", "add", "fwdsil0", "type", "veth", "peer", "name", "fwdsil1"], ns="ispb", check=True)
        for end in ("fwdsil0", "fwdsil1"):
            lab3.exec(["ip", "link", "set", end, "up"], ns="ispb", check=True)
        lab3.exec(["ip", "addr", "add", f"{SILENT}/128", "dev", "fwdsil0", "nodad"], ns="ispb", check=True)
        proc = lab3.popen([sys.executable, "-c", SILENT_SERVER, SILENT], ns="ispb", stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == "ready", (line, proc.stderr.read() if proc.poll() is not None else "")
        yield SILENT
    finally:
        if proc is not None:
            stop(proc)
        lab3.exec(["ip", "link", "del", "fwdsil0"], ns="ispb")


# ---- tests ----------------------------------------------------------------------------------

@pytest.mark.parametrize("isp", ["ispa", "ispb"])
def test_dig_gets_the_pvds_answer_over_both_families_and_protocols(lab3: Any, pvds: dict[str, dict[str, Any]],
                                                                  tmp_path: Path, isp: str) -> None:
    info = lab3.isp(isp)
    server = info["dns_v6"]
    with forwarding(lab3, pvds[isp], tmp_path) as forwarder, main_table_prefers(lab3, OTHER[isp], [server]):
        with lab3.capture(isp) as own, lab3.capture(OTHER[isp]) as other:
            asked = {(loopback, proto): dig(lab3, loopback, forwarder.port, "svc.example", "AAAA",
                                            *(["+tcp"] if proto == "tcp" else []))
                     for loopback in ("127.0.0.1", "::1") for proto in ("udp", "tcp")}
            mail = dig(lab3, "127.0.0.1", forwarder.port, "mail.ispb.example", "A")
        # control: dig unscoped, under the same routes, leaves by the other link (answered or not)
        with lab3.capture(OTHER[isp]) as control_cap:
            control = dig(lab3, server, 53, "svc.example", "AAAA")
        log = forwarder.logged()
    assert_no_leak(other, log, **leak_rules(lab3, isp))
    assert_no_leak(own, log, matching=only_to(server))
    for (loopback, proto), answer in asked.items():
        assert answer.status == "NOERROR" and answer.records == [info["service_v6"]], (loopback, proto, str(answer), log)
    if isp == "ispb":
        assert mail.status == "NOERROR" and mail.records == ["203.0.113.25"], (str(mail), log)
    else:
        assert mail.status == "NXDOMAIN", (str(mail), log)  # ISP A knows no mail.ispb.example
    assert dns_frames(own, server), own.show()
    assert dns_frames(own, server, tcp=True), own.show()
    # the verdict finds the forwarder's traffic on a link: it could fail on the other one
    assert_caught(own, **leak_rules(lab3, OTHER[isp]))
    assert_caught(control_cap, str(control), **leak_rules(lab3, isp))


def test_server_that_never_answers_gives_servfail_and_nobody_else_is_asked(
        lab3: Any, pvds: dict[str, dict[str, Any]], silent: str, tmp_path: Path) -> None:
    pvd = with_servers(pvds["ispb"], [silent])
    with forwarding(lab3, pvd, tmp_path) as forwarder:
        with lab3.capture("ispb") as own, lab3.capture("ispa") as other:
            udp = dig(lab3, "127.0.0.1", forwarder.port, "svc.example", "AAAA")
            tcp = dig(lab3, "::1", forwarder.port, "svc.example", "AAAA", "+tcp")
        log = forwarder.logged()
    assert udp.status == "SERVFAIL" and not udp.records, (str(udp), log)
    assert tcp.status == "SERVFAIL" and not tcp.records, (str(tcp), log)
    assert_no_leak(other, log, **leak_rules(lab3, "ispb"))
    assert_no_leak(own, log, matching=only_to(silent))
    assert dns_frames(own, silent), own.show()  # it was asked, over UDP and over TCP
    assert dns_frames(own, silent, tcp=True), own.show()


def test_next_server_answers_when_the_first_never_does(lab3: Any, pvds: dict[str, dict[str, Any]], silent: str,
                                                       tmp_path: Path) -> None:
    real = lab3.isp("ispb")["dns_v6"]
    pvd = with_servers(pvds["ispb"], [silent, real])
    with forwarding(lab3, pvd, tmp_path) as forwarder:
        with lab3.capture("ispb") as own, lab3.capture("ispa") as other:
            answer = dig(lab3, "127.0.0.1", forwarder.port, "svc.example", "AAAA")
        log = forwarder.logged()
    assert_no_leak(other, log, **leak_rules(lab3, "ispb"))
    assert answer.status == "NOERROR" and answer.records == [lab3.isp("ispb")["service_v6"]], (str(answer), log)
    assert dns_frames(own, silent) and dns_frames(own, real), own.show()


@pytest.mark.parametrize("servers", ["none", "unusable"])
def test_pvd_without_a_usable_server_gets_servfail_and_asks_nobody(lab3: Any, pvds: dict[str, dict[str, Any]],
                                                                    tmp_path: Path, servers: str) -> None:
    """No server at all, or only one the PvD has no address of the family for (an IPv4 server
    for a PvD stripped of its IPv4 address): SERVFAIL without a query on any link."""
    pvd = with_servers(pvds["ispb"], [])
    if servers == "unusable":
        pvd = {**with_servers(pvd, [lab3.isp("ispb")["dns_v4"]]),
               "addresses": [a for a in pvd["addresses"] if ":" in a]}
    with forwarding(lab3, pvd, tmp_path) as forwarder:
        with lab3.capture("ispb") as own, lab3.capture("ispa") as other:
            answers = [dig(lab3, loopback, forwarder.port, "svc.example", "AAAA", *proto)
                       for loopback in ("127.0.0.1", "::1") for proto in ([], ["+tcp"])]
        log = forwarder.logged()
    for answer in answers:
        assert answer.status == "SERVFAIL" and not answer.records, (str(answer), log)
    assert_no_leak(own, log, matching=NO_DNS)
    assert_no_leak(other, log, matching=NO_DNS)


def test_parallel_queries_are_all_answered(lab3: Any, pvds: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    """20 digs at once (A and AAAA, both loopbacks, some over TCP), each its own answer."""
    info = lab3.isp("ispa")
    expected = {"AAAA": [info["service_v6"]], "A": [info["service_v4"]]}
    with forwarding(lab3, pvds["ispa"], tmp_path) as forwarder:
        runs = []
        try:
            for i in range(20):
                rdtype = ("A", "AAAA")[i % 2]
                argv = ["dig", "+tries=1", "+time=10", f"@{('127.0.0.1', '::1')[i // 2 % 2]}", "-p",
                        str(forwarder.port), "svc.example", rdtype, *(["+tcp"] if i % 5 == 4 else [])]
                runs.append((rdtype, lab3.popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
            results = []
            for rdtype, proc in runs:
                out, err = proc.communicate(timeout=60)
                results.append((rdtype, parse_dig(subprocess.CompletedProcess(proc.args, proc.returncode, out, err),
                                                  rdtype)))
        finally:
            for _, proc in runs:
                stop(proc)
        log = forwarder.logged()
    assert len(results) == 20
    for rdtype, answer in results:
        assert answer.status == "NOERROR" and answer.records == expected[rdtype], (rdtype, str(answer), log)


def test_update_switches_the_pvd(lab3: Any, pvds: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    with forwarding(lab3, pvds["ispa"], tmp_path) as forwarder, \
            main_table_prefers(lab3, "ispa", [lab3.isp("ispb")["dns_v6"]]):
        before = dig(lab3, "127.0.0.1", forwarder.port, "svc.example", "AAAA")
        forwarder.command("update " + json.dumps(pvds["ispb"]))
        with lab3.capture("ispb") as own, lab3.capture("ispa") as other:
            after = dig(lab3, "::1", forwarder.port, "svc.example", "AAAA")
            after_tcp = dig(lab3, "127.0.0.1", forwarder.port, "mail.ispb.example", "A", "+tcp")
        log = forwarder.logged()
    assert_no_leak(other, log, **leak_rules(lab3, "ispb"))
    assert_no_leak(own, log, matching=only_to(lab3.isp("ispb")["dns_v6"]))
    assert before.status == "NOERROR" and before.records == [lab3.isp("ispa")["service_v6"]], (str(before), log)
    assert after.status == "NOERROR" and after.records == [lab3.isp("ispb")["service_v6"]], (str(after), log)
    assert after_tcp.status == "NOERROR" and after_tcp.records == ["203.0.113.25"], (str(after_tcp), log)
    assert dns_frames(own, lab3.isp("ispb")["dns_v6"]), own.show()


def test_close_frees_the_port(lab3: Any, pvds: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    with forwarding(lab3, pvds["ispa"], tmp_path) as forwarder:
        served = dig(lab3, "127.0.0.1", forwarder.port, "svc.example", "AAAA", "+tcp")
        forwarder.command("close")
        gone = dig(lab3, "127.0.0.1", forwarder.port, "svc.example", "AAAA")
        rebound = lab3.exec([sys.executable, "-c", REBIND, str(forwarder.port)])
        log = forwarder.logged()
    assert served.status == "NOERROR", (str(served), log)
    assert gone.status is None and gone.done.returncode != 0, (str(gone), log)  # nobody listens
    assert rebound.returncode == 0 and rebound.stdout.strip() == "rebound", (rebound.stderr, log)


def test_stalled_tcp_client_blocks_nobody(lab3: Any, pvds: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    with forwarding(lab3, pvds["ispa"], tmp_path) as forwarder:
        client = lab3.popen([sys.executable, "-c", STALLED_CLIENT, str(forwarder.port)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert client.stdout is not None
            line = client.stdout.readline()
            assert line.strip() == "ready", (line, client.stderr.read() if client.poll() is not None else "")
            udp = dig(lab3, "::1", forwarder.port, "svc.example", "AAAA")
            tcp = dig(lab3, "127.0.0.1", forwarder.port, "svc.example", "AAAA", "+tcp")
        finally:
            stop(client)
        log = forwarder.logged()
    assert udp.status == "NOERROR" and udp.records == [lab3.isp("ispa")["service_v6"]], (str(udp), log)
    assert tcp.status == "NOERROR" and tcp.records == [lab3.isp("ispa")["service_v6"]], (str(tcp), log)


@pytest.mark.parametrize("query", ["plain", "edns"])
def test_servfail_answers_the_query_it_is_made_from(query: str) -> None:
    """What a client gets when no server answered: its own ID, QR, RCODE 2 and its question."""
    import dns.flags
    import dns.message
    import dns.rcode

    asked = dns.message.make_query("svc.example", "AAAA", use_edns=query == "edns")
    answer = dns.message.from_wire(servfail(asked.to_wire()))
    assert answer.id == asked.id
    assert answer.flags & dns.flags.QR and answer.flags & dns.flags.RD
    assert answer.rcode() == dns.rcode.SERVFAIL
    assert answer.question == asked.question
    assert asked.is_response(answer)
