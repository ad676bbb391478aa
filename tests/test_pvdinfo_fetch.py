"""pvdrun.pvdinfo.fetch against real parts: two namespaces, dnsmasq, an HTTPS server.

Client namespace C: link c0 (the PvD's, addresses ::2 and ::3) and link c1 (another network,
the main table's preferred default route).  Server namespace S: the DNS server (dnsmasq on
s0's side of the PvD link) and the HTTPS server on 2001:db8:ff::1 (on its loopback, reachable
over both links), plus a listener on 2001:db8:ff::2 that accepts and never answers.  The
certificate comes from a CA made with openssl in the test's temporary directory.  fetch() runs
in C (a helper process); everything is removed afterwards, also when a test fails.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
from fixtures.capture import LinkCapture
from fixtures.mininet import _counter
from fixtures.netns import Namespaces, sh, wait_for
from fixtures.prereq import require

pytestmark = pytest.mark.root

DOMAIN = "test.example"
PVD = f"pvd.{DOMAIN}"
SERVICE = "2001:db8:ff::1"
SILENT = "2001:db8:ff::2"
DNS = "2001:db8:1::1"
SOURCE = "2001:db8:1::3"
SOURCE4, DNS4, SERVICE4 = "10.1.0.3", "10.1.0.1", "10.255.0.1"
OTHER_SOURCE = "2001:db8:1::2"
ANNOUNCED = ["2001:db8:1::/64"]
NAMES = {PVD: SERVICE, f"other.{DOMAIN}": SERVICE, f"big.{DOMAIN}": SERVICE, f"wrongid.{DOMAIN}": SERVICE,
         f"chunked.{DOMAIN}": SERVICE, f"plain.{DOMAIN}": SERVICE, f"slow.{DOMAIN}": SILENT,
         f"v4.{DOMAIN}": SERVICE4, f"drip.{DOMAIN}": SERVICE}
CERT_NAMES = [PVD, f"big.{DOMAIN}", f"wrongid.{DOMAIN}", f"chunked.{DOMAIN}", f"plain.{DOMAIN}", f"v4.{DOMAIN}",
              f"drip.{DOMAIN}"]

SERVER = r'''
import http.server, json, socket, ssl, sys, threading, time
from datetime import datetime, timedelta, timezone
cert, key, silent, *addresses = sys.argv[1:]

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args):
        pass
    def do_GET(self):
        host = self.headers.get("Host", "").rsplit(":", 1)[0] if "]" not in self.headers.get("Host", "") else ""
        if self.path != "/.well-known/pvd":
            self.send_error(404)
            return
        expires = (datetime.now(timezone.utc) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        obj = {"identifier": host, "expires": expires, "prefixes": ["2001:db8:1::/48"], "name": "Lab PvD",
               "noInternet": True, "x-lab": {"kept": [1, 2]}}
        if host.startswith("wrongid."):
            obj["identifier"] = "someone.else.example"
        if host.startswith("big."):
            obj["padding"] = "x" * 70000
        body = json.dumps(obj).encode()
        if host.startswith("drip."):  # header bytes one at a time, for longer than any timeout
            self.wfile.write(b"HTTP/1.1 200 OK\r\n")
            for byte in b"X-Slow: " + b"z" * 60:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.25)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json" if host.startswith("plain.") else "application/pvd+json")
        if host.startswith(("big.", "chunked.")):
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Connection", "close")
            self.end_headers()
            for i in range(0, len(body), 1000):
                part = body[i:i + 1000]
                self.wfile.write(b"%x\r\n" % len(part) + part + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
        self.close_connection = True

class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    def finish_request(self, request, client_address):
        request.settimeout(10)
        try:
            tls = context.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            return
        self.RequestHandlerClass(tls, client_address, self)

context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
servers = []
for address in addresses:
    Server.address_family = socket.AF_INET6 if ":" in address else socket.AF_INET
    servers.append(Server((address, 443), Handler))
held = []
def hold():
    listener = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    listener.bind((silent, 443))
    listener.listen(16)
    ready.set()
    while True:
        conn, _ = listener.accept()
        held.append(conn)  # accepted, never answered
ready = threading.Event()
threading.Thread(target=hold, daemon=True).start()
ready.wait(10)
for server in servers[1:]:
    threading.Thread(target=server.serve_forever, daemon=True).start()
print("ready", flush=True)
servers[0].serve_forever()
'''

CLIENT = r'''
import json, sys, time
from pvdrun.pvdinfo import FetchError, InvalidInfo
from pvdrun.pvdinfo.fetch import fetch
args = json.loads(sys.argv[1])
started = time.monotonic()
try:
    info = fetch(args.pop("pvd_id"), args.pop("sequence"), **args)
    result = {"ok": info.to_dict(), "accessors": {"name": info.name, "no_internet": info.no_internet}}
except (FetchError, InvalidInfo) as exc:
    result = {"error": type(exc).__name__, "message": str(exc)}
result["elapsed"] = time.monotonic() - started
print(json.dumps(result))
'''


def make_ca(directory: str) -> dict[str, str]:
    """A CA and a server certificate for CERT_NAMES, made with the openssl command."""
    def openssl(*args: str) -> None:
        sh("openssl", *args)
    paths = {name: os.path.join(directory, name) for name in
             ("ca.key", "ca.pem", "srv.key", "srv.csr", "srv.pem", "ext.cnf", "ca.srl")}
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", paths["ca.key"], "-out", paths["ca.pem"], "-days", "2",
            "-subj", "/CN=pvdinfo test CA")
    openssl("req", *ec, "-keyout", paths["srv.key"], "-out", paths["srv.csr"], "-subj", f"/CN={PVD}")
    with open(paths["ext.cnf"], "w", encoding="utf-8") as ext:
        ext.write("subjectAltName=" + ",".join(f"DNS:{n}" for n in CERT_NAMES) + "\n"
                  "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                  "extendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
    openssl("x509", "-req", "-in", paths["srv.csr"], "-CA", paths["ca.pem"], "-CAkey", paths["ca.key"],
            "-CAserial", paths["ca.srl"], "-CAcreateserial", "-out", paths["srv.pem"], "-days", "2",
            "-extfile", paths["ext.cnf"])
    return paths


class Lab:
    def __init__(self, spaces: Namespaces, client: str, server: str, tmp: str, ca: str) -> None:
        self.spaces, self.client, self.server, self.tmp, self.ca = spaces, client, server, tmp, ca

    def fetch(self, pvd_id: str = PVD, timeout: float = 5.0, **overrides: Any) -> dict[str, Any]:
        args: dict[str, Any] = {"pvd_id": pvd_id, "sequence": 4, "interface": "c0", "source_addresses": [SOURCE],
                                "dns_servers": [DNS], "announced_prefixes": ANNOUNCED, "ca_file": self.ca,
                                "timeout": timeout}
        args.update(overrides)
        result = self.spaces.run(self.client, [sys.executable, "-c", CLIENT, json.dumps(args)],
                                 timeout=timeout + 30)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)


@pytest.fixture
def lab() -> Iterator[Lab]:
    for program in ("dnsmasq", "openssl", "tcpdump"):
        require(shutil.which(program) is not None, program)
    tag = f"pi{os.getpid()}x{next(_counter)}"
    with Namespaces() as spaces:
        client, server = spaces.add(f"{tag}c"), spaces.add(f"{tag}s")
        tmp = spaces.mkdtemp(prefix=f"{tag}-")
        paths = make_ca(tmp)
        for ns in (client, server):
            sh("sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", ns=ns, check=False)
            sh("sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0", ns=ns, check=False)
            sh("sysctl", "-qw", "net.ipv6.conf.all.accept_ra=0", ns=ns, check=False)
            sh("sysctl", "-qw", "net.ipv6.conf.default.accept_ra=0", ns=ns, check=False)
        spaces.veth(client, "c0", server, "s0", addresses=[f"{OTHER_SOURCE}/64", f"{SOURCE}/64", f"{SOURCE4}/24"],
                    peer_addresses=[f"{DNS}/64", f"{DNS4}/24"])
        spaces.veth(client, "c1", server, "s1", addresses=["2001:db8:2::2/64", "10.2.0.2/24"],
                    peer_addresses=["2001:db8:2::1/64", "10.2.0.1/24"])
        spaces.addresses(server, "lo", f"{SERVICE}/128", f"{SILENT}/128", f"{SERVICE4}/32")
        # the main table prefers the other link: only a fetch tied to c0 takes the PvD's way
        sh("ip", "-6", "route", "add", "default", "via", "2001:db8:2::1", "dev", "c1", "metric", "100", ns=client)
        sh("ip", "-6", "route", "add", "default", "via", DNS, "dev", "c0", "metric", "200", ns=client)
        sh("ip", "-4", "route", "add", "default", "via", "10.2.0.1", "dev", "c1", "metric", "100", ns=client)
        sh("ip", "-4", "route", "add", "default", "via", DNS4, "dev", "c0", "metric", "200", ns=client)
        wait_for(lambda: "scope link" in sh("ip", "-6", "addr", "show", "dev", "s0", ns=server).stdout,
                 what="a link-local address on s0")
        spaces.popen(server, ["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
                              "--bind-dynamic", "--interface=s0", "--except-interface=lo", "--port=53",
                              f"--pid-file={tmp}/dns.pid", f"--local=/{DOMAIN}/",
                              *[f"--host-record={name},{address}" for name, address in NAMES.items()]],
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        script = os.path.join(tmp, "server.py")
        with open(script, "w", encoding="utf-8") as handle:
            handle.write(textwrap.dedent(SERVER))
        proc = spaces.popen(server, [sys.executable, script, paths["srv.pem"], paths["srv.key"], SILENT, SERVICE, SERVICE4],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == "ready", proc.stderr.read() if proc.poll() is not None else line
        wait_for(lambda: ":53 " in sh("ss", "-lnu", ns=server).stdout, what="dnsmasq listening")
        yield Lab(spaces, client, server, tmp, paths["ca.pem"])


def test_fetch_returns_the_object_over_the_pvd_link_only(lab: Lab) -> None:
    # control: unbound traffic to the server leaves by c1, so a quiet c1 below means something
    with LinkCapture(lab.client, "c1", "tcp port 443") as control:
        lab.spaces.run(lab.client, [sys.executable, "-c",
                                    f"import socket; socket.create_connection(('{SERVICE}', 443), 5).close()"],
                       check=True)
    assert control.packets_to(SERVICE), control.lines
    with LinkCapture(lab.client, "c1") as other, LinkCapture(lab.client, "c0") as pvd_link:
        result = lab.fetch()
    assert "ok" in result, result
    info = result["ok"]
    assert info["pvd_id"] == PVD and info["sequence"] == 4
    assert info["data"]["identifier"] == PVD and info["data"]["x-lab"] == {"kept": [1, 2]}
    assert result["accessors"] == {"name": "Lab PvD", "no_internet": True}
    # the other link saw nothing of the fetch: no DNS, no HTTPS, nothing to the server
    assert not [l for l in other.lines if ".443" in l or ".53:" in l or ".53 " in l or SERVICE in l or DNS in l], \
        other.lines
    # the PvD's link carried it, from the given source address only
    https = [l for l in pvd_link.lines if ".443" in l]
    dns = [l for l in pvd_link.lines if ".53:" in l or ".53 " in l]
    assert pvd_link.packets_from(SOURCE) and https and dns, pvd_link.lines
    assert all(f"{SOURCE}." in l.split(">")[0] or f"{SOURCE}." in l.split(">")[1] for l in https + dns), https + dns
    assert not pvd_link.packets_from(OTHER_SOURCE), pvd_link.lines


def test_chunked_answer(lab: Lab) -> None:
    result = lab.fetch(f"chunked.{DOMAIN}")
    assert result.get("ok", {}).get("data", {}).get("identifier") == f"chunked.{DOMAIN}", result


def test_link_local_dns_server(lab: Lab) -> None:
    line = sh("ip", "-6", "-o", "addr", "show", "dev", "s0", "scope", "link", ns=lab.server).stdout
    link_local = line.split()[3].split("/")[0]
    result = lab.fetch(dns_servers=[f"{link_local}%c0"])
    assert "ok" in result, result


def test_tls_name_mismatch(lab: Lab) -> None:
    result = lab.fetch(f"other.{DOMAIN}")
    assert result["error"] == "FetchError" and "certificate" in result["message"], result


def test_ca_not_given_is_not_trusted(lab: Lab) -> None:
    result = lab.fetch(ca_file=None)
    assert result["error"] == "FetchError" and "certificate" in result["message"], result


def test_server_that_never_answers_times_out(lab: Lab) -> None:
    result = lab.fetch(f"slow.{DOMAIN}", timeout=2.0)
    assert result["error"] == "FetchError" and "timed out" in result["message"], result
    assert result["elapsed"] < 2.0 + 1.5, result


def test_slow_header_lines_time_out(lab: Lab) -> None:
    result = lab.fetch(f"drip.{DOMAIN}", timeout=2.0)
    assert result["error"] == "FetchError" and "timed out" in result["message"], result
    assert result["elapsed"] < 2.0 + 1.5, result


def test_oversize_body(lab: Lab) -> None:
    result = lab.fetch(f"big.{DOMAIN}")
    assert result["error"] == "FetchError" and "larger than 64 KiB" in result["message"], result


def test_wrong_identifier(lab: Lab) -> None:
    result = lab.fetch(f"wrongid.{DOMAIN}")
    assert result["error"] == "InvalidInfo" and "identifier" in result["message"], result


def test_wrong_content_type(lab: Lab) -> None:
    result = lab.fetch(f"plain.{DOMAIN}")
    assert result["error"] == "InvalidInfo" and "content type" in result["message"], result


def test_prefixes_not_covering_the_announced_ones(lab: Lab) -> None:
    result = lab.fetch(announced_prefixes=["2001:db8:9::/64"])
    assert result["error"] == "InvalidInfo" and "2001:db8:9::/64" in result["message"], result


def test_dns_only_from_the_given_servers(lab: Lab) -> None:
    result = lab.fetch(dns_servers=["2001:db8:2::1"], timeout=2.0)  # not a server, and on another link
    assert result["error"] == "FetchError", result


def test_ipv4_only_name_from_the_ipv4_source(lab: Lab) -> None:
    with LinkCapture(lab.client, "c1") as other, LinkCapture(lab.client, "c0", "tcp port 443") as pvd_link:
        result = lab.fetch(f"v4.{DOMAIN}", source_addresses=[SOURCE, SOURCE4])
    assert result.get("ok", {}).get("data", {}).get("identifier") == f"v4.{DOMAIN}", result
    assert pvd_link.packets_from(SOURCE4) and pvd_link.packets_to(SOURCE4), pvd_link.lines
    assert not [l for l in other.lines if ".443" in l or SERVICE4 in l], other.lines


def test_no_source_address_with_a_link_local_dns_server(lab: Lab) -> None:
    line = sh("ip", "-6", "-o", "addr", "show", "dev", "s0", "scope", "link", ns=lab.server).stdout
    link_local = line.split()[3].split("/")[0]
    with LinkCapture(lab.client, "c1") as other:
        result = lab.fetch(source_addresses=[], dns_servers=[f"{link_local}%c0"])
    assert "ok" in result, result
    assert not [l for l in other.lines if ".443" in l or SERVICE in l], other.lines


def test_mark_selects_the_pvd_routing_table(lab: Lab) -> None:
    """The PvD's route lives only in a table reached by its mark: the fetch gets there."""
    sh("ip", "-6", "route", "del", "default", "via", DNS, "dev", "c0", ns=lab.client)
    sh("ip", "-6", "route", "add", "default", "via", DNS, "dev", "c0", "table", "4321", ns=lab.client)
    sh("ip", "-6", "rule", "add", "fwmark", "0x4321", "lookup", "4321", "priority", "100", ns=lab.client)
    unmarked = lab.fetch(timeout=3.0)
    assert unmarked.get("error") == "FetchError" and "unreachable" in unmarked["message"], unmarked
    with LinkCapture(lab.client, "c1") as other:
        result = lab.fetch(mark=0x4321)
    assert "ok" in result, result
    assert not [l for l in other.lines if ".443" in l or SERVICE in l], other.lines
