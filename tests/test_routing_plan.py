"""pvdd's routing layout and the [routing]/policy configuration, without root."""
from __future__ import annotations

import socket
from typing import Any

import pytest

from pvdrun.config import ConfigError, RoutingConfig, parse_config
from pvdrun.model import Pvd, Route
from pvdrun.routing.plan import (ACTION_LOOKUP, ACTION_UNREACHABLE, KIND_THROW, SlotTable, is_fail_closed,
                                 marker_route, marker_tag, needs_mark, plan_parked, plan_routes,
                                 plan_rules, pvd_tag)
from pvdrun.routing.firewall import plan_incoming, plan_marked, ruleset
from pvdrun.routing.policy import Credentials, may_use

CFG = RoutingConfig()


def pvd(pvd_id: str, ifname: str, addresses: list[str], shared: bool = False,
        restricted: bool = False) -> Pvd:
    result = Pvd(pvd_id=pvd_id, handle=1, interfaces=[ifname], ifindexes=[2], addresses=addresses,
                 needs_routing=shared,
                 routes=[Route(dst="default", gateway="fe80::1", ifname=ifname, metric=1024)])
    if restricted:
        result.attributes["policy"] = {"users": ["root"], "groups": [], "restricted": True}
    return result


def test_slots_are_stable_parked_and_reused_last() -> None:
    table = SlotTable()
    assert table.assign(["a", "b"]) == {"a": 0, "b": 1}
    assert table.assign(["b", "c"]) == {"b": 1, "c": 2}  # a's slot is parked, not given to c
    assert table.parked == {0: pvd_tag("a")}
    assert table.assign(["c", "a", "b"]) == {"a": 0, "b": 1, "c": 2}  # a gets its own slot back
    assert table.parked == {}


def test_parked_slots_are_reused_oldest_first_when_none_is_left() -> None:
    table = SlotTable()
    ids = [f"p{i}" for i in range(256)]
    table.assign(ids)
    table.assign(ids[2:])  # p0 then p1 parked
    assert table.assign(ids[2:] + ["new"])["new"] == 0
    assert table.parked == {1: pvd_tag("p1")}


def test_adopted_slots_go_back_to_their_pvds() -> None:
    """A new pvdd: slots found in the kernel (slot -> marker tag) are parked until their PvD
    is seen; a PvD listed first gets its earlier slot, not the lowest one."""
    table = SlotTable()
    table.adopt({0: pvd_tag("ispa"), 1: pvd_tag("ispb"), 2: None})
    assert table.assign(["ispb", "new", "ispa"]) == {"ispb": 1, "new": 3, "ispa": 0}
    assert table.parked == {2: None}  # unknown PvD: its slot stays failed closed


def test_marker_names_the_pvd_and_parked_slots_fail_closed() -> None:
    marker = marker_route(5007, pvd_tag("ispb.example"))
    assert marker.kind == KIND_THROW and marker.dst.startswith("100::") and marker.dst.endswith("/128")
    assert marker_tag(marker) == pvd_tag("ispb.example") != pvd_tag("ispa.example")
    rules, routes = plan_parked({7: pvd_tag("ispb.example"), 9: None}, CFG)
    assert routes == {marker}
    assert {(r.fwmark, r.action, r.priority) for r in rules} == {
        (0x5008, ACTION_UNREACHABLE, 5001), (0x500A, ACTION_UNREACHABLE, 5001)}
    assert all(is_fail_closed(r) for r in rules | routes)


def test_shared_link_rules_by_source_and_mark_only() -> None:
    a = pvd("a", "lan0", ["2001:db8:a::10/64"], shared=True)
    b = pvd("b", "lan0", ["2001:db8:b::10/64"], shared=True)
    rules = plan_rules([a, b], {"a": 0, "b": 1}, CFG)
    assert not [r for r in rules if r.oifname]  # a shared interface selects no PvD
    src = {(r.src, r.action, r.priority, r.table) for r in rules if r.src}
    assert src == {("2001:db8:a::10", ACTION_LOOKUP, 5003, 5000), ("2001:db8:a::10", ACTION_UNREACHABLE, 5004, 0),
                   ("2001:db8:b::10", ACTION_LOOKUP, 5003, 5001), ("2001:db8:b::10", ACTION_UNREACHABLE, 5004, 0)}
    marks = {(r.fwmark, r.action, r.priority) for r in rules if r.fwmark and r.family == socket.AF_INET6}
    assert marks == {(0x5001, ACTION_LOOKUP, 5000), (0x5001, ACTION_UNREACHABLE, 5001),
                     (0x5002, ACTION_LOOKUP, 5000), (0x5002, ACTION_UNREACHABLE, 5001)}
    assert needs_mark(a) and needs_mark(b)


def test_restricted_pvd_grants_nothing_without_its_mark() -> None:
    open_ = pvd("open", "ispa", ["192.0.2.10/24", "2001:db8:a::10/64"])
    secure = pvd("secure", "ispb", ["192.0.2.10/24", "2001:db8:b::10/64"], restricted=True)
    secure.ifindexes = [3]
    rules = plan_rules([open_, secure], {"open": 0, "secure": 1}, CFG)
    lookups = [r for r in rules if r.action == ACTION_LOOKUP and r.table == 5001]
    assert all(r.fwmark == 0x5002 for r in lookups) and lookups  # only the mark reaches its table
    assert {r.oifname for r in rules if r.action == ACTION_UNREACHABLE and r.oifname} == {"ispb"}
    assert not [r for r in rules if r.src == "192.0.2.10"]  # held by both PvDs: device binding decides
    assert not needs_mark(open_) and needs_mark(secure)


def test_routes_go_to_the_pvds_table() -> None:
    a = pvd("a", "lan0", ["2001:db8:a::10/64"])
    routes = plan_routes([a], {"a": 3}, CFG, {"lan0": 2})
    # its routes, and its link's link-local prefix (a link-local DNS server is reached there)
    assert {(r.table, r.dst, r.gateway, r.oif, r.family) for r in routes if not marker_tag(r)} == \
        {(5003, "default", "fe80::1", 2, socket.AF_INET6), (5003, "fe80::/64", None, 2, socket.AF_INET6)}
    assert {r for r in routes if marker_tag(r)} == {marker_route(5003, pvd_tag("a"))}
    assert not [r for r in routes if is_fail_closed(r) != bool(marker_tag(r))]


def test_pvd_table_holds_no_route_via_another_pvds_router() -> None:
    """Scenario 1 with a main-table host route to ISP B's DNS server via ISP A's router: B's
    table has no route via A's router, only B's own (test_discovery_assemble's state)."""
    from fixtures.kernel_state import RA_A, RA_B, shared_link_with_detour

    pvds = shared_link_with_detour()
    slots = {p.pvd_id: i for i, p in enumerate(pvds)}
    routes = plan_routes(pvds, slots, CFG, {"lan0": 2})
    table_b = 5000 + slots["ispb.example"]
    gateways = {r.gateway for r in routes if r.table == table_b}
    assert RA_A not in gateways and RA_B in gateways, gateways
    assert not [r for r in routes if r.dst == "2001:db8:b:1::53/128"]


def test_arriving_packets_are_marked_for_their_pvd() -> None:
    """By input interface where the PvD is alone on it (restricted or not, marked sockets or
    not), by interface and destination where it shares it; an address two PvDs hold, or a
    link-local one, names neither; no mark, no rule."""
    alone = pvd("alone", "ispa", ["192.0.2.10/24"])
    shared_a = pvd("a", "lan0", ["2001:db8:a::10/64", "fe80::10/64", "198.51.100.9/24"], shared=True)
    shared_b = pvd("b", "lan0", ["2001:db8:b::10/64", "198.51.100.9/24"], shared=True)
    rules = plan_incoming([alone, shared_a, shared_b], {"alone": 0x5001, "a": 0x5002}, CFG)
    unmarked = "meta mark & 0xffff == 0"
    assert rules == [f'iifname "ispa" {unmarked} meta mark set meta mark | 0x5001',
                     f'iifname "lan0" ip6 daddr 2001:db8:a::10 {unmarked} meta mark set meta mark | 0x5002']
    assert "prerouting" in ruleset([], rules) and "prerouting" not in ruleset([])


def test_marked_packets_leave_only_by_their_pvds_interfaces() -> None:
    """Every PvD with a mark (its slot's, else its own) gets a chain reached through one verdict
    map: its interfaces and lo only; where it shares its interface, its own sources only (an
    address two PvDs hold names neither; no IPv4 address: no IPv4 at all)."""
    alone = pvd("alone", "ispa", ["192.0.2.10/24"])
    alone.ifindexes = [3]
    shared_a = pvd("a", "lan0", ["2001:db8:a::10/64", "198.51.100.9/24"], shared=True)
    shared_b = pvd("b", "lan0", ["2001:db8:b::10/64"], shared=True)
    shared_a.mark = 0x5002
    chains = plan_marked([alone, shared_a, shared_b], {"alone": 0x5001, "b": 0x5003})
    assert chains == {  # by interface index (lo is 1 in every namespace; lan0 is 2 here)
        0x5001: ["oif != { 1, 3 } drop"],
        0x5002: ["oif != { 1, 2 } drop", "oif != 1 ip saddr != { 198.51.100.9 } drop",
                 "oif != 1 ip6 saddr != { 2001:db8:a::10, fe80::/10 } drop"],
        0x5003: ["oif != { 1, 2 } drop", "oif != 1 meta nfproto ipv4 drop",
                 "oif != 1 ip6 saddr != { 2001:db8:b::10, fe80::/10 } drop"]}
    text = ruleset([], None, chains, 0xFFFF)
    assert "meta mark & 0xffff vmap { 0x5001 : jump marked_5001, 0x5002 : jump marked_5002, " \
           "0x5003 : jump marked_5003 }" in text
    assert "chain marked_5003 {" in text and "vmap" not in ruleset([])


def test_sysctls_recorded_once_and_restored(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The values found are recorded before the first change only (a restart finds its own
    1); --cleanup writes them back and deletes the record; no record, nothing written."""
    from pvdrun.routing import sysctls

    monkeypatch.setattr(sysctls, "_proc_path", lambda name: str(tmp_path / name))
    for name in sysctls.WANTED:
        sysctls.write(name, "0")
    record = str(tmp_path / "record.json")
    assert sysctls.turn_on(record) == {name: "0" for name in sysctls.WANTED}
    assert sysctls.turn_on(record) == {} and all(sysctls.read(n) == "1" for n in sysctls.WANTED)
    assert sysctls.restore(record) == {name: "0" for name in sysctls.WANTED}
    assert all(sysctls.read(n) == "0" for n in sysctls.WANTED)
    assert sysctls.restore(record) == {}


def test_policy_users_groups_and_root() -> None:
    secure = pvd("s", "ispb", [], restricted=True)
    secure.attributes["policy"] = {"users": ["root"], "groups": ["1234"], "restricted": True}
    assert may_use(secure, Credentials(1, 0, 0))
    assert not may_use(secure, Credentials(1, 4321, 4321))
    assert may_use(secure, Credentials(1, 4321, 4321, frozenset({1234})))  # supplementary group
    assert may_use(pvd("o", "ispa", []), Credentials(1, 4321, 4321))  # unrestricted


def test_routing_config_and_defaults() -> None:
    config = parse_config("[routing]\ntable_base = 7000\nrule_priority_base = 900\n", "pvd.toml")
    assert (config.routing.table_base, config.routing.rule_priority_base) == (7000, 900)
    assert parse_config("", "pvd.toml").routing == RoutingConfig()


@pytest.mark.parametrize("text,line,words", [
    ("[routing]\ntable_base = 10\n", 2, "table_base must be an integer"),
    ("[routing]\n\ncolour = 1\n", 3, "unknown key 'colour' in [routing]"),
    ("[routing]\nmark_base = 0x10000\n", 2, "must fit inside mark_mask"),
    ("[routing]\nrule_priority_base = 32766\n", 2, "rule_priority_base must be"),
    ("[pvd.a]\ninterface = \"x\"\nusers = [\"no-such-user-pvdrun\"]\n", 3, "unknown user 'no-such-user-pvdrun'"),
    ("[pvd.a]\ninterface = \"x\"\n\ngroups = [\"no-such-group-pvdrun\"]\n", 4, "unknown group"),
    ("[pvd.a]\ninterface = \"x\"\nrestricted = \"yes\"\n", 3, "restricted must be true or false"),
])
def test_bad_routing_or_policy_config_names_line(text: str, line: int, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "pvd.toml")
    assert f"pvd.toml: line {line}:" in str(info.value) and words in str(info.value), str(info.value)
