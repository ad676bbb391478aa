"""Probes a lab uses (and tests may use) from inside the host namespace.

Each probe can bind its socket to a device (SO_BINDTODEVICE) and/or a
source address, which is how a scoped client reaches one ISP when both
ISPs use the same IPv4 addresses (scenario 3).

``python -m pvdrun.lab.probe http ADDR [--device IF] [--source SRC]``
``python -m pvdrun.lab.probe udp ADDR [--device IF] [--source SRC]``
``python -m pvdrun.lab.probe dns SERVER NAME [--type A] [--device IF] [--source SRC]``
``python -m pvdrun.lab.probe wait --targets JSON --timeout SECONDS``
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import socket
import sys
import time
from typing import Any

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype


def _socket(addr: str, kind: int, device: str | None, source: str | None) -> socket.socket:
    family = socket.AF_INET6 if ipaddress.ip_address(addr).version == 6 else socket.AF_INET
    sock = socket.socket(family, kind)
    if device:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, device.encode())
    if source:
        sock.bind((source, 0))
    return sock


def http_get(addr: str, device: str | None = None, source: str | None = None,
             port: int = 80, timeout: float = 2.0) -> str:
    """``GET /`` over HTTP/1.0; returns the body."""
    with _socket(addr, socket.SOCK_STREAM, device, source) as sock:
        sock.settimeout(timeout)
        sock.connect((addr, port))
        sock.sendall(b"GET / HTTP/1.0\r\nHost: lab\r\n\r\n")
        chunks = []
        while chunk := sock.recv(4096):
            chunks.append(chunk)
    return b"".join(chunks).split(b"\r\n\r\n", 1)[-1].decode(errors="replace")


def udp_echo(addr: str, payload: str = "ping", device: str | None = None,
             source: str | None = None, port: int = 7, timeout: float = 2.0) -> str:
    """One UDP echo exchange; returns the reply text."""
    with _socket(addr, socket.SOCK_DGRAM, device, source) as sock:
        sock.settimeout(timeout)
        sock.sendto(payload.encode(), (addr, port))
        return sock.recv(65535).decode(errors="replace")


def dns_query(server: str, name: str, rdtype: str = "A", device: str | None = None,
              source: str | None = None, timeout: float = 2.0) -> dict[str, Any]:
    """One DNS query over UDP; returns ``{"rcode": "NOERROR", "answers": [...]}``."""
    query = dns.message.make_query(name, rdtype)
    with _socket(server, socket.SOCK_DGRAM, device, source) as sock:
        reply = dns.query.udp(query, server, timeout=timeout, sock=sock)
    answers = [item.to_text() for rrset in reply.answer
               if rrset.rdtype == dns.rdatatype.from_text(rdtype) for item in rrset]
    return {"rcode": dns.rcode.to_text(reply.rcode()), "answers": answers}


def tcp_connect(addr: str, port: int, device: str | None = None, timeout: float = 2.0) -> None:
    """Open and close a TCP connection (raises OSError when nothing accepts it)."""
    with _socket(addr, socket.SOCK_STREAM, device, None) as sock:
        sock.settimeout(timeout)
        sock.connect((addr, port))


def run_target(target: dict[str, Any]) -> bool:
    """Check one readiness target: ``{"kind": http|dns|tcp, "addr", "expect", "device"}``
    (``tcp``: ``port`` accepts a connection)."""
    try:
        if target["kind"] == "tcp":
            tcp_connect(target["addr"], int(target["port"]), target.get("device"), timeout=1.0)
            return True
        if target["kind"] == "http":
            return target["expect"] in http_get(target["addr"], target.get("device"),
                                                timeout=1.0)
        result = dns_query(target["addr"], target["name"], target.get("type", "A"),
                           target.get("device"), timeout=1.0)
        return target["expect"] in result["answers"]
    except OSError:
        return False
    except dns.exception.DNSException:
        return False


def wait_all(targets: list[dict[str, Any]], timeout: float) -> list[dict[str, Any]]:
    """Retry every target until all succeed or ``timeout``; return those still failing."""
    deadline = time.monotonic() + timeout
    pending = list(targets)
    while pending:
        pending = [t for t in pending if not run_target(t)]
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    return pending


def main(argv: list[str] | None = None) -> int:
    """Command line; exit 0 on success, 1 on failure (message on stderr)."""
    parser = argparse.ArgumentParser(prog="pvdrun.lab.probe")
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name in ("http", "udp", "dns"):
        cmd = sub.add_parser(name)
        cmd.add_argument("addr")
        if name == "dns":
            cmd.add_argument("name")
            cmd.add_argument("--type", default="A")
        cmd.add_argument("--device")
        cmd.add_argument("--source")
        cmd.add_argument("--timeout", type=float, default=2.0)
    wait = sub.add_parser("wait")
    wait.add_argument("--targets", required=True, help="JSON list of targets")
    wait.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args(argv)
    try:
        if args.cmd == "http":
            print(http_get(args.addr, args.device, args.source, timeout=args.timeout), end="")
        elif args.cmd == "udp":
            print(udp_echo(args.addr, "ping", args.device, args.source, timeout=args.timeout))
        elif args.cmd == "dns":
            print(json.dumps(dns_query(args.addr, args.name, args.type, args.device,
                                       args.source, args.timeout)))
        else:
            failing = wait_all(json.loads(args.targets), args.timeout)
            if failing:
                print(json.dumps(failing), file=sys.stderr)
                return 1
    except (OSError, dns.exception.DNSException) as exc:
        print(f"probe {args.cmd} failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
