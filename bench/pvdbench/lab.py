"""The bench's own small lab: namespaces it creates, names with its pid, always removed.

Client namespace (where measured programs run) and server namespace joined by
one veth pair; the server side runs dnsmasq, a UDP sink, an HTTP server and an
iperf3 server.  A third namespace with many links (veth pairs: this kernel has no dummy type) is made on demand for
the discovery figures, and a host namespace with one link to a router namespace running
the lab's RFC 8801 RA sender on demand for the launch that must ask routers.  Nothing here touches the host's own interfaces, routes
or /etc/resolv.conf: the client's resolv.conf is /etc/netns/<ns>/resolv.conf,
which `ip netns exec` bind-mounts inside the namespace only.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

from pvdbench.proc import in_netns, run, stop_process, wait_for

CLIENT_ADDR = "10.77.0.1"
SERVER_ADDR = "10.77.0.2"
PREFIX_LEN = 24
DNS_NAME = "bench.pvdrun.test"
DNS_ANSWER = "10.77.0.99"
SINK_PORT = 9000
HTTP_PORT = 8080
IPERF_PORT = 5201
#: What the router of the asking link advertises (pvdrun.lab.ra's config entry): an RFC 8801
#: PvD whose ID, prefix and DNS server travel only inside the PvD option, so a host knows that
#: PvD only once it heard the RA; a router lifetime, so the host's kernel knows the router.
ASKING_PVD = {"pvd_id": "benchask.example", "prefix": "2001:db8:77::/64",
              "rdnss": ["2001:db8:77::53"], "dnssl": ["benchask.example"],
              "router_lifetime": 1800, "lifetime": 3600}


@dataclass
class BenchLab:
    """Namespaces and servers for one bench run; use as a context manager."""

    run_id: str = field(default_factory=lambda: str(os.getpid()))
    workdir: str = ""
    namespaces: list[str] = field(default_factory=list)
    processes: list[subprocess.Popen] = field(default_factory=list)
    netns_etc_dirs: list[str] = field(default_factory=list)
    client_ifindex: int = 0
    ra_sender: subprocess.Popen | None = None  # make_router_link()'s RA sender

    # -- names -------------------------------------------------------------
    @property
    def client_ns(self) -> str:
        return f"pvdbench{self.run_id}c"

    @property
    def server_ns(self) -> str:
        return f"pvdbench{self.run_id}s"

    @property
    def dummy_ns(self) -> str:
        return f"pvdbench{self.run_id}d"

    @property
    def asking_ns(self) -> str:
        return f"pvdbench{self.run_id}h"

    @property
    def router_ns(self) -> str:
        return f"pvdbench{self.run_id}r"

    @property
    def asking_if(self) -> str:
        return f"pa{self.run_id}h"

    @property
    def router_if(self) -> str:
        return f"pa{self.run_id}r"

    @property
    def client_if(self) -> str:
        return f"pb{self.run_id}a"

    @property
    def server_if(self) -> str:
        return f"pb{self.run_id}b"

    # -- life cycle ----------------------------------------------------------
    def __enter__(self) -> "BenchLab":
        try:
            self.build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def build(self) -> None:
        """Create the client/server namespaces, the veth pair and the servers."""
        self.workdir = tempfile.mkdtemp(prefix=f"pvdbench{self.run_id}-")
        for netns in (self.client_ns, self.server_ns):
            self.add_namespace(netns)
        run(["ip", "-n", self.client_ns, "link", "add", self.client_if, "type", "veth",
             "peer", "name", self.server_if, "netns", self.server_ns])
        for netns, ifname, addr in ((self.client_ns, self.client_if, CLIENT_ADDR),
                                    (self.server_ns, self.server_if, SERVER_ADDR)):
            run(["ip", "-n", netns, "addr", "add", f"{addr}/{PREFIX_LEN}", "dev", ifname])
            run(["ip", "-n", netns, "link", "set", ifname, "up"])
        self.client_ifindex = self.ifindex(self.client_ns, self.client_if)
        self.write_resolv_conf(self.client_ns, SERVER_ADDR)
        self.start_servers()

    def add_namespace(self, netns: str) -> None:
        """Create one namespace (recorded first, so close() removes it even half-made)."""
        self.namespaces.append(netns)
        run(["ip", "netns", "add", netns])
        run(["ip", "-n", netns, "link", "set", "lo", "up"])

    def write_resolv_conf(self, netns: str, nameserver: str) -> None:
        """resolv.conf seen by programs run with `ip netns exec NETNS`."""
        etc_dir = os.path.join("/etc/netns", netns)
        self.netns_etc_dirs.append(etc_dir)
        os.makedirs(etc_dir, exist_ok=True)
        with open(os.path.join(etc_dir, "resolv.conf"), "w", encoding="ascii") as handle:
            handle.write(f"nameserver {nameserver}\noptions timeout:1 attempts:1\n")

    def start_servers(self) -> None:
        """dnsmasq, a UDP sink, an HTTP server and iperf3 in the server namespace."""
        self.start(in_netns(self.server_ns, [
            *self.pin_prefix(), "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv",
            "--no-hosts", "--bind-interfaces", f"--listen-address={SERVER_ADDR}",
            "--except-interface=lo", f"--address=/{DNS_NAME}/{DNS_ANSWER}", "--local-ttl=300",
            f"--pid-file={self.workdir}/dnsmasq.pid", "--user=root", "--cache-size=1000"]))
        self.start(in_netns(self.server_ns, [self.calls_binary(), "sink", "0", "--dst",
                                             SERVER_ADDR, "--port", str(SINK_PORT)]))
        with open(os.path.join(self.workdir, "index.html"), "w", encoding="ascii") as handle:
            handle.write("pvdrun bench\n")
        self.start(in_netns(self.server_ns, ["python3", "-m", "http.server", "--bind", SERVER_ADDR,
                                             "--directory", self.workdir, str(HTTP_PORT)]))
        if shutil.which("iperf3"):
            self.start(in_netns(self.server_ns, ["iperf3", "--server", "--bind", SERVER_ADDR,
                                                 "--port", str(IPERF_PORT)]))
        wait_for(self.servers_listening, 10, "dnsmasq, sink and HTTP server to listen")

    def servers_listening(self) -> bool:
        """True once dnsmasq (53), the HTTP server and the sink are bound."""
        proc = run(["ip", "netns", "exec", self.server_ns, "ss", "-Hlntu"], check=False)
        text = proc.stdout
        return (f"{SERVER_ADDR}:53 " in text and f"{SERVER_ADDR}:{HTTP_PORT} " in text
                and f"{SERVER_ADDR}:{SINK_PORT} " in text)

    def start(self, argv: list[str], **popen_args: object) -> subprocess.Popen:
        """Start a long-running process; close() stops it."""
        popen_args.setdefault("stdout", subprocess.DEVNULL)
        popen_args.setdefault("stderr", subprocess.DEVNULL)
        proc = subprocess.Popen(argv, **popen_args)  # type: ignore[call-overload]
        self.processes.append(proc)
        return proc

    def make_dummy_namespace(self, count: int) -> str:
        """A namespace holding `count` links, each up with its own /24; returns its name.

        This kernel has no `dummy` link type, so the links are count/2 veth
        pairs with both ends in the namespace: each end is up, has carrier
        and its own address, as a dummy link would.
        """
        if self.dummy_ns in self.namespaces:
            return self.dummy_ns
        self.add_namespace(self.dummy_ns)
        batch = os.path.join(self.workdir, "links.batch")
        with open(batch, "w", encoding="ascii") as handle:
            for pair in range(count // 2):
                handle.write(f"link add bd{pair}a type veth peer name bd{pair}b\n")
            for index in range(count):
                name = f"bd{index // 2}{'ab'[index % 2]}"
                handle.write(f"address add 10.{100 + index // 256}.{index % 256}.1/24 dev {name}\n")
                handle.write(f"link set {name} up\n")
        run(["ip", "-n", self.dummy_ns, "-batch", batch], timeout=120)
        return self.dummy_ns

    def make_router_link(self) -> subprocess.Popen:
        """A host namespace whose one link leads to a router namespace running the lab's RFC 8801
        RA sender (pvdrun.lab.ra, advertising ASKING_PVD); returns the sender's process.

        The sender answers every Router Solicitation and otherwise repeats its RA only every
        600 s, so what a launch hears there it heard because it asked.  Returns once the host's
        kernel has the router's default route (it knows the router, as a host on an ISP's link
        does); the kernel solicits only until it heard that first RA.
        """
        if self.ra_sender is not None and self.router_ns in self.namespaces:
            return self.ra_sender
        for netns in (self.asking_ns, self.router_ns):
            self.add_namespace(netns)
        run(["ip", "-n", self.asking_ns, "link", "add", self.asking_if, "type", "veth",
             "peer", "name", self.router_if, "netns", self.router_ns])
        # a router: forwarding joins ff02::2, where Router Solicitations go
        run(["ip", "netns", "exec", self.router_ns, "sysctl", "-qw",
             "net.ipv6.conf.all.forwarding=1"])
        for netns, ifname in ((self.asking_ns, self.asking_if), (self.router_ns, self.router_if)):
            # no duplicate address detection: the link-local addresses are usable at once
            run(["ip", "netns", "exec", netns, "sysctl", "-qw",
                 f"net.ipv6.conf.{ifname}.accept_dad=0"])
            run(["ip", "-n", netns, "link", "set", ifname, "up"])
        config = os.path.join(self.workdir, "ra-sender.json")
        with open(config, "w", encoding="utf-8") as handle:
            json.dump({"ifname": self.router_if, "interval": 600, "ras": [ASKING_PVD]}, handle)
        self.ra_sender = self.start(in_netns(self.router_ns, [sys.executable, "-m", "pvdrun.lab.ra",
                                                              "--config", config]))
        wait_for(self.asking_host_knows_router, 15, "the asking host's default route via the router")
        return self.ra_sender

    def asking_host_knows_router(self) -> bool:
        """True once the asking namespace's kernel has an RA-learned default route."""
        proc = run(["ip", "-n", self.asking_ns, "-6", "route", "show", "default"], check=False)
        return "via fe80::" in proc.stdout and "proto ra" in proc.stdout

    @staticmethod
    def solicitations_seen(sender: subprocess.Popen) -> int:
        """Router Solicitations the sender's namespace has received (its Icmp6InRouterSolicits);
        `ip netns exec` execs the sender, so its pid's /proc/PID/net is that namespace's."""
        with open(f"/proc/{sender.pid}/net/snmp6", encoding="ascii") as handle:
            for line in handle:
                key, _, value = line.partition(" ")
                if key == "Icmp6InRouterSolicits":
                    return int(value)
        raise RuntimeError("no Icmp6InRouterSolicits in /proc/net/snmp6")

    def close(self) -> None:
        """Stop our processes, delete our namespaces and files; never raises."""
        for proc in reversed(self.processes):
            try:
                stop_process(proc)
            except Exception:  # noqa: BLE001 - teardown goes on
                pass
        self.processes.clear()
        for netns in reversed(self.namespaces):
            run(["ip", "netns", "del", netns], check=False)
        self.namespaces.clear()
        for etc_dir in self.netns_etc_dirs:
            shutil.rmtree(etc_dir, ignore_errors=True)
        self.netns_etc_dirs.clear()
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- helpers -------------------------------------------------------------
    @staticmethod
    def ifindex(netns: str, ifname: str) -> int:
        """Interface index of ifname inside netns."""
        info = json.loads(run(["ip", "-n", netns, "-j", "link", "show", "dev", ifname]).stdout)
        return int(info[0]["ifindex"])

    @staticmethod
    def pin_prefix() -> list[str]:
        """`taskset -c LAST_CPU`: in-process loops and dnsmasq share one CPU, so that a
        query's round trip does not depend on where the scheduler put the two processes."""
        cpus = os.cpu_count() or 1
        if cpus < 2 or not shutil.which("taskset"):
            return []
        return ["taskset", "-c", str(cpus - 1)]

    @staticmethod
    def calls_binary() -> str:
        """Path of the compiled C loop program (bench/out/calls)."""
        return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            "out", "calls")
