"""The rules a PvD Additional Information object must meet (RFC 8801 sections 4.1-4.3).

Pure: bytes in, a dict or :class:`InvalidInfo` out.  The rules, in order:

1. at most :data:`MAX_BYTES` bytes;
2. media type ``application/pvd+json`` (parameters such as ``charset`` allowed);
3. UTF-8 JSON (no duplicate key, no NaN/Infinity) whose top level is an object;
4. ``identifier`` is the PvD ID (DNS names compare without case and without a final dot);
5. ``expires`` is an RFC 3339 date-time with an offset, later than ``now``;
6. ``prefixes`` is a list of IP prefixes covering every prefix the PvD's RA announced (an
   announced prefix is covered by an equal or shorter listed prefix that contains it).

Keys beyond these are kept as they are.
"""
from __future__ import annotations

import ipaddress
import json
import re
from datetime import datetime
from typing import Any

from pvdrun.pvdinfo.errors import InvalidInfo

MAX_BYTES = 64 * 1024
MEDIA_TYPE = "application/pvd+json"

# RFC 3339 section 5.6 date-time: full-date "T" full-time, offset "Z" or +hh:mm (t and z allowed).
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")

_IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_expires(value: Any) -> float:
    """Epoch seconds of an RFC 3339 date-time string; InvalidInfo otherwise."""
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise InvalidInfo(f"'expires' is not an RFC 3339 date-time: {value!r}"[:200])
    text = value.replace("t", "T").replace(" ", "T").replace("z", "Z")
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError as exc:
        raise InvalidInfo(f"'expires' is not a valid date-time: {value!r} ({exc})"[:200]) from None


def media_type_ok(content_type: str | None) -> bool:
    """Whether a Content-Type header names application/pvd+json (any parameters)."""
    if not content_type:
        return False
    return content_type.split(";", 1)[0].strip().lower() == MEDIA_TYPE


def _same_name(a: str, b: str) -> bool:
    return a.rstrip(".").lower() == b.rstrip(".").lower()


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise InvalidInfo(f"the JSON object has the key {key!r} twice"[:200])
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise InvalidInfo(f"the body is not JSON ({name} is not a JSON value)")


def parse_object(body: bytes) -> dict[str, Any]:
    """The top-level JSON object of ``body``; InvalidInfo when it is not UTF-8 JSON or not an object."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInfo("the body is not UTF-8 text") from None
    text = text.removeprefix("\ufeff")
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise InvalidInfo(f"the body is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise InvalidInfo("the body is not usable JSON (nested too deeply)") from None
    if not isinstance(value, dict):
        raise InvalidInfo(f"the body is JSON but not an object (a {type(value).__name__})")
    return value


def _networks(value: Any) -> list[_IpNetwork]:
    if not isinstance(value, list):
        raise InvalidInfo("'prefixes' is missing or not a list")
    networks = []
    for item in value:
        if not isinstance(item, str):
            raise InvalidInfo(f"'prefixes' holds a non-string: {item!r}"[:200])
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise InvalidInfo(f"'prefixes' holds something that is not an IP prefix: {item!r}"[:200]) from None
    return networks


def uncovered(announced: list[str], listed: list[_IpNetwork]) -> list[str]:
    """The announced prefixes no listed prefix contains (ValueError for a malformed announced one)."""
    missing = []
    for text in announced:
        prefix = ipaddress.ip_network(text, strict=False)
        if not any(net.version == prefix.version and prefix.subnet_of(net) for net in listed):  # type: ignore[arg-type]
            missing.append(text)
    return missing


def validate(pvd_id: str, body: bytes, content_type: str | None, announced_prefixes: list[str],
             now: float) -> dict[str, Any]:
    """The object of ``body`` when it is valid Additional Information for ``pvd_id`` at ``now``
    (epoch seconds), with every key it has; InvalidInfo naming the first rule it breaks."""
    if len(body) > MAX_BYTES:
        raise InvalidInfo(f"the body is larger than 64 KiB ({len(body)} bytes)")
    if not media_type_ok(content_type):
        raise InvalidInfo(f"content type is {content_type!r}, not {MEDIA_TYPE}"[:200])
    data = parse_object(body)
    identifier = data.get("identifier")
    if not isinstance(identifier, str):
        raise InvalidInfo("'identifier' is missing or not a string")
    if not _same_name(identifier, pvd_id):
        raise InvalidInfo(f"'identifier' is {identifier!r}, not the PvD ID {pvd_id!r}"[:200])
    if "expires" not in data:
        raise InvalidInfo("'expires' is missing")
    expires = parse_expires(data["expires"])
    if expires <= now:
        raise InvalidInfo(f"the object expired at {data['expires']}")
    listed = _networks(data.get("prefixes"))
    missing = uncovered(announced_prefixes, listed)
    if missing:
        raise InvalidInfo(f"'prefixes' does not cover the announced prefix(es) {', '.join(missing)}"[:200])
    return data
