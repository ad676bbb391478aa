"""The shim's trace (``PVDRUN_TRACE``, docs/shim.md "Trace"), read back.

One JSON object per line: a socket decision (``op`` socket, connect, send, listen, bind) or a
lookup (``op`` lookup).  A line that does not parse (a program killed in the middle of a
write cannot cut one: each is one ``write(2)`` in append mode; but the file is the user's) is
counted, not trusted.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any

TRACE_ENV = "PVDRUN_TRACE"
FILE_NAME = "trace.jsonl"


@dataclass
class Trace:
    """What the shim wrote."""

    sockets: list[dict[str, Any]] = field(default_factory=list)
    lookups: list[dict[str, Any]] = field(default_factory=list)
    unreadable: int = 0


def read(path: str) -> Trace:
    """The trace at ``path`` (empty when the shim wrote nothing)."""
    found = Trace()
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except ValueError:
                    found.unreadable += 1
                    continue
                if not isinstance(record, dict):
                    found.unreadable += 1
                elif record.get("op") == "lookup":
                    found.lookups.append(record)
                else:
                    found.sockets.append(record)
    except FileNotFoundError:
        pass
    return found


def private_file() -> tuple[str, str]:
    """A directory only this user can enter, and the trace's path in it."""
    directory = tempfile.mkdtemp(prefix="pvdrun-verify-")
    return directory, os.path.join(directory, FILE_NAME)
