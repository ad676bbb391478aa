"""An ISP's PvD Additional Information server (RFC 8801 section 4): HTTPS on port 443.

Run inside an ISP namespace::

    python -m pvdrun.lab.pvdserver --lab NAME --isp ispa --address 2001:db8:a:1::443 \\
        --cert ispa-pvd-info.pem --key ispa-pvd-info.key --body ispa-pvd-info.body \\
        --log ispa-pvd-info-requests.log

``GET /.well-known/pvd`` answers 200 with the bytes of ``--body`` as they are at that moment
(``lab pvd-info`` rewrites that file atomically), ``Content-Type: application/pvd+json``;
every other path 404.  Each request is appended to ``--log`` as one JSON line
``{"time", "client", "method", "path", "host", "status", "size"}`` (``time`` in RFC 3339,
UTC), written and flushed before the answer is sent, so a client that got its answer finds
its request in the log.
"""
from __future__ import annotations

import argparse
import datetime
import ipaddress
import json
import signal
import socket
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HTTPS_PORT = 443
WELL_KNOWN = "/.well-known/pvd"
CONTENT_TYPE = "application/pvd+json"
#: seconds a client may take for its TLS handshake and request
CLIENT_TIMEOUT = 10.0


class RequestLog:
    """Appends one JSON line per request (thread-safe)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = threading.Lock()

    def write(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, sort_keys=True) + "\n"
        with self.lock, open(self.path, "a", encoding="utf-8") as log:
            log.write(line)
            log.flush()


def make_handler(isp: str, body_path: str, context: ssl.SSLContext,
                 log: RequestLog) -> type[BaseHTTPRequestHandler]:
    """The request handler class: TLS handshake in the request's own thread, then GET/HEAD."""

    class PvdInfoHandler(BaseHTTPRequestHandler):
        server_version = f"pvdrun-lab-pvd-info-{isp}"
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            self.request.settimeout(CLIENT_TIMEOUT)
            self.request = context.wrap_socket(self.request, server_side=True)
            super().setup()

        def _answer(self, send_body: bool) -> None:
            path = self.path.split("?", 1)[0]
            if path == WELL_KNOWN:
                with open(body_path, "rb") as handle:
                    body = handle.read()
                status, content_type = 200, CONTENT_TYPE
            else:
                body, status, content_type = b"not found\n", 404, "text/plain"
            now = datetime.datetime.now(datetime.timezone.utc)
            log.write({"time": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                       "client": self.client_address[0], "method": self.command,
                       "path": self.path, "host": self.headers.get("Host"), "status": status,
                       "size": len(body)})
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if send_body:
                self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 (http.server naming)
            self._answer(True)

        def do_HEAD(self) -> None:  # noqa: N802
            self._answer(False)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            sys.stderr.write(f"pvd-info {self.client_address[0]} {format % args}\n")

    return PvdInfoHandler


def https_server(address: str, handler: type[BaseHTTPRequestHandler],
                 port: int = HTTPS_PORT) -> ThreadingHTTPServer:
    """A server bound to one address (v4 or v6); TLS is done by the handler."""
    family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET

    class Server(ThreadingHTTPServer):
        address_family = family
        daemon_threads = True

        def handle_error(self, request: Any, client_address: Any) -> None:
            exc = sys.exc_info()[1]
            sys.stderr.write(f"pvd-info {client_address[0]}: {type(exc).__name__}: {exc}\n")

    return Server((address, port), handler)


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM."""
    parser = argparse.ArgumentParser(prog="pvdrun.lab.pvdserver")
    parser.add_argument("--isp", required=True)
    parser.add_argument("--address", action="append", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--body", required=True, help="file whose bytes are served")
    parser.add_argument("--log", required=True, help="request log (JSON lines)")
    parser.add_argument("--port", type=int, default=HTTPS_PORT)
    parser.add_argument("--lab", help="lab name (marks the process as the lab's)")
    args = parser.parse_args(argv)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    handler = make_handler(args.isp, args.body, context, RequestLog(args.log))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    for address in args.address:
        server = https_server(address, handler, args.port)
        threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stderr.write(f"pvd-info {args.isp} ready on {' '.join(args.address)} port {args.port}\n")
    sys.stderr.flush()
    stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
