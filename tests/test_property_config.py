"""Property tests of the pvd.toml parser (pvdrun/config.py).

- Round trip: a configuration generated from the schema, written as TOML, parses back to
  the same PvDs, default and [routing].
- Robustness: any text, schema-shaped documents with values of the wrong type or out of
  range, and mutations of valid files either parse or raise ConfigError naming the file and
  a line, never another exception.
"""
from __future__ import annotations

import ipaddress
import json
import re
from typing import Any

import pytest
from hypothesis import example, given, strategies as st

from fixtures.property_settings import PROPERTY
from pvdrun.config import MAX_PVD_SLOTS, Config, ConfigError, parse_config

PATH = "/etc/pvd/pvd.toml"
KINDS = ["wifi", "ethernet", "cellular", "vpn"]


# -- a small TOML writer for the subset the schema uses ------------------------------------
def toml_string(text: str) -> str:
    out = json.dumps(text, ensure_ascii=False)  # escapes quotes, backslashes, C0 controls
    return out.replace("\x7f", "\\u007f")


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_string(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def to_toml(doc: dict[str, Any]) -> str:
    """Top-level scalars, then [routing], then [pvd."NAME"] tables (attributes inline)."""
    lines = [f"{toml_string(k)} = {toml_value(v)}" for k, v in doc.items()
             if k not in ("pvd", "routing") or not isinstance(v, dict)]
    if isinstance(doc.get("routing"), dict):
        lines.append("[routing]")
        lines += [f"{toml_string(k)} = {toml_value(v)}" for k, v in doc["routing"].items()]
    if isinstance(doc.get("pvd"), dict):
        for name, table in doc["pvd"].items():
            if isinstance(table, dict):
                lines.append(f"[pvd.{toml_string(name)}]")
                lines += [f"{toml_string(k)} = {toml_value(v)}" for k, v in table.items()]
            else:
                lines.append(f"pvd.{toml_string(name)} = {toml_value(table)}")
    return "\n".join(lines) + "\n"


# -- strategies --------------------------------------------------------------------------
scalars = (st.booleans() | st.integers(-2 ** 63, 2 ** 63 - 1)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)
label = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=10)
hostname = st.lists(label, min_size=1, max_size=3).map(".".join)
pvd_name = st.tuples(st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789"),
                     st.text("abcdefghijklmnopqrstuvwxyz0123456789_.:-", max_size=10)).map(
    "".join).filter(lambda n: n != "null")
ip = (st.integers(0, 2 ** 32 - 1).map(lambda i: str(ipaddress.IPv4Address(i)))
      | st.integers(0, 2 ** 128 - 1).map(lambda i: str(ipaddress.IPv6Address(i))))


@st.composite
def valid_pvd(draw: st.DrawFn) -> dict[str, Any]:
    table: dict[str, Any] = {}
    if draw(st.booleans()):
        table["interface"] = draw(st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1,
                                          max_size=15))
    if draw(st.booleans()) or "interface" not in table:
        table["pvd_id"] = draw(hostname.map(lambda h: h.upper() if len(h) % 2 else h + "."))
    if draw(st.booleans()):
        table["kind"] = draw(st.sampled_from(KINDS))
    if draw(st.booleans()):
        table["dns"] = draw(st.lists(ip, max_size=3))
    if draw(st.booleans()):
        table["search"] = draw(st.lists(hostname, max_size=3))
    if draw(st.booleans()):
        table["users"] = draw(st.lists(st.sampled_from(["root", "0", "65534"]), max_size=2))
        table["groups"] = draw(st.lists(st.sampled_from(["root", "0"]), max_size=2))
        table["restricted"] = draw(st.booleans())
    if draw(st.booleans()):
        table["attributes"] = draw(st.dictionaries(st.text(max_size=6), scalars, max_size=3))
    return table


@st.composite
def valid_docs(draw: st.DrawFn) -> dict[str, Any]:
    pvds = draw(st.dictionaries(pvd_name, valid_pvd(), max_size=4))
    doc: dict[str, Any] = {}
    if pvds and draw(st.booleans()):
        doc["default"] = draw(st.sampled_from(sorted(pvds)))
    if draw(st.booleans()):
        mask_bits = draw(st.integers(9, 32))
        mask = (1 << mask_bits) - 1
        doc["routing"] = {"table_base": draw(st.integers(256, 0xFFFFFFFF - MAX_PVD_SLOTS)),
                          "rule_priority_base": draw(st.integers(1, 32765 - 5)),
                          "mark_base": draw(st.integers(0, mask - MAX_PVD_SLOTS)),
                          "mark_mask": mask}
    doc["pvd"] = pvds
    return doc


@st.composite
def schema_shaped_docs(draw: st.DrawFn) -> dict[str, Any]:
    """The schema's keys with values of any type, plus unknown keys now and then."""
    doc = draw(valid_docs())
    pvd_keys = ["interface", "pvd_id", "kind", "dns", "search", "users", "groups", "restricted",
                "attributes", "bogus"]
    for table in doc["pvd"].values():
        for _ in range(draw(st.integers(0, 3))):
            table[draw(st.sampled_from(pvd_keys))] = draw(values)
    if draw(st.booleans()):
        routing = doc.setdefault("routing", {})
        routing[draw(st.sampled_from(["table_base", "rule_priority_base", "mark_base",
                                      "mark_mask", "bogus"]))] = draw(values)
    if draw(st.booleans()):
        doc[draw(st.sampled_from(["default", "routing", "bogus"]))] = draw(values)
    if draw(st.booleans()):
        doc["pvd"][draw(st.text(max_size=8))] = draw(values)
    return doc


@st.composite
def mutated_texts(draw: st.DrawFn) -> str:
    text = to_toml(draw(valid_docs()))
    for _ in range(draw(st.integers(1, 5))):
        at = draw(st.integers(0, len(text)))
        edit = draw(st.sampled_from(["insert", "delete", "replace"]))
        piece = draw(st.sampled_from(['"', "'", "[", "]", "=", "\n", ".", "#", "\\", "{", "}",
                                      ",", "x", "0"]) | st.text(max_size=3))
        if edit == "insert":
            text = text[:at] + piece + text[at:]
        elif edit == "delete":
            text = text[:at] + text[at + len(piece) + 1:]
        else:
            text = text[:at] + piece + text[at + len(piece):]
    return text


def parse_or_config_error(text: str) -> Config | None:
    try:
        config = parse_config(text, PATH)
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith(f"{PATH}: "), message
        assert "line" in message, message
        return None
    assert config.path == PATH
    names = [p.name for p in config.pvds]
    assert len(names) == len(set(names)) and "null" not in names
    assert config.default is None or config.default in names
    for pvd in config.pvds:
        assert pvd.interface or pvd.pvd_id
        assert pvd.kind is None or pvd.kind in KINDS
    routing = config.routing
    assert routing.mark_base & ~routing.mark_mask == 0
    return config


# -- properties --------------------------------------------------------------------------
@PROPERTY
@given(valid_docs())
def test_round_trip(doc: dict[str, Any]) -> None:
    config = parse_config(to_toml(doc), PATH)
    assert config.default == doc.get("default")
    assert [p.name for p in config.pvds] == list(doc["pvd"])
    for pvd, table in zip(config.pvds, doc["pvd"].values()):
        assert pvd.interface == table.get("interface")
        pvd_id = table.get("pvd_id")
        assert pvd.pvd_id == (pvd_id.lower().rstrip(".") if pvd_id else None)
        assert pvd.kind == table.get("kind")
        assert pvd.dns == table.get("dns")
        assert pvd.search == table.get("search")
        assert pvd.users == table.get("users", []) and pvd.groups == table.get("groups", [])
        assert pvd.restricted == table.get("restricted", False)
        assert pvd.attributes == table.get("attributes", {})
    for key, value in doc.get("routing", {}).items():
        assert getattr(config.routing, key) == value


@PROPERTY
@given(st.text(max_size=300))
@example("")
@example("[pvd]\n")
@example("pvd = 1\n")
@example("[pvd.a]\n")
@example('default = "a"\n')
@example("[routing]\nmark_base = 0xffff0000\n")
def test_any_text_parses_or_raises_config_error(text: str) -> None:
    parse_or_config_error(text)


@PROPERTY
@given(schema_shaped_docs())
def test_wrong_types_raise_config_error(doc: dict[str, Any]) -> None:
    parse_or_config_error(to_toml(doc))


@PROPERTY
@given(mutated_texts())
def test_mutated_files_parse_or_raise_config_error(text: str) -> None:
    parse_or_config_error(text)


@pytest.mark.parametrize("text", ["x = " + "[" * 5000 + "]" * 5000,
                                  "x = " + "{a = " * 3000 + "1" + "}" * 3000],
                         ids=["array", "inline-table"])
def test_deep_nesting_is_a_config_error(text: str) -> None:
    try:
        result = parse_or_config_error(text)
    except RecursionError:  # reported without its 1,000-frame traceback
        pytest.fail("RecursionError escaped parse_config", pytrace=False)
    assert result is None


@PROPERTY
@given(st.text(max_size=12))
@example("work\n")
def test_accepted_pvd_names_are_plain(name: str) -> None:
    """A [pvd.NAME] accepted has a name of the documented characters only."""
    config = parse_or_config_error(to_toml({"pvd": {name: {"interface": "eth0"}}}))
    for pvd in config.pvds if config else []:
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.:\-]*", pvd.name), repr(pvd.name)
