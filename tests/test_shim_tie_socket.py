"""``pvd_tie_socket`` (pvd.h, version 2) through the cffi binding, without a network: the PvD is
given by its scope line and stays out of the process's PvD table; the socket gets the PvD's
interface and one of its addresses of the destination's family; what cannot be tied fails
with errno.  The PvD's interface is loopback; nothing is sent."""
from __future__ import annotations

import errno
import socket
from pathlib import Path

import pytest

from pvdrun.model import HANDLE_NULL, Pvd
from pvdrun.shim import binding

SO_BINDTOIFINDEX = 62
LOOP = Pvd(pvd_id="loop.example", handle=0x5EED, interfaces=["lo"], ifindexes=[socket.if_nametoindex("lo")],
           addresses=["::1/128"])


@pytest.fixture(autouse=True)
def no_pvdd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PVDRUN_SOCKET", str(tmp_path / "none.sock"))


def test_tied_to_the_pvds_interface_and_address_outside_the_table() -> None:
    assert binding.lib().PVD_API_VERSION >= 2  # pvd_tie_socket came with version 2
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
        binding.tie_socket(sock, LOOP.to_scope(), ("::1", 53, 0, 0))
        assert sock.getsockopt(socket.SOL_SOCKET, SO_BINDTOIFINDEX) == LOOP.ifindexes[0]
        assert sock.getsockname()[0] == "::1"
    assert LOOP.handle not in binding.list_handles()  # a daemon's PvD views never fill the table


@pytest.mark.parametrize("line,destination,code", [
    ("v=1 id=broken", ("::1", 53, 0, 0), errno.EINVAL),                      # no handle, no interface
    (f"v=1 id=null handle={HANDLE_NULL}", ("::1", 53, 0, 0), errno.ENETUNREACH),  # no network at all
    (LOOP.to_scope(), ("127.0.0.1", 53), errno.ENETUNREACH),                 # no IPv4 address of its own
])
def test_what_cannot_be_tied_fails_with_errno(line: str, destination: tuple, code: int) -> None:
    family = socket.AF_INET if len(destination) == 2 else socket.AF_INET6
    with socket.socket(family, socket.SOCK_DGRAM) as sock, pytest.raises(binding.TieRefused) as caught:
        binding.tie_socket(sock, line, destination)
    assert caught.value.errno == code and caught.value.reason == ""
