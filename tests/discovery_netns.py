"""Small namespaces for discovery/pvdd tests: a host netns, router netns, veths, dnsmasq RAs.

Independent of the lab (pvdrun.lab) so these tests run on their own; built with the
primitives of fixtures/netns.py.  Every name holds the pid and a counter; ``close()``
removes everything (the ``net`` fixture calls it in a finalizer).
"""
from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from typing import Any, Iterator

import pytest

from fixtures.netns import Namespaces, sh, wait_for  # noqa: F401 (sh: imported from here)

_counter = itertools.count()

#: Shared start of the RA senders: a raw ICMPv6 socket bound to the link-local address of
#: ``ifname`` (which may still be tentative), hop limit 255 for multicast.
_RAW_SOCKET = r"""
import socket, sys, time
def link_local(ifname):
    for line in open("/proc/net/if_inet6"):
        addr, _idx, _plen, scope, _flags, name = line.split()
        if name == ifname and scope == "20":
            return ":".join(addr[i:i + 4] for i in range(0, 32, 4))
    raise SystemExit(f"no link-local address on {ifname}")
def raw_socket(ifname):
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    for attempt in range(50):  # the link-local address may still be tentative
        try:
            s.bind((link_local(ifname), 0, 0, socket.if_nametoindex(ifname)))
            break
        except OSError:
            time.sleep(0.1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
    return s
"""

SEND_RA = _RAW_SOCKET + r"""
ifname, dst = sys.argv[1], sys.argv[2]
data = bytes.fromhex(sys.stdin.read().strip())
s = raw_socket(ifname)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)
s.sendto(data, (dst, 0, 0, socket.if_nametoindex(ifname)))
"""

REPEAT_RA = _RAW_SOCKET + r"""
ifname, interval = sys.argv[1], float(sys.argv[2])
data = bytes.fromhex(sys.argv[3])
s = raw_socket(ifname)
while True:
    s.sendto(data, ("ff02::1", 0, 0, socket.if_nametoindex(ifname)))
    time.sleep(interval)
"""


class MiniNet:
    """A host namespace with links to router namespaces (one veth pair each), built with
    fixtures/netns.py; ``close()`` removes all of it."""

    def __init__(self) -> None:
        self.tag = f"pd{os.getpid()}x{next(_counter)}"
        self.host = f"{self.tag}h"
        self.spaces = Namespaces()
        self.namespaces = self.spaces.names
        self.procs = self.spaces.procs
        self.tmp = self.spaces.mkdtemp(prefix=f"{self.tag}-")
        try:
            self.spaces.add(self.host)
        except BaseException:
            self.spaces.close()
            raise
        sh("sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", ns=self.host, check=False)
        sh("sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0", ns=self.host, check=False)

    def add_router(self, host_if: str, router_name: str, v6_prefix: str | None = None,
                   v4: tuple[str, str] | None = None, rdnss: str | None = None,
                   dnssl: str | None = None, ra_lifetime: int = 1800) -> str:
        """A router netns on a new link; ``host_if`` is the host side. Returns router netns."""
        router = self.spaces.add(f"{self.tag}{router_name}")
        self.spaces.veth(self.host, host_if, router, "r0", up=False)
        sh("sysctl", "-qw", "net.ipv6.conf.all.forwarding=1", ns=router)
        sh("sysctl", "-qw", "net.ipv6.conf.r0.accept_dad=0", ns=router)
        sh("ip", "link", "set", "r0", "up", ns=router)
        if v4:
            self.spaces.addresses(router, "r0", v4[1])
            self.spaces.addresses(self.host, host_if, v4[0])
        sh("ip", "link", "set", host_if, "up", ns=self.host)
        # IPv6 on the host link is ready (and accepts RAs) once its link-local exists
        self.wait_for(lambda: "scope link" in sh("ip", "-6", "addr", "show", "dev", host_if,
                                                 ns=self.host).stdout
                      and "state UP" in sh("ip", "link", "show", host_if, ns=self.host).stdout,
                      what=f"IPv6 ready on {host_if}")
        if v6_prefix:
            base = v6_prefix.split("/")[0]
            self.spaces.addresses(router, "r0", f"{base}1/64")
            args = ["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--port=0",
                    "--no-resolv", "--no-hosts", "--interface=r0", "--bind-interfaces",
                    "--leasefile-ro", f"--pid-file={self.tmp}/{router}.pid",
                    "--enable-ra", f"--dhcp-range={base},ra-only,64",
                    f"--ra-param=r0,4,{ra_lifetime}"]
            if rdnss:
                args.append(f"--dhcp-option=option6:dns-server,[{rdnss}]")
            if dnssl:
                args.append(f"--dhcp-option=option6:domain-search,{dnssl}")
            self.spaces.popen(router, args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return router

    def add_dns(self, router: str, listen: str, records: dict[str, str],
                query_log: str | None = None, local_ttl: int | None = None) -> None:
        """A DNS server (dnsmasq) in the router netns answering ``records`` (name -> address);
        with ``query_log``, dnsmasq writes every query it receives to that file; ``local_ttl``
        is the TTL of its answers (dnsmasq's default: 0, i.e. not cacheable)."""
        args = ["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv",
                "--no-hosts", "--bind-interfaces", f"--listen-address={listen}",
                "--except-interface=lo", f"--pid-file={self.tmp}/{router}-dns.pid"]
        args += [f"--host-record={name},{address}" for name, address in records.items()]
        args += sorted({f"--local=/{name.split('.', 1)[1]}/" for name in records if "." in name})
        if query_log is not None:
            args += ["--log-queries", f"--log-facility={query_log}"]
        if local_ttl is not None:
            args.append(f"--local-ttl={local_ttl}")
        self.spaces.popen(router, args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def send_ra(self, router: str, message: bytes, ifname: str = "r0", dst: str = "ff02::1") -> None:
        """Send a crafted ICMPv6 message from the router netns (hop limit 255)."""
        sh(sys.executable, "-c", SEND_RA, ifname, dst, ns=router, input=message.hex())

    def repeat_ra(self, router: str, message: bytes, interval: float = 0.5,
                  ifname: str = "r0") -> subprocess.Popen:
        """Keep sending a crafted RA from the router netns (killed by close())."""
        return self.spaces.popen(router, [sys.executable, "-c", REPEAT_RA, ifname, str(interval),
                                          message.hex()])

    def run(self, *args: str, check: bool = False, timeout: float = 30,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """Run a command in the host netns."""
        return sh(*args, ns=self.host, check=check, timeout=timeout, env=env)

    def pvdrun_json(self, *args: str, env: dict[str, str] | None = None) -> Any:
        """Run ``pvdrun ARGS --json`` in the host netns and decode its output."""
        result = self.run(sys.executable, "-m", "pvdrun.cli", *args, "--json", env=env)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    @staticmethod
    def wait_for(predicate: Any, timeout: float = 20, what: str = "condition") -> Any:
        """Retry predicate() until truthy (setup only, never a speed assertion)."""
        return wait_for(predicate, timeout=timeout, what=what)

    def popen(self, *args: str, env: dict[str, str] | None = None,
              stderr_path: str | None = None) -> subprocess.Popen:
        """Start a process in the host netns (killed by close()); stderr to a file if given."""
        stderr: Any = open(stderr_path, "w") if stderr_path else subprocess.PIPE
        return self.spaces.popen(self.host, list(args), stdout=subprocess.PIPE, stderr=stderr,
                                 text=True, env=env)

    def __enter__(self) -> "MiniNet":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Kill what we started and delete our namespaces and directory."""
        self.spaces.close()


@pytest.fixture
def net() -> Iterator[MiniNet]:
    """A MiniNet for one test, removed afterwards (also when the test fails)."""
    with MiniNet() as mini:
        yield mini
