"""An ISP's test service: HTTP on port 80 and UDP echo on port 7.

Run inside an ISP namespace: ``python -m pvdrun.lab.service --isp ispa
--address 198.51.100.80 --address 2001:db8:a:1::80``.  Every answer names
the ISP and the client address the service saw, so a test can tell which
ISP a packet really reached and with which source address:

* HTTP: ``GET /`` answers ``<isp> <client-address>\\n``.
* UDP echo: the reply is ``<isp> <client-address> <payload>``.
"""
from __future__ import annotations

import argparse
import ipaddress
import signal
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HTTP_PORT = 80
ECHO_PORT = 7


def make_handler(isp: str) -> type[BaseHTTPRequestHandler]:
    """A request handler class that answers with the ISP name and the client address."""

    class IspHandler(BaseHTTPRequestHandler):
        server_version = f"pvdrun-lab-{isp}"

        def do_GET(self) -> None:  # noqa: N802 (http.server naming)
            body = f"{isp} {self.client_address[0]}\n".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            sys.stderr.write(f"http {self.client_address[0]} {format % args}\n")

    return IspHandler


def http_server(isp: str, address: str, port: int = HTTP_PORT) -> ThreadingHTTPServer:
    """An HTTP server bound to one address (v4 or v6)."""
    family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET

    class Server(ThreadingHTTPServer):
        address_family = family
        daemon_threads = True

    return Server((address, port), make_handler(isp))


def udp_echo_socket(address: str, port: int = ECHO_PORT) -> socket.socket:
    """A UDP socket bound to one address (v4 or v6) for the echo service."""
    family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((address, port))
    return sock


def udp_echo_loop(isp: str, sock: socket.socket) -> None:
    """Answer every datagram with ``<isp> <client> <payload>`` (runs forever)."""
    while True:
        data, peer = sock.recvfrom(65535)
        try:
            sock.sendto(f"{isp} {peer[0]} ".encode() + data, peer)
        except OSError:
            pass  # dropped on its way out (lab fault --loss, --down): the client sees a loss


def main(argv: list[str] | None = None) -> int:
    """Serve HTTP and UDP echo on every ``--address`` until SIGTERM."""
    parser = argparse.ArgumentParser(prog="pvdrun.lab.service")
    parser.add_argument("--isp", required=True, help="name put in every answer")
    parser.add_argument("--address", action="append", required=True)
    parser.add_argument("--lab", help="lab name (marks the process as the lab's)")
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    for address in args.address:
        server = http_server(args.isp, address)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        echo = udp_echo_socket(address)
        threading.Thread(target=udp_echo_loop, args=(args.isp, echo), daemon=True).start()
    sys.stderr.write(f"service {args.isp} ready on {' '.join(args.address)}\n")
    sys.stderr.flush()
    stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
