"""The RFC 8801 RA builder of the lab (pvdrun/lab/ra.py): wire format, no root needed."""
from __future__ import annotations

from pvdrun.lab import ra as ra_wire


def test_ra_builder_wire_format() -> None:
    """RFC 8801 §3.1 layout: flags/delay word, sequence, FQDN, padding, R header, nested."""
    nested = ra_wire.build_rdnss(["2001:db8::53"])
    option = ra_wire.build_pvd_option("isp.example", sequence=0x1234, h=True, delay=5,
                                      options=nested)
    assert option[0] == 21 and option[1] * 8 == len(option)
    assert option[2:4] == bytes([0x80, 0x05]) and option[4:6] == b"\x12\x34"
    assert option[6:19] == b"\x03isp\x07example\x00" and option[19:24] == b"\0" * 5
    assert option[24:] == nested
    header = ra_wire.build_ra_header(router_lifetime=0)
    with_r = ra_wire.build_pvd_option("isp.example", r=True, ra_header=header)
    assert with_r[24:40] == header and with_r[2] & 0x20
    parsed = ra_wire.parse_ra(ra_wire.build_ra([option]))["options"][0]
    assert (parsed["pvd_id"], parsed["h"], parsed["delay"]) == ("isp.example", True, 5)
    assert ra_wire.build_pvd_option("x.example", length=1)[1] == 1  # malformed on purpose


def test_dns_wire_fqdn_round_trip() -> None:
    wire = ra_wire.encode_fqdn("ispa.example.")
    assert wire == b"\x04ispa\x07example\x00"
    assert ra_wire.decode_fqdn(wire + b"junk") == ("ispa.example", len(wire))


def test_lab_ra_nests_options_and_sequence_follows_content() -> None:
    spec = {"pvd_id": "ispa.example", "prefix": "2001:db8:a::/64", "routes": ["2001:db8:a:1::/64"],
            "rdnss": ["2001:db8:a:1::53"], "dnssl": ["ispa.example"], "router_lifetime": 1800,
            "top_level_routes": True}
    ra = ra_wire.parse_ra(ra_wire.build_pvd_ra(spec))
    assert ra["router_lifetime"] == 1800
    pvd, rio = ra["options"]
    assert (pvd["type"], rio["type"]) == (ra_wire.OPT_PVD, ra_wire.OPT_RIO)
    assert [o["type"] for o in pvd["options"]] == [3, 24, 25, 31]
    again = ra_wire.parse_ra(ra_wire.build_pvd_ra(dict(spec)))["options"][0]
    changed = ra_wire.parse_ra(ra_wire.build_pvd_ra({**spec, "dnssl": ["other.example"]}))
    assert again["sequence"] == pvd["sequence"] != changed["options"][0]["sequence"]
