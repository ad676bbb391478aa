"""Small namespaces for discovery/pvdd tests: a host netns, router netns, veths, dnsmasq RAs.

Independent of the lab (pvdrun.lab) so these tests run on their own.  Every
name holds the pid and a counter; ``close()`` removes everything (fixtures
call it in a finalizer).
"""
from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any

_counter = itertools.count()

_LINK_LOCAL = '''def link_local(ifname):
    for line in open("/proc/net/if_inet6"):
        addr, _idx, _plen, scope, _flags, name = line.split()
        if name == ifname and scope == "20":
            return ":".join(addr[i:i + 4] for i in range(0, 32, 4))
    raise SystemExit(f"no link-local address on {ifname}")
'''

SEND_RA = r"""
import socket, sys, time
LINK_LOCAL
ifname, dst = sys.argv[1], sys.argv[2]
data = bytes.fromhex(sys.stdin.read().strip())
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
for attempt in range(50):  # the link-local address may still be tentative
    try:
        s.bind((link_local(ifname), 0, 0, socket.if_nametoindex(ifname)))
        break
    except OSError:
        time.sleep(0.1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)
s.sendto(data, (dst, 0, 0, socket.if_nametoindex(ifname)))
"""


REPEAT_RA = r"""
import socket, sys, time
LINK_LOCAL
ifname, interval = sys.argv[1], float(sys.argv[2])
data = bytes.fromhex(sys.argv[3])
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
for attempt in range(50):  # the link-local address may still be tentative
    try:
        s.bind((link_local(ifname), 0, 0, socket.if_nametoindex(ifname)))
        break
    except OSError:
        time.sleep(0.1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
while True:
    s.sendto(data, ("ff02::1", 0, 0, socket.if_nametoindex(ifname)))
    time.sleep(interval)
"""


SEND_RA = SEND_RA.replace("LINK_LOCAL", _LINK_LOCAL)
REPEAT_RA = REPEAT_RA.replace("LINK_LOCAL", _LINK_LOCAL)


def sh(*args: str, check: bool = True, ns: str | None = None, timeout: float = 30,
       env: dict[str, str] | None = None, input: str | None = None) -> subprocess.CompletedProcess:
    """Run a command (inside netns ``ns`` when given)."""
    cmd = (["ip", "netns", "exec", ns] if ns else []) + list(args)
    return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=timeout,
                          env=env, input=input)


class MiniNet:
    """A host namespace with links to router namespaces (one veth pair each)."""

    def __init__(self) -> None:
        self.tag = f"pd{os.getpid()}x{next(_counter)}"
        self.host = f"{self.tag}h"
        self.namespaces: list[str] = []
        self.procs: list[subprocess.Popen] = []
        self.tmp = tempfile.mkdtemp(prefix=f"{self.tag}-")
        self._add_ns(self.host)
        sh("ip", "link", "set", "lo", "up", ns=self.host)
        sh("sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", ns=self.host, check=False)
        sh("sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0", ns=self.host, check=False)

    def _add_ns(self, name: str) -> None:
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)

    def add_router(self, host_if: str, router_name: str, v6_prefix: str | None = None,
                   v4: tuple[str, str] | None = None, rdnss: str | None = None,
                   dnssl: str | None = None, ra_lifetime: int = 1800) -> str:
        """A router netns on a new link; ``host_if`` is the host side. Returns router netns."""
        router = f"{self.tag}{router_name}"
        self._add_ns(router)
        sh("ip", "link", "add", host_if, "netns", self.host, "type", "veth", "peer", "name", "r0",
           "netns", router)
        sh("ip", "link", "set", "lo", "up", ns=router)
        sh("sysctl", "-qw", "net.ipv6.conf.all.forwarding=1", ns=router)
        sh("sysctl", "-qw", "net.ipv6.conf.r0.accept_dad=0", ns=router)
        sh("ip", "link", "set", "r0", "up", ns=router)
        if v4:
            sh("ip", "addr", "add", v4[1], "dev", "r0", ns=router)
            sh("ip", "addr", "add", v4[0], "dev", host_if, ns=self.host)
        sh("ip", "link", "set", host_if, "up", ns=self.host)
        # IPv6 on the host link is ready (and accepts RAs) once its link-local exists
        self.wait_for(lambda: "scope link" in sh("ip", "-6", "addr", "show", "dev", host_if,
                                                 ns=self.host).stdout
                      and "state UP" in sh("ip", "link", "show", host_if, ns=self.host).stdout,
                      what=f"IPv6 ready on {host_if}")
        if v6_prefix:
            base = v6_prefix.split("/")[0]
            sh("ip", "addr", "add", f"{base}1/64", "dev", "r0", "nodad", ns=router)
            args = ["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--port=0",
                    "--no-resolv", "--no-hosts", "--interface=r0", "--bind-interfaces",
                    "--leasefile-ro", f"--pid-file={self.tmp}/{router}.pid",
                    "--enable-ra", f"--dhcp-range={base},ra-only,64",
                    f"--ra-param=r0,4,{ra_lifetime}"]
            if rdnss:
                args.append(f"--dhcp-option=option6:dns-server,[{rdnss}]")
            if dnssl:
                args.append(f"--dhcp-option=option6:domain-search,{dnssl}")
            self.procs.append(subprocess.Popen(["ip", "netns", "exec", router, *args],
                                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
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
        self.procs.append(subprocess.Popen(["ip", "netns", "exec", router, *args],
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def send_ra(self, router: str, message: bytes, ifname: str = "r0", dst: str = "ff02::1") -> None:
        """Send a crafted ICMPv6 message from the router netns (hop limit 255)."""
        sh(sys.executable, "-c", SEND_RA, ifname, dst, ns=router, input=message.hex())

    def repeat_ra(self, router: str, message: bytes, interval: float = 0.5,
                  ifname: str = "r0") -> subprocess.Popen:
        """Keep sending a crafted RA from the router netns (killed by close())."""
        proc = subprocess.Popen(["ip", "netns", "exec", router, sys.executable, "-c", REPEAT_RA,
                                 ifname, str(interval), message.hex()], start_new_session=True)
        self.procs.append(proc)
        return proc

    def run(self, *args: str, check: bool = False, timeout: float = 30,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """Run a command in the host netns."""
        return sh(*args, ns=self.host, check=check, timeout=timeout, env=env)

    def pvdrun_json(self, *args: str, env: dict[str, str] | None = None) -> Any:
        """Run ``pvdrun ARGS --json`` in the host netns and decode its output."""
        result = self.run(sys.executable, "-m", "pvdrun.cli", *args, "--json", env=env)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def wait_for(self, predicate: Any, timeout: float = 20, what: str = "condition") -> Any:
        """Retry predicate() until truthy (setup only, never a speed assertion)."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            last = predicate()
            if last:
                return last
            time.sleep(0.3)
        raise AssertionError(f"timed out waiting for {what}; last: {last!r}")

    def popen(self, *args: str, env: dict[str, str] | None = None,
              stderr_path: str | None = None) -> subprocess.Popen:
        """Start a process in the host netns (killed by close()); stderr to a file if given."""
        stderr: Any = open(stderr_path, "w") if stderr_path else subprocess.PIPE
        proc = subprocess.Popen(["ip", "netns", "exec", self.host, *args], stdout=subprocess.PIPE,
                                stderr=stderr, text=True, env=env, start_new_session=True)
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        """Kill what we started and delete our namespaces."""
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except (ProcessLookupError, PermissionError):
                    proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        for name in reversed(self.namespaces):
            sh("ip", "netns", "pids", name, check=False)
            pids = sh("ip", "netns", "pids", name, check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            sh("ip", "netns", "del", name, check=False)
        subprocess.run(["rm", "-rf", self.tmp], check=False)
