"""A positive answer of a PvD-scoped lookup (no dnspython here: pvdd's clients read answers
without loading the resolver)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Answer:
    """A positive answer: records of ``rdtype`` at the end of the CNAME chain."""

    qname: str                     # the candidate that answered (search applied)
    rdtype: str
    canonical_name: str
    ttl: int
    records: list[str] = field(default_factory=list)  # presentation text
    server: str | None = None      # the PvD server that answered (None: from cache, or no DNS)
    source: str = "dns"            # dns, files (/etc/hosts) or literal (an IP address, no query)

    def to_dict(self) -> dict[str, object]:
        return {"qname": self.qname, "type": self.rdtype, "canonical_name": self.canonical_name,
                "ttl": self.ttl, "records": list(self.records), "server": self.server,
                "source": self.source}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Answer":
        """The answer of a pvdd ``resolve`` reply (:meth:`to_dict`'s keys)."""
        return cls(qname=str(data["qname"]), rdtype=str(data["type"]),
                   canonical_name=str(data["canonical_name"]), ttl=int(data["ttl"]),
                   records=[str(r) for r in data.get("records", [])],
                   server=None if data.get("server") is None else str(data["server"]),
                   source=str(data.get("source", "dns")))
