"""The PvD configuration file (``/etc/pvd/pvd.toml``; see docs/discovery.md), for everyone
who reads it: discovery (``[pvd.NAME]``, ``default``), pvdd's routing (``[routing]``) and
the policy (``users``, ``groups``, ``restricted``).

Schema (TOML)::

    default = "work"              # optional: name of the default PvD (R9)

    [pvd.work]                    # a named PvD ("work")
    interface = "eth0"            # select by interface, and/or
    pvd_id = "ispa.example"       # select by RFC 8801 PvD ID
    kind = "ethernet"             # optional kind alias override
    dns = ["2001:db8::53"]        # optional DNS override (replaces discovered servers)
    search = ["corp.example"]     # optional search domain override
    users = ["alice"]             # policy (R23): who may use it (unknown names are errors)
    groups = ["staff"]
    restricted = true             # only users/groups above, through a pvdd socket mark

    [routing]                     # pvdd's per-PvD tables (docs/routing.md)
    table_base = 5000             # PvD tables are table_base .. table_base+255
    rule_priority_base = 5000     # its rules use priorities base .. base+4
    mark_base = 0x5000            # PvD marks are mark_base+1 .. under mark_mask
    mark_mask = 0xffff
    [pvd.work.attributes]         # anything else: passed through (R18)
    metered = true

    [additional_info]             # RFC 8801 Additional Information (docs/pvdinfo.md)
    fetch = true                  # pvdd fetches it for PvDs whose RA has the H flag
    ca_file = "/etc/pvd/ca.pem"   # trust these CAs for it instead of the system's

A malformed file raises :class:`ConfigError` naming the file, the line and
the problem.
"""
from __future__ import annotations

import grp
import ipaddress
import os
import pwd
import re
import tomllib
from dataclasses import dataclass, field
from typing import Any, Callable

from pvdrun.errors import EXIT_BAD_CONFIG, PvdrunError
from pvdrun.model import NULL_PVD_NAME

DEFAULT_CONFIG = "/etc/pvd/pvd.toml"
CONFIG_ENV = "PVDRUN_CONFIG"

_PVD_KEYS = {"interface", "pvd_id", "kind", "dns", "search", "users", "groups", "restricted",
             "attributes"}
_ROUTING_KEYS = {"table_base", "rule_priority_base", "mark_base", "mark_mask"}
#: Most PvD tables (and marks) pvdd hands out.
MAX_PVD_SLOTS = 256
_KINDS = {"wifi", "ethernet", "cellular", "vpn"}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*$")


class ConfigError(PvdrunError, ValueError):
    """A configuration file that cannot be used; the message names file and line."""

    exit_status = EXIT_BAD_CONFIG


@dataclass
class ConfiguredPvd:
    """One ``[pvd.NAME]`` table."""

    name: str
    interface: str | None = None
    pvd_id: str | None = None
    kind: str | None = None
    dns: list[str] | None = None
    search: list[str] | None = None
    users: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    restricted: bool = False
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class RoutingConfig:
    """``[routing]``: where pvdd puts its tables, rules and marks (docs/routing.md)."""

    table_base: int = 5000
    rule_priority_base: int = 5000
    mark_base: int = 0x5000
    mark_mask: int = 0xFFFF


@dataclass
class InfoConfig:
    """``[additional_info]``: whether pvdd fetches RFC 8801 Additional Information, and the CA
    file that verifies it (None: the system's trust store)."""

    fetch: bool = True
    ca_file: str | None = None


def _parse_info(table: Any) -> InfoConfig:
    """``[additional_info]``; raises ValueError naming the key first."""
    if not isinstance(table, dict):
        raise ValueError("additional_info must be a table [additional_info]")
    unknown = sorted(set(table) - {"fetch", "ca_file"})
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown key (expected fetch, ca_file)")
    info = InfoConfig()
    if "fetch" in table:
        if not isinstance(table["fetch"], bool):
            raise ValueError("fetch must be true or false")
        info.fetch = table["fetch"]
    if "ca_file" in table:
        if not isinstance(table["ca_file"], str) or not table["ca_file"].startswith("/"):
            raise ValueError("ca_file must be an absolute path")
        info.ca_file = table["ca_file"]
    return info


@dataclass
class Config:
    """The whole configuration; empty when there is no file."""

    path: str | None = None
    default: str | None = None
    pvds: list[ConfiguredPvd] = field(default_factory=list)
    routing: RoutingConfig = field(default_factory=RoutingConfig)
    info: InfoConfig = field(default_factory=InfoConfig)


def config_path(explicit: str | None = None) -> tuple[str, bool]:
    """(path, required): --config, else $PVDRUN_CONFIG, else the optional default."""
    if explicit:
        return explicit, True
    env = os.environ.get(CONFIG_ENV)
    if env:
        return env, True
    return DEFAULT_CONFIG, False


def _line_of(text: str, name: str, key: str | None) -> int:
    """Best-effort line number of [pvd.NAME] (or of KEY inside it, or top-level KEY)."""
    lines = text.splitlines()
    header = re.compile(r"^\s*\[\s*pvd\s*\.\s*\"?" + re.escape(name) + r"\"?\s*\]") if name else None
    start = 0
    if header is not None:
        for number, line in enumerate(lines):
            if header.match(line):
                start = number
                break
        else:
            return 1
    if key is None:
        return start + 1
    key_re = re.compile(r"^\s*\"?" + re.escape(key) + r"\"?\s*=")
    for number in range(start, len(lines)):
        if number > start and header is not None and lines[number].lstrip().startswith("[") \
                and not lines[number].lstrip().startswith(f"[pvd.{name}."):
            break
        if key_re.match(lines[number]):
            return number + 1
    return start + 1


def _section_line(text: str, section: str, key: str | None) -> int:
    """Line of KEY inside the top-level table [SECTION] (else of its header; 1 if absent)."""
    lines = text.splitlines()
    header = next((n for n, line in enumerate(lines)
                   if re.match(r"^\s*\[\s*" + re.escape(section) + r"\s*\]", line)), None)
    if header is None:
        return 1
    if key is not None:
        key_re = re.compile(r"^\s*\"?" + re.escape(key) + r"\"?\s*=")
        for number in range(header + 1, len(lines)):
            if lines[number].lstrip().startswith("["):
                break
            if key_re.match(lines[number]):
                return number + 1
    return header + 1


def _str_list(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{what} must be a list of strings")
    return list(value)


def _parse_pvd(name: str, table: Any) -> ConfiguredPvd:
    if not isinstance(table, dict):
        raise ValueError(f"pvd.{name} must be a table")
    if not _NAME_RE.fullmatch(name) or name == NULL_PVD_NAME:
        raise ValueError(f"pvd name {name!r} is not allowed")
    unknown = sorted(set(table) - _PVD_KEYS)
    if unknown:
        raise KeyError(unknown[0])
    pvd = ConfiguredPvd(name=name)
    for key in ("interface", "pvd_id", "kind"):
        if key in table and not isinstance(table[key], str):
            raise ValueError(f"{key} must be a string")
    pvd.interface = table.get("interface")
    pvd_id = table.get("pvd_id")
    pvd.pvd_id = pvd_id.lower().rstrip(".") if pvd_id else None
    if not pvd.interface and not pvd.pvd_id:
        raise ValueError("a PvD needs 'interface' and/or 'pvd_id' to select it")
    pvd.kind = table.get("kind")
    if pvd.kind is not None and pvd.kind not in _KINDS:
        raise ValueError(f"kind must be one of {', '.join(sorted(_KINDS))}")
    if "dns" in table:
        pvd.dns = _str_list(table["dns"], "dns")
        for server in pvd.dns:
            try:
                ipaddress.ip_address(server)
            except ValueError:
                raise ValueError(f"dns server {server!r} is not an IP address") from None
    if "search" in table:
        pvd.search = [d.lower().rstrip(".") for d in _str_list(table["search"], "search")]
    pvd.users = _str_list(table.get("users", []), "users")
    pvd.groups = _str_list(table.get("groups", []), "groups")
    for user in pvd.users:
        if uid_of(user) is None:
            raise ValueError(f"users names an unknown user {user!r}")
    for group in pvd.groups:
        if gid_of(group) is None:
            raise ValueError(f"groups names an unknown group {group!r}")
    restricted = table.get("restricted", False)
    if not isinstance(restricted, bool):
        raise ValueError("restricted must be true or false")
    pvd.restricted = restricted
    attributes = table.get("attributes", {})
    if not isinstance(attributes, dict):
        raise ValueError("attributes must be a table")
    pvd.attributes = dict(attributes)
    return pvd


def _account_id(name: str, find: Callable[[str], int]) -> int | None:
    """A numeric id as it is, else what the account database says (None: unknown)."""
    if name.isdigit():
        return int(name)
    try:
        return find(name)
    except KeyError:
        return None


def uid_of(name: str) -> int | None:
    """The uid a ``users`` entry means: a numeric id, or a name the user database knows
    (None: unknown)."""
    return _account_id(name, lambda user: pwd.getpwnam(user).pw_uid)


def gid_of(name: str) -> int | None:
    """The gid a ``groups`` entry means: a numeric id, or a name the group database knows
    (None: unknown)."""
    return _account_id(name, lambda group: grp.getgrnam(group).gr_gid)


def _parse_routing(table: Any) -> RoutingConfig:
    """``[routing]``; raises KeyError (unknown key) or ValueError naming the key first."""
    if not isinstance(table, dict):
        raise ValueError("routing must be a table [routing]")
    unknown = sorted(set(table) - _ROUTING_KEYS)
    if unknown:
        raise KeyError(unknown[0])
    routing = RoutingConfig()
    limits = {"table_base": (256, 0xFFFFFFFF - MAX_PVD_SLOTS),  # above main/local/default
              "rule_priority_base": (1, 32765 - 5),             # before main (32766)
              "mark_base": (0, 0xFFFFFFFF), "mark_mask": (1, 0xFFFFFFFF)}
    for key, (low, high) in limits.items():
        if key in table:
            value = table[key]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"{key} must be an integer from {low} to {high}")
            setattr(routing, key, value)
    if routing.mark_base & ~routing.mark_mask or \
            (routing.mark_base + MAX_PVD_SLOTS) & ~routing.mark_mask:
        raise ValueError(f"mark_base plus {MAX_PVD_SLOTS} PvD marks must fit inside mark_mask")
    return routing


def _deepest_line(text: str) -> int:
    """The line where brackets are nested deepest (strings are not told apart: an estimate for
    the message of a file too deeply nested for the TOML parser)."""
    depth = deepest = 0
    line = where = 1
    for char in text:
        if char == "\n":
            line += 1
        elif char in "[{":
            depth += 1
            if depth > deepest:
                deepest, where = depth, line
        elif char in "]}":
            depth -= 1
    return where


def parse_config(text: str, path: str) -> Config:
    """Parse the text of a configuration file; raises ConfigError."""
    try:
        data = tomllib.loads(text)
    except RecursionError:
        raise ConfigError(f"{path}: arrays or tables nested too deeply (line {_deepest_line(text)})") from None
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        if "line" not in message:
            message += f" (line {max(1, len(text.splitlines()))})"
        raise ConfigError(f"{path}: {message}") from None
    config = Config(path=path)
    unknown = sorted(set(data) - {"default", "pvd", "routing", "additional_info"})
    if unknown:
        line = _line_of(text, "", unknown[0])
        raise ConfigError(f"{path}: line {line}: unknown key {unknown[0]!r} "
                          "(expected 'default', [routing], [additional_info] or [pvd.NAME] tables)")
    if "additional_info" in data:
        try:
            config.info = _parse_info(data["additional_info"])
        except ValueError as exc:
            key = str(exc).split(":", 1)[0].split(" ", 1)[0]
            line = _section_line(text, "additional_info", key)
            raise ConfigError(f"{path}: line {line}: [additional_info]: {exc}") from None
    if "routing" in data:
        try:
            config.routing = _parse_routing(data["routing"])
        except KeyError as exc:
            line = _section_line(text, "routing", exc.args[0])
            raise ConfigError(f"{path}: line {line}: unknown key {exc.args[0]!r} in [routing]") from None
        except ValueError as exc:
            key = next((k for k in _ROUTING_KEYS if str(exc).startswith(k)), None)
            line = _section_line(text, "routing", key)
            raise ConfigError(f"{path}: line {line}: [routing]: {exc}") from None
    default = data.get("default")
    if default is not None and not isinstance(default, str):
        raise ConfigError(f"{path}: line {_line_of(text, '', 'default')}: default must be a string")
    config.default = default
    tables = data.get("pvd", {})
    if not isinstance(tables, dict):
        raise ConfigError(f"{path}: line {_line_of(text, '', 'pvd')}: pvd must be tables [pvd.NAME]")
    for name, table in tables.items():
        try:
            config.pvds.append(_parse_pvd(name, table))
        except KeyError as exc:
            key = exc.args[0]
            raise ConfigError(f"{path}: line {_line_of(text, name, key)}: unknown key {key!r} "
                              f"in [pvd.{name}]") from None
        except ValueError as exc:
            message = str(exc)
            key = next((k for k in _PVD_KEYS if message.startswith(k)), None)
            raise ConfigError(f"{path}: line {_line_of(text, name, key)}: [pvd.{name}]: "
                              f"{message}") from None
    if config.default is not None and config.default not in {p.name for p in config.pvds}:
        raise ConfigError(f"{path}: line {_line_of(text, '', 'default')}: default "
                          f"{config.default!r} is not a [pvd.NAME] in this file")
    return config


def load_config(explicit: str | None = None) -> Config:
    """Load the configuration file; a missing default file is an empty configuration."""
    path, required = config_path(explicit)
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        if required:
            raise ConfigError(f"{path}: no such configuration file") from None
        return Config()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    return parse_config(text, path)
