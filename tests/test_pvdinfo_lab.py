"""RFC 8801 Additional Information end to end: pvdd fetching it from the lab's servers (scenario
2: both ISPs' PvDs on the host's one link, each ISP serving its object over HTTPS with a
certificate from the lab's CA), and what it changes.

* pvdd holds each ISP's object (every key), fetched inside the PvD: a capture on ISP B's link
  holds nothing of ISP A's fetch, which ISP A's link carries (from A's address, to A's server);
* ``noInternet`` (ISP A): never the default PvD (the rule's control: the same table without
  it makes ISP A the default, by ID), and a launch in ISP A says so;
* ``proxies`` (ISP B): a launched curl goes through ISP B's tinyproxy (its log shows the
  request); not with ``--no-proxy-env``, nor over a proxy the user set;
* ``dnsZones``: ``pvdrun resolve`` without ``--pvd`` asks the ISP claiming the zone (a
  split-horizon name only that ISP answers);
* the schedule: a Sequence Number change is exactly one new fetch; a flood of changes is at
  most one fetch per 10 s; a bad object (wrong identifier, expired, prefixes that do not
  cover, invalid JSON, oversize) is one log line, and the PvD stays usable, with its last
  valid object.

Counting fetches: each ISP's server writes one line per request to its log (lab status).
"""
from __future__ import annotations

import json
import os
import subprocess
import time
from typing import Any, Iterator

import pytest

from fixtures.capture import assert_caught, assert_no_leak
from fixtures.commands import PVDRUN
from fixtures.lab import Lab
from fixtures.netns import wait_for
from fixtures.pvdd import Pvdd
from fixtures.pvdinfo_lab import FETCHED_WITHIN, info_lab, objects, run
from pvdrun import lab as lab_api


def fetches(lab: Lab, isp: str) -> int:
    """Requests ISP ``isp``'s Additional Information server has had."""
    path = lab_api.status(lab.name)["isps"][isp]["pvd_info"]["log"]
    try:
        with open(path, encoding="utf-8") as handle:
            return sum(1 for line in handle if line.strip())
    except FileNotFoundError:
        return 0


def pvd_info(lab: Lab, isp: str, *args: str) -> None:
    subprocess.run([PVDRUN, "lab", "pvd-info", "--name", lab.name, isp, *args], check=True,
                   capture_output=True, text=True, timeout=60)


def fetch_once_more(lab: Lab, isp: str, *args: str) -> int:
    """Change ISP ``isp``'s object (``args``), bump its Sequence Number, wait for the one fetch
    that follows; the fetch count after it."""
    before = fetches(lab, isp)
    pvd_info(lab, isp, *args, "--bump-sequence")
    return wait_for(lambda: fetches(lab, isp) > before and fetches(lab, isp), timeout=FETCHED_WITHIN,
                    what=f"{isp}'s server fetched again")


@pytest.fixture(scope="module")
def ilab() -> Iterator[tuple[Lab, Pvdd]]:
    with info_lab("pvi") as made:
        yield made


@pytest.mark.root
def test_pvdd_holds_each_isps_object(ilab: tuple[Lab, Pvdd]) -> None:
    lab, daemon = ilab
    held = objects(daemon)
    for isp in ("ispa", "ispb"):
        served = json.loads(subprocess.run([PVDRUN, "lab", "pvd-info", "--name", lab.name, isp], check=True,
                                           capture_output=True, text=True, timeout=60).stdout)
        assert held[lab.isp(isp)["pvd_id"]] == served, (isp, held)
    shown = run(lab, daemon, [PVDRUN, "show", "ispa.example"])
    assert "no Internet:  yes (never the default PvD)" in shown.stdout, shown.stdout
    assert '"noInternet": true' in run(lab, daemon, [PVDRUN, "show", "--json", "ispa.example"]).stdout


@pytest.mark.root
def test_no_internet_pvd_is_never_the_default(ilab: tuple[Lab, Pvdd]) -> None:
    """Without the lab's IPv4 default route (whose implicit PvD is the default otherwise), the
    two ISPs' PvDs share one IPv6 default route and ISP A would win the tie by ID: it says
    noInternet, so ISP B is the default.  Control: ISP A without it is the default."""
    lab, daemon = ilab
    route = lab.exec(["ip", "-4", "route", "show", "default"], check=True).stdout.split()
    lab.exec(["ip", "-4", "route", "del", "default"], check=True)
    default = lambda: daemon.request({"v": 1, "op": "list"})["default"]  # noqa: E731
    try:
        wait_for(lambda: default() == "ispb.example", timeout=10, what="ispb the default")
        fetch_once_more(lab, "ispa", "--set", "noInternet=false")
        wait_for(lambda: default() == "ispa.example", timeout=10, what="ispa the default without noInternet")
        fetch_once_more(lab, "ispa", "--set", "noInternet=true")
        wait_for(lambda: default() == "ispb.example", timeout=10, what="ispb the default again")
    finally:
        lab.exec(["ip", "-4", "route", "replace", *route])


@pytest.mark.root
def test_launch_in_a_no_internet_pvd_says_so(ilab: tuple[Lab, Pvdd]) -> None:
    lab, daemon = ilab
    done = run(lab, daemon, [PVDRUN, "--pvd", "ispa.example", "true"], PVDRUN_LAUNCHER_TRACE="1")
    assert done.returncode == 0 and "reaches no Internet" in done.stderr, done
    assert "Additional Information needs the Python launcher" in done.stderr, done.stderr
    assert "reaches no Internet" not in run(lab, daemon, [PVDRUN, "--pvd", "ispb.example", "true"]).stderr
    plain = run(lab, daemon, [PVDRUN, "--pvd", "implicit:lan0", "true"], PVDRUN_LAUNCHER_TRACE="1")
    assert plain.returncode == 0 and "native launcher: exec" in plain.stderr, plain.stderr


def proxy_log(lab: Lab) -> str:
    with open(lab.isp("ispb")["proxy"]["log"], encoding="utf-8", errors="replace") as handle:
        return handle.read()


@pytest.mark.root
def test_launched_curl_uses_the_pvds_proxy(ilab: tuple[Lab, Pvdd]) -> None:
    """curl in ISP B gets http_proxy from ISP B's object: tinyproxy's log shows its request.
    --no-proxy-env: not through the proxy.  A proxy the user set wins (here one that refuses:
    the request fails, and tinyproxy sees nothing)."""
    lab, daemon = ilab
    service = lab.isp("ispb")["service_v6"]
    marker = f"/through-the-proxy-{os.getpid()}"
    curl = ["curl", "-sS", "-m", "10", "-o", "/dev/null", f"http://[{service}]{marker}"]
    done = run(lab, daemon, [PVDRUN, "--pvd", "ispb.example", *curl])
    assert done.returncode == 0, done.stderr
    wait_for(lambda: marker in proxy_log(lab), timeout=5, what="tinyproxy logging the request")
    quiet = f"/not-through-the-proxy-{os.getpid()}"
    direct = [*curl[:-1], f"http://[{service}]{quiet}"]
    done = run(lab, daemon, [PVDRUN, "--pvd", "ispb.example", "--no-proxy-env", *direct])
    assert done.returncode == 0, done.stderr
    users = [*curl[:-1], f"http://[{service}]{quiet}-user"]
    done = run(lab, daemon, [PVDRUN, "--pvd", "ispb.example", *users], http_proxy="http://[::1]:9")
    assert done.returncode != 0, "the user's proxy (which refuses) was not used"
    time.sleep(1)
    assert quiet not in proxy_log(lab)


@pytest.mark.root
def test_resolve_without_pvd_asks_the_isp_claiming_the_zone(ilab: tuple[Lab, Pvdd]) -> None:
    lab, daemon = ilab
    for name, isp in (("intranet.ispa.example", "ispa.example"), ("mail.ispb.example", "ispb.example")):
        done = run(lab, daemon, [PVDRUN, "resolve", name])
        assert done.returncode == 0 and f"claims {isp}" in done.stderr, done
        other = "ispb.example" if isp == "ispa.example" else "ispa.example"
        control = run(lab, daemon, [PVDRUN, "resolve", "--pvd", other, name])
        assert control.returncode != 0, f"{other} answers {name} too: the claim proves nothing"


@pytest.mark.root
def test_fetch_stays_inside_its_pvd(ilab: tuple[Lab, Pvdd]) -> None:
    """ISP A's object fetched while both ISPs' links are captured: ISP A's link carries the
    fetch (to A's server); ISP B's link holds nothing from ISP A's addresses or to A's server."""
    lab, daemon = ilab
    server = lab_api.status(lab.name)["isps"]["ispa"]["pvd_info"]["addresses"]
    server_v6 = [a for a in server if ":" in a]
    mine, theirs = set(lab.isp("ispa")["host_addresses"]), set(lab.isp("ispb")["host_addresses"])
    with lab.capture("ispa") as own, lab.capture("ispb") as other:
        fetch_once_more(lab, "ispa")
    assert_caught(own, destinations=server_v6)
    assert_no_leak(other, sources=sorted(mine - theirs), quiet=sorted(mine & theirs), destinations=server)


@pytest.mark.root
def test_sequence_change_is_exactly_one_fetch(ilab: tuple[Lab, Pvdd]) -> None:
    lab, daemon = ilab
    after = fetch_once_more(lab, "ispb")
    time.sleep(12)  # past the 10 s floor: a second fetch would be in by now
    assert fetches(lab, "ispb") == after


@pytest.mark.root
def test_a_flood_of_sequence_changes_is_one_fetch_per_10_s(ilab: tuple[Lab, Pvdd]) -> None:
    lab, daemon = ilab
    time.sleep(10)  # the floor from the last fetch has passed
    before = fetches(lab, "ispb")
    began = time.monotonic()
    while time.monotonic() - began < 15:
        pvd_info(lab, "ispb", "--bump-sequence")
        time.sleep(0.3)
    elapsed = time.monotonic() - began
    got = fetches(lab, "ispb") - before
    assert 1 <= got <= int(elapsed // 10) + 1, f"{got} fetches in {elapsed:.0f} s of changes"


def _bad_bodies(good: bytes) -> list[tuple[str, bytes, str]]:
    """(what, body, a word pvdd's line must hold) for each bad object, made from the good one."""
    def edited(**changes: Any) -> bytes:
        return json.dumps({**json.loads(good), **changes}).encode()

    return [("wrong identifier", edited(identifier="evil.example"), "identifier"),
            ("expired", edited(expires="2001-01-01T00:00:00Z"), "expire"),
            ("prefixes that do not cover", edited(prefixes=["2001:db8:ff::/64"]), "prefix"),
            ("invalid JSON", b"{not json", "JSON"),
            ("oversize", b'{"x":"' + b"a" * (80 * 1024) + b'"}', "64 KiB")]


@pytest.mark.root
def test_bad_objects_leave_the_pvd_usable(ilab: tuple[Lab, Pvdd], tmp_path: Any) -> None:
    """Each bad object in turn (a fetch each): pvdd says why in one line, keeps ISP B's last
    valid object, and a launch in ISP B works; the good object is served again at the end."""
    lab, daemon = ilab
    good = subprocess.run([PVDRUN, "lab", "pvd-info", "--name", lab.name, "ispb"], check=True,
                          capture_output=True, timeout=60).stdout
    good_file = tmp_path / "good.json"
    good_file.write_bytes(good)
    held = objects(daemon)["ispb.example"]
    try:
        for what, body, why in _bad_bodies(good):
            bad_file = tmp_path / "bad"
            bad_file.write_bytes(body)
            log_before = len(open(daemon.log, encoding="utf-8", errors="replace").read())

            def said() -> list[str]:
                text = open(daemon.log, encoding="utf-8", errors="replace").read()[log_before:]
                return [line for line in text.splitlines() if "ispb.example: no Additional Information" in line]

            fetch_once_more(lab, "ispb", "--raw", str(bad_file))
            lines = wait_for(said, timeout=10, what=f"pvdd's line for the {what} object")
            assert len(lines) == 1 and why.lower() in lines[0].lower(), (what, lines)
            assert objects(daemon)["ispb.example"] == held, f"{what}: the last valid object is gone"
            assert run(lab, daemon, [PVDRUN, "--pvd", "ispb.example", "true"]).returncode == 0, what
    finally:
        fetch_once_more(lab, "ispb", "--raw", str(good_file))


@pytest.mark.root
def test_a_changed_object_is_a_changed_event(ilab: tuple[Lab, Pvdd]) -> None:
    """A subscriber sees ISP B's new object as a changed event naming additional_info."""
    import socket as sockets

    lab, daemon = ilab
    with sockets.socket(sockets.AF_UNIX, sockets.SOCK_STREAM) as sock:
        sock.connect(daemon.socket)
        sock.settimeout(FETCHED_WITHIN + 10)
        reader = sock.makefile("rb")
        sock.sendall(b'{"v":1,"op":"subscribe"}\n')
        assert json.loads(reader.readline())["event"] == "snapshot"
        mark = f"changed-{os.getpid()}"
        fetch_once_more(lab, "ispb", "--set", f'name="{mark}"')
        while True:
            event = json.loads(reader.readline())
            if event.get("event") == "changed" and event.get("pvd_id") == "ispb.example" \
                    and "additional_info" in event.get("changed", {}):
                break
    change = event["changed"]["additional_info"]
    assert change["new"]["name"] == mark and change["old"]["name"] != mark


@pytest.mark.root
def test_one_shot_discovery_fetches_when_asked(ilab: tuple[Lab, Pvdd], tmp_path: Any) -> None:
    """``list --no-daemon --additional-info``: both ISPs' objects, fetched now by the command
    itself (the servers' logs grow), with the lab's CA from the configuration; without the
    option, none."""
    lab, daemon = ilab
    config = tmp_path / "pvd.toml"
    config.write_text(f'[additional_info]\nca_file = "{lab.status["ca_file"]}"\n')
    before = {isp: fetches(lab, isp) for isp in ("ispa", "ispb")}
    done = lab.exec([PVDRUN, "list", "--no-daemon", "--additional-info", "--json", "--config", str(config)],
                    timeout=60)
    assert done.returncode == 0, done.stderr
    held = {p["pvd_id"]: p["additional_info"] for p in json.loads(done.stdout)["pvds"]}
    assert held["ispa.example"]["noInternet"] is True and held["ispb.example"]["proxies"], held
    assert all(fetches(lab, isp) > before[isp] for isp in before)
    plain = lab.exec([PVDRUN, "list", "--no-daemon", "--json", "--config", str(config)], timeout=60)
    assert all(p["additional_info"] is None for p in json.loads(plain.stdout)["pvds"])


@pytest.mark.root
def test_c_api_reads_the_object(ilab: tuple[Lab, Pvdd]) -> None:
    """The C API (through its Python binding, in the lab's host namespace) reads ISP A's object
    from pvdd: the whole of it, and one key."""
    lab, daemon = ilab
    script = ("import json; from pvdrun.shim import binding; h = binding.find('ispa.example'); "
              "print(json.dumps([binding.attributes(h)['additional_info'], binding.attribute(h, 'noInternet')]))")
    done = run(lab, daemon, ["python3", "-c", script])
    assert done.returncode == 0, done.stderr
    whole, one = json.loads(done.stdout)
    assert whole == objects(daemon)["ispa.example"] and one is True
