"""What RFC 8801 Additional Information changes, without the network: the PvD model's view of
it, the zone a name belongs to, the launcher's note and proxy variables, the configuration's
[additional_info], and the default PvD never being one without Internet.  The fetches and
pvdd's use of them against the lab's servers: tests/test_pvdinfo_lab.py."""
from __future__ import annotations

import pytest

from pvdrun.config import ConfigError, parse_config
from pvdrun.discovery.zones import claimant
from pvdrun.launch_rules import launch_note, needs_python_launcher, proxy_environment
from pvdrun.model import Pvd

PROXY = {"protocol": "http-connect", "proxy": "proxy.ispb.example:3128"}


def pvd(pvd_id: str, **info: object) -> Pvd:
    return Pvd(pvd_id=pvd_id, handle=1, explicit=True, flags={"H": True}, sequence=1,
               additional_info={"identifier": pvd_id, **info} if info else None)


def test_model_views_and_round_trip() -> None:
    p = pvd("ispa.example", noInternet=True, metered=True, dnsZones=["ispa.example", 7],
            captivePortalURL="https://portal.ispa.example/", proxies=[PROXY, "junk"], futureKey={"x": 1})
    assert p.no_internet and p.metered and p.dns_zones == ["ispa.example"]
    assert p.captive_portal_url == "https://portal.ispa.example/" and p.proxies == [PROXY]
    again = Pvd.from_dict(p.to_dict())
    assert again.additional_info == p.additional_info and again.additional_info["futureKey"] == {"x": 1}
    plain = pvd("ispc.example")
    assert not plain.no_internet and plain.dns_zones == [] and plain.proxies == [] and plain.to_dict()["additional_info"] is None
    assert not pvd("x", noInternet="yes").no_internet, "only JSON true means true"


def test_the_longest_claimed_zone_wins_else_none() -> None:
    a = pvd("ispa.example", dnsZones=["ispa.example"])
    b = pvd("ispb.example", dnsZones=["example"], splitDnsClaims=["corp.ispa.example."])
    pvds = [a, b]
    assert claimant(pvds, "intranet.ispa.example")[0] is a
    assert claimant(pvds, "INTRANET.ISPA.EXAMPLE.")[0] is a
    assert claimant(pvds, "x.corp.ispa.example") == (b, "corp.ispa.example")
    assert claimant(pvds, "svc.example")[0] is b
    assert claimant(pvds, "notispa.example")[0] is b, "a zone matches at a label boundary only"
    assert claimant(pvds, "example.org") is None


def test_launch_note_and_proxy_variables() -> None:
    assert "reaches no Internet" in launch_note(pvd("ispa.example", noInternet=True))
    assert launch_note(pvd("ispb.example")) is None
    env = proxy_environment(pvd("ispb.example", proxies=[{"protocol": "connect-udp", "proxy": "https://p/{x}"}, PROXY]))
    assert env["http_proxy"] == env["https_proxy"] == env["HTTPS_PROXY"] == "http://proxy.ispb.example:3128"
    assert "HTTP_PROXY" not in env and env["no_proxy"] == env["NO_PROXY"] == "localhost,127.0.0.1,::1"
    assert proxy_environment(pvd("ispb.example", proxies=[{"protocol": "http-connect", "proxy": "a b:1"}])) == {}
    assert needs_python_launcher(pvd("ispb.example", proxies=[PROXY]))
    assert not needs_python_launcher(pvd("ispb.example", name="B"))


@pytest.mark.parametrize("text, message", [
    ("[additional_info]\nfetch = 1\n", "fetch must be true or false"),
    ("[additional_info]\nca_file = \"rel.pem\"\n", "absolute path"),
    ("[additional_info]\nbogus = 1\n", "bogus: unknown key"),
    ("additional_info = 3\n", "must be a table"),
])
def test_config_additional_info_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(text, "pvd.toml")


def test_config_additional_info() -> None:
    assert parse_config("", "f").info.fetch is True and parse_config("", "f").info.ca_file is None
    info = parse_config("[additional_info]\nfetch = false\nca_file = \"/etc/pvd/ca.pem\"\n", "f").info
    assert info.fetch is False and info.ca_file == "/etc/pvd/ca.pem"
