"""Why a PvD-scoped lookup failed."""
from __future__ import annotations

NXDOMAIN = "nxdomain"      # the name does not exist (under any search candidate)
NODATA = "nodata"          # the name exists, without records of that type
TIMEOUT = "timeout"        # no server of the PvD answered in time
SERVFAIL = "servfail"      # the PvD's servers answered with a failure
NO_SERVER = "no-server"    # the PvD has no DNS server usable from its own addresses
BAD_NAME = "bad-name"      # not a valid DNS name

#: Failures worth retrying later (EAI_AGAIN in getaddrinfo's terms).
TEMPORARY = frozenset({TIMEOUT, SERVFAIL, NO_SERVER})


class ResolveError(Exception):
    """A lookup that produced no answer; ``kind`` is one of the constants above, ``rdtype`` the
    record type asked for when one was (None: a failure before any, e.g. a bad name)."""

    def __init__(self, kind: str, message: str, rdtype: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.rdtype = rdtype

    @property
    def temporary(self) -> bool:
        return self.kind in TEMPORARY
