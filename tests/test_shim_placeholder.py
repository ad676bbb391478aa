"""The resolv.conf placeholder of a PvD without DNS servers, 127.255.255.254: a scoped
program that asks it (it read the PvD's view, or the launcher's private file) must not reach a
resolver of the host bound to the wildcard (0.0.0.0:53), which receives datagrams to any local
address, loopback included.  The shim ties such a socket to the PvD instead, so the query leaves
by the PvD's own link (seen there by the capture), where nothing answers.  127.0.0.1 stays
reachable (a program's local services).  The control: the same program unscoped reaches the
listener."""
from __future__ import annotations

import os
import sys

import pytest

from fixtures.capture import LinkCapture
from fixtures.netns import Namespaces, ifindex
from fixtures.prereq import require
from fixtures.shim_source import SHIM
from pvdrun.resolve.resolvconf import NO_SERVER_PLACEHOLDER
from pvdrun.shim import library_path

TAG = f"pph{os.getpid() % 100000}"

# A resolver of the host: bound to the wildcard, it prints what it receives.
LISTENER = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 53))
print("ready", flush=True)
while True:
    data, peer = s.recvfrom(512)
    print(data.decode(), flush=True)
"""

# The program: one datagram each way of asking the placeholder, then one to 127.0.0.1.
ASKER = r"""
import socket, sys
token = sys.argv[1]
for how in ("connect", "sendto", "mapped"):
    s = socket.socket(socket.AF_INET6 if how == "mapped" else socket.AF_INET, socket.SOCK_DGRAM)
    try:
        if how == "connect":
            s.connect(("127.255.255.254", 53)); s.send(f"{token}-{how}".encode())
        elif how == "sendto":
            s.sendto(f"{token}-{how}".encode(), ("127.255.255.254", 53))
        else:
            s.sendto(f"{token}-{how}".encode(), ("::ffff:127.255.255.254", 53))
        print(how, "sent")
    except OSError as e:
        print(how, e.errno)
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(f"{token}-local".encode(), ("127.0.0.1", 53))
"""


@pytest.mark.root
@pytest.mark.parametrize("default_route", [True, False], ids=["pvd-with-default-route", "pvd-without-route"])
def test_placeholder_never_reaches_a_wildcard_resolver_of_the_host(default_route: bool) -> None:
    require(os.geteuid() == 0, "root (network namespaces)")
    with Namespaces() as spaces:
        host, peer = spaces.add(f"{TAG}h"), spaces.add(f"{TAG}p")
        spaces.veth(host, "pvd0", peer, "r0", ["192.0.2.5/24"], ["192.0.2.1/24"])
        if default_route:
            spaces.run(host, ["ip", "route", "add", "default", "via", "192.0.2.1", "dev", "pvd0"], check=True)
        listener = spaces.popen(host, [sys.executable, "-u", "-c", LISTENER], stdout=-1, text=True)
        assert listener.stdout is not None and listener.stdout.readline().strip() == "ready"
        scope = f"v=1 id=nodns.example handle=7007 if=pvd0:{ifindex(host, 'pvd0')} addr=192.0.2.5"
        scoped_env = {**os.environ, "PVDRUN_SCOPE": scope, "LD_PRELOAD": library_path()}
        with LinkCapture(host, "pvd0") as link:
            scoped = spaces.run(host, [sys.executable, "-c", ASKER, "scoped"], env=scoped_env)
            plain = spaces.run(host, [sys.executable, "-c", ASKER, "plain"])
        assert scoped.returncode == 0 and plain.returncode == 0, (scoped.stderr, plain.stderr)
        listener.terminate()
        heard = listener.communicate(timeout=10)[0].split()
    # the control: unscoped, every way of asking reaches the host's resolver
    assert {"plain-connect", "plain-sendto", "plain-mapped", "plain-local"} <= set(heard), heard
    # scoped: only the program's own 127.0.0.1 datagram; the placeholder's went by the PvD's link
    assert [word for word in heard if word.startswith("scoped-")] == ["scoped-local"], heard
    # where the placeholder's datagrams went instead: by the PvD's link when the PvD has a route
    # (the device binding takes the kernel past its local table), else ENETUNREACH at once
    outcomes = dict(line.split() for line in scoped.stdout.splitlines())
    if default_route:
        assert outcomes == {"connect": "sent", "sendto": "sent", "mapped": "sent"}, scoped.stdout
        assert all(link.carrying(f"scoped-{how}") for how in outcomes), link.show()
    else:
        assert set(outcomes.values()) == {"101"}, scoped.stdout  # ENETUNREACH
        assert not link.carrying("scoped-"), link.show()


def test_launcher_writes_the_placeholder_the_shim_knows() -> None:
    """The launcher's private file (Python) and the shim (C) name the same placeholder."""
    header = (SHIM / "core" / "sockaddr.h").read_text()
    assert f'#define SHIM_NO_DNS_SERVER "{NO_SERVER_PLACEHOLDER}"' in header
    value = int.from_bytes(bytes(int(part) for part in NO_SERVER_PLACEHOLDER.split(".")), "big")
    assert f"#define SHIM_NO_DNS_SERVER_V4 0x{value:08x}U" in header
