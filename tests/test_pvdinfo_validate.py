"""PvD Additional Information validation (RFC 8801 section 4), and the object's accessors.

No root, no network: pvdrun.pvdinfo.validate and pvdrun.pvdinfo.model only."""
from __future__ import annotations

import ipaddress
import json
from datetime import UTC, datetime

import pytest
from fixtures.property_settings import PROPERTY
from hypothesis import given
from hypothesis import strategies as st

from pvdrun.pvdinfo import AdditionalInfo, InfoError, InvalidInfo, validate
from pvdrun.pvdinfo.validate import MAX_BYTES, parse_expires

PVD = "pvd.example.net"
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC).timestamp()
CT = "application/pvd+json"


def body(**fields: object) -> bytes:
    data = {"identifier": PVD, "expires": "2026-12-02T13:00:00Z", "prefixes": ["2001:db8:1::/48"]}
    data.update(fields)
    return json.dumps({k: v for k, v in data.items() if v is not None}).encode()


def check(raw: bytes, announced: list[str] | None = None, content_type: str | None = CT) -> dict:
    return validate(PVD, raw, content_type, ["2001:db8:1:2::/64"] if announced is None else announced, NOW)


def test_valid_object_is_returned_whole() -> None:
    data = check(body())
    assert data["identifier"] == PVD and data["prefixes"] == ["2001:db8:1::/48"]


def test_unknown_keys_are_kept() -> None:
    data = check(body(**{"x-vendor": {"a": [1, 2]}, "futureKey": True}))
    assert data["x-vendor"] == {"a": [1, 2]} and data["futureKey"] is True


@pytest.mark.parametrize("identifier", ["other.example.net", "pvd.example.ne", "", 42])
def test_wrong_identifier(identifier: object) -> None:
    with pytest.raises(InvalidInfo, match="identifier"):
        check(body(identifier=identifier))


def test_identifier_compares_as_a_dns_name() -> None:
    assert check(body(identifier="PVD.Example.NET."))["identifier"] == "PVD.Example.NET."


def test_missing_identifier() -> None:
    raw = json.dumps({"expires": "2026-12-02T13:00:00Z", "prefixes": []}).encode()
    with pytest.raises(InvalidInfo, match="identifier"):
        check(raw, announced=[])


@pytest.mark.parametrize("expires", ["2026-12-02T11:59:59Z", "2026-12-02T12:00:00Z", "2026-12-02T13:00:00+02:00"])
def test_expired(expires: str) -> None:
    with pytest.raises(InvalidInfo, match="expired"):
        check(body(expires=expires))


@pytest.mark.parametrize("expires", ["tomorrow", "2026-12-03", "2026-12-03T10:00:00", 1798000000, None,
                                     "2026-13-03T10:00:00Z"])
def test_expires_not_rfc3339(expires: object) -> None:
    with pytest.raises(InvalidInfo, match="expires"):
        check(body(expires=expires) if expires is not None else
              json.dumps({"identifier": PVD, "prefixes": ["2001:db8:1::/48"]}).encode())


def test_expires_with_offset_and_fraction() -> None:
    assert parse_expires("2026-12-02T14:00:00.250+01:00") == NOW + 3600.25


def test_prefixes_that_do_not_cover() -> None:
    with pytest.raises(InvalidInfo, match="2001:db8:2::/64"):
        check(body(prefixes=["2001:db8:1::/48"]), announced=["2001:db8:1::/64", "2001:db8:2::/64"])


def test_shorter_announced_prefix_is_not_covered_by_a_longer_listed_one() -> None:
    with pytest.raises(InvalidInfo, match="prefixes"):
        check(body(prefixes=["2001:db8:1:2::/64"]), announced=["2001:db8:1::/48"])


def test_prefix_exactly_equal() -> None:
    assert check(body(prefixes=["2001:db8:1:2::/64"]), announced=["2001:db8:1:2::/64"])


def test_longer_announced_prefix_inside_a_shorter_listed_one() -> None:
    assert check(body(prefixes=["2001:db8::/32"]), announced=["2001:db8:1:2::/64", "2001:db8:ff::/56"])


@pytest.mark.parametrize("prefixes", ["2001:db8::/32", ["not a prefix"], [42], None])
def test_prefixes_malformed(prefixes: object) -> None:
    with pytest.raises(InvalidInfo, match="prefixes"):
        check(body(prefixes=prefixes) if prefixes is not None else
              json.dumps({"identifier": PVD, "expires": "2026-12-02T13:00:00Z"}).encode())


@pytest.mark.parametrize("raw", [b"{", b"not json", b"", b'{"identifier": NaN}', b"\xff\xfe{}",
                                 b'{"identifier": "a", "identifier": "b"}'])
def test_invalid_json(raw: bytes) -> None:
    with pytest.raises(InvalidInfo, match="JSON|UTF-8|twice"):
        check(raw)


@pytest.mark.parametrize("raw", [b"[]", b'[{"identifier": "pvd.example.net"}]', b'"text"', b"3", b"null"])
def test_json_that_is_not_an_object(raw: bytes) -> None:
    with pytest.raises(InvalidInfo, match="not an object"):
        check(raw)


def test_oversize() -> None:
    raw = body(padding="x" * MAX_BYTES)
    with pytest.raises(InvalidInfo, match="64 KiB"):
        check(raw)


def test_just_under_the_cap_is_fine() -> None:
    raw = body(padding="")
    raw = body(padding="x" * (MAX_BYTES - len(raw)))
    assert len(raw) == MAX_BYTES
    assert check(raw)["padding"]


@pytest.mark.parametrize("content_type", [None, "", "application/json", "text/html", "application/pvd+jsonx"])
def test_wrong_content_type(content_type: str | None) -> None:
    with pytest.raises(InvalidInfo, match="content type"):
        check(body(), content_type=content_type)


@pytest.mark.parametrize("content_type", ["application/pvd+json; charset=utf-8", "Application/PvD+JSON"])
def test_content_type_parameters_and_case(content_type: str) -> None:
    assert check(body(), content_type=content_type)


def test_invalid_info_is_an_info_error_with_one_line() -> None:
    with pytest.raises(InfoError) as caught:
        check(body(identifier="x\ny"))
    assert "\n" not in str(caught.value).replace("\\n", "")


# -- properties -----------------------------------------------------------------------------------
_v6_prefix = st.builds(lambda addr, plen: ipaddress.ip_network(f"{addr}/{plen}", strict=False),
                       st.ip_addresses(v=6), st.integers(0, 128))


@PROPERTY
@given(listed=st.lists(_v6_prefix, max_size=4), announced=st.lists(_v6_prefix, max_size=4))
def test_coverage_is_subnet_of_some_listed_prefix(listed: list, announced: list) -> None:
    """Accepted exactly when every announced prefix lies inside some listed one."""
    raw = body(prefixes=[str(p) for p in listed])
    covered = all(any(a.subnet_of(l) for l in listed) for a in announced)
    try:
        check(raw, announced=[str(a) for a in announced])
        accepted = True
    except InvalidInfo:
        accepted = False
    assert accepted == covered


@PROPERTY
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_invalid_info(raw: bytes) -> None:
    try:
        data = check(raw)
    except InvalidInfo as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert isinstance(data, dict)


# -- AdditionalInfo ---------------------------------------------------------------------------------
def info(**fields: object) -> AdditionalInfo:
    data = check(body(**fields))
    return AdditionalInfo(pvd_id=PVD, sequence=3, data=data, fetched_at=NOW, expires=parse_expires(data["expires"]))


def test_accessors() -> None:
    item = info(name="Cafe", noInternet=True, metered=True, dnsZones=["corp.example", 5],
                splitDNSClaims=["intra.example"], captivePortalURL="https://portal.example/api",
                proxies=[{"proxyType": "http", "proxyLocation": "proxy.example:3128"}])
    assert item.name == "Cafe" and item.no_internet and item.metered
    assert item.dns_zones == ["corp.example"] and item.split_dns_claims == ["intra.example"]
    assert item.captive_portal_url == "https://portal.example/api"
    assert item.proxies == [{"proxyType": "http", "proxyLocation": "proxy.example:3128"}]
    assert item.prefixes == ["2001:db8:1::/48"]
    assert item.expires == NOW + 3600


def test_accessor_defaults() -> None:
    item = info(noInternet="yes")
    assert item.name is None and item.no_internet is False and item.metered is False
    assert item.dns_zones == [] and item.split_dns_claims == [] and item.captive_portal_url is None
    assert item.proxies == []


def test_round_trip_is_json_safe() -> None:
    item = info(**{"x-extra": {"nested": [1, None, "a"]}})
    text = json.dumps(item.to_dict())
    again = AdditionalInfo.from_dict(json.loads(text))
    assert again == item and again.data["x-extra"] == {"nested": [1, None, "a"]}
