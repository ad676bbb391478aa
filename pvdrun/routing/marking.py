"""pvdd's ``mark`` request: a client passes a socket (SCM_RIGHTS) and a PvD handle; pvdd
checks the client's credentials and sets SO_MARK on it, which needs CAP_NET_ADMIN.

Wire form (docs/protocol.md): ``{"v":1,"op":"mark","handle":N}\\n`` sent in one
``sendmsg`` carrying exactly one descriptor.  Replies: ``{"ok":true,"op":"mark","mark":M}``,
or an error ``forbidden`` (the shim turns it into EACCES), ``unknown_pvd``, ``bad_request``
(no descriptor, not an inet socket).
"""
from __future__ import annotations

import os
import socket
import stat
from typing import Any

from pvdrun.daemon.protocol import E_BAD_REQUEST, E_UNKNOWN_PVD, VERSION, error_reply
from pvdrun.model import Pvd
from pvdrun.routing.policy import Credentials, may_use

E_FORBIDDEN = "forbidden"
#: Descriptors a client may have queued ahead of its requests; more and it is dropped.
MAX_PENDING_FDS = 8


def mark_request(pvds: list[Pvd], request: dict[str, Any], fd: int | None,
                 peer: Credentials) -> dict[str, Any]:
    """Answer one ``mark`` request; ``fd`` (closed here in every case) is the passed socket."""
    try:
        handle = request.get("handle")
        if fd is None:
            return error_reply(E_BAD_REQUEST, "mark needs a socket passed with SCM_RIGHTS")
        if not isinstance(handle, int) or isinstance(handle, bool):
            return error_reply(E_BAD_REQUEST, "mark needs a \"handle\" integer")
        if not stat.S_ISSOCK(os.fstat(fd).st_mode):
            return error_reply(E_BAD_REQUEST, "the descriptor passed is not a socket")
        pvd = next((p for p in pvds if p.handle == handle), None)
        if pvd is None:
            return error_reply(E_UNKNOWN_PVD, f"no PvD has handle {handle}")
        if not may_use(pvd, peer):
            return error_reply(E_FORBIDDEN, f"uid {peer.uid} may not use PvD {pvd.pvd_id}")
        if not pvd.mark:
            return error_reply(E_BAD_REQUEST, f"PvD {pvd.pvd_id} has no mark (pvdd cannot route)")
        sock = socket.socket(fileno=os.dup(fd))
        try:
            if sock.family not in (socket.AF_INET, socket.AF_INET6):
                return error_reply(E_BAD_REQUEST, "the socket passed is not an IPv4/IPv6 socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, pvd.mark)
        finally:
            sock.close()
        return {"v": VERSION, "ok": True, "op": "mark", "pvd": pvd.pvd_id, "mark": pvd.mark}
    except OSError as exc:
        return error_reply(E_BAD_REQUEST, f"cannot mark the socket: {exc.strerror or exc}")
    finally:
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass
