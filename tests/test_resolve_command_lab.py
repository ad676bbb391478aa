"""``pvdrun resolve`` in namespaces: reverse lookups (-x) of the PTRs the labs' dnsmasq serve,
MX and SRV records, "which server answered" equal to the PvD's own server, /etc/hosts and IP
literals answered without a packet, and as an unprivileged user whose DNS sockets pvdd marks.

Every verdict on "the other ISP's link saw nothing" is the suite's live capture
(fixtures/capture.py); the hosts-file test's control (the same name without the file) is
caught on the PvD's own link by the same verdict.  The hosts file is the test's own
(``PVDRUN_HOSTS``): the host's /etc/hosts is never changed.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from fixtures.capture import assert_caught, assert_no_leak
from pvdrun.errors import EXIT_FAILED, EXIT_TEMPORARY
from fixtures.unprivileged import User, unprivileged_user  # noqa: F401 (fixture)
from fixtures.pvdd_lab import PvddInLab
from fixtures.lab_rules import leak_rules_separate as lab3_leak_rules
from fixtures.resolve_lab import ResolveLab, split_lab  # noqa: F401 (fixture)
from fixtures.lab_rules import leak_rules_shared as shared_leak_rules
from fixtures.pvdd_lab import pvdd1  # noqa: F401 (fixture: pvdd in scenario 1)

pytestmark = pytest.mark.root


def _config(tmp_path: Path, lab: ResolveLab) -> dict[str, str]:
    """PvDs ispa (a0) and ispb (b0) from a configuration file, no pvdd, no RS."""
    config = tmp_path / "pvd.toml"
    config.write_text(textwrap.dedent(f"""
        [pvd.ispa]
        interface = "{lab.isps['a'].client_if}"
        dns = {json.dumps(lab.isps['a'].dns[:1])}
        [pvd.ispb]
        interface = "{lab.isps['b'].client_if}"
        dns = {json.dumps(lab.isps['b'].dns[:1])}
    """))
    return {"PVDRUN_CONFIG": str(config), "PVDRUN_NO_RS": "1", "PVDRUN_SOCKET": str(tmp_path / "none.sock")}


def resolve(lab: ResolveLab, tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return lab.run([sys.executable, "-m", "pvdrun.cli", "resolve", *args], env={**_config(tmp_path, lab), **env})


def only_answer(done: subprocess.CompletedProcess) -> dict[str, Any]:
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert len(data["answers"]) == 1, data
    return data["answers"][0] | {"servers": data["servers"]}


# ---- the split lab: ISP A dual-stack (DNS 10.1.0.1), ISP B IPv6-only (DNS 2001:db8:b::1) -------

@pytest.mark.parametrize("key,address,name", [("a", "10.1.0.98", "printer.isp-a.example."),
                                              ("b", "2001:db8:b::98", "printer.isp-b.example.")])
def test_reverse_lookup_asks_the_pvds_server_only(split_lab: ResolveLab, tmp_path: Path, key: str, address: str,
                                                   name: str) -> None:
    other = "b" if key == "a" else "a"
    server = split_lab.isps[key].dns[0]
    with split_lab.capture(other) as cap:
        done = resolve(split_lab, tmp_path, "--pvd", f"isp{key}", "-x", address, "--json")
        human = resolve(split_lab, tmp_path, "--pvd", f"isp{key}", "-x", address)
    assert_no_leak(cap, done.stdout, human.stdout, **split_lab.leak_rules(key))
    answer = only_answer(done)
    assert (answer["type"], answer["records"], answer["source"]) == ("PTR", [name], "dns")
    assert answer["server"] == server and answer["servers"] == [server]
    assert human.returncode == 0 and human.stdout.split("\t")[2:] == ["PTR", name + "\n"]
    assert human.stderr.startswith(f";; answered by {server} (DNS server of PvD "), human.stderr
    elsewhere = resolve(split_lab, tmp_path, "--pvd", f"isp{other}", "-x", address)
    assert elsewhere.returncode == EXIT_FAILED and elsewhere.stderr.count("\n") == 1, elsewhere  # split horizon


@pytest.mark.parametrize("rdtype,qname,record", [
    ("MX", "isp-{k}.example", "{p} mail.isp-{k}.example."),
    ("SRV", "_ldap._tcp.isp-{k}.example", "0 100 389 ldap.isp-{k}.example."),
])
def test_mx_and_srv_from_the_pvds_server(split_lab: ResolveLab, tmp_path: Path, rdtype: str, qname: str,
                                         record: str) -> None:
    for key, other, preference in (("a", "b", 10), ("b", "a", 20)):
        with split_lab.capture(other) as cap:
            done = resolve(split_lab, tmp_path, "--pvd", f"isp{key}", "-t", rdtype.lower(),
                           qname.format(k=key), "--json")
        assert_no_leak(cap, done.stdout, **split_lab.leak_rules(key))
        answer = only_answer(done)
        assert answer["type"] == rdtype
        assert answer["records"] == [record.format(k=key, p=preference)]
        assert answer["server"] == split_lab.isps[key].dns[0]
        missing = resolve(split_lab, tmp_path, "--pvd", f"isp{other}", "-t", rdtype, qname.format(k=key))
        assert missing.returncode == EXIT_FAILED, missing  # only ISP `key` has it


def test_any_prints_each_record_with_its_type(split_lab: ResolveLab, tmp_path: Path) -> None:
    done = resolve(split_lab, tmp_path, "--pvd", "ispa", "-t", "ANY", "svc.example")
    assert done.returncode == 0, done.stderr
    found = {tuple(line.split("\t")[2:]) for line in done.stdout.splitlines()}
    assert {("A", "10.1.0.80"), ("AAAA", "2001:db8:a::80")} <= found, done.stdout


def test_hosts_file_and_literals_send_nothing(split_lab: ResolveLab, tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("192.0.2.55 svc.example\n10.1.0.98 printer-from-hosts.example\n")
    hosts.chmod(0o644)
    with split_lab.capture("a") as own, split_lab.capture("b") as other:
        named = resolve(split_lab, tmp_path, "--pvd", "ispa", "svc.example", PVDRUN_HOSTS=str(hosts))
        reverse = resolve(split_lab, tmp_path, "--pvd", "ispa", "-x", "10.1.0.98", PVDRUN_HOSTS=str(hosts))
        literal = resolve(split_lab, tmp_path, "--pvd", "ispa", "--json", "2001:db8:a::80")
    outputs = (named.stdout, reverse.stdout, literal.stdout)
    assert_no_leak(own, *outputs, **split_lab.silent_rules("a"))
    assert_no_leak(other, *outputs, **split_lab.silent_rules("b"))
    assert named.returncode == 0 and named.stdout == "svc.example\t0\tA\t192.0.2.55\n", named
    assert named.stderr == f";; answered by {hosts}\n"
    assert reverse.stdout.split("\t")[-1] == "printer-from-hosts.example\n", reverse
    assert only_answer(literal)["source"] == "literal"
    # control: without the file the same name is the PvD's DNS's, and the verdict above finds it
    with split_lab.capture("a") as own:
        asked = resolve(split_lab, tmp_path, "--pvd", "ispa", "-t", "A", "svc.example",
                        PVDRUN_HOSTS=str(tmp_path / "empty"))
    assert asked.stdout.endswith("\tA\t10.1.0.80\n") and "10.1.0.1" in asked.stderr, asked
    assert_caught(own, asked.stdout, **split_lab.silent_rules("a"))


# ---- the shared lab: scenario 3 (one-shot discovery), scenario 1 (pvdd, an unprivileged user) ----

def test_reverse_lookup_in_scenario_3(lab3: Any, tmp_path: Path) -> None:
    """A PTR of ISP A's dnsmasq (made by its --host-record), asked as root with PvDs from the
    one-shot discovery (RDNSS): answered by ISP A's own server, nothing on ISP B's link."""
    info = lab3.isp("ispa")
    with lab3.capture("ispb") as other:
        done = lab3.exec([sys.executable, "-m", "pvdrun.cli", "resolve", "--pvd", "ispa", "--json",
                          "-x", info["intranet_v6"]], env={"PVDRUN_SOCKET": str(tmp_path / "none.sock")})
    assert_no_leak(other, done.stdout, done.stderr, **lab3_leak_rules(lab3, "ispa"))
    answer = only_answer(done)
    assert answer["records"] == ["intranet.ispa.example."], answer
    assert answer["server"] in (info["dns_v4"], info["dns_v6"]), answer
    elsewhere = lab3.exec([sys.executable, "-m", "pvdrun.cli", "resolve", "--pvd", "ispb", "-x", info["intranet_v6"]],
                          env={"PVDRUN_SOCKET": str(tmp_path / "none.sock")})
    # ISP B's dnsmasq has no such PTR: NXDOMAIN, or REFUSED where it serves no reverse zone
    assert elsewhere.returncode in (EXIT_FAILED, EXIT_TEMPORARY) and not elsewhere.stdout, elsewhere


def test_unprivileged_user_reverse_lookup_through_pvdd(lab1: Any, pvdd1: PvddInLab,
                                                      unprivileged_user: User) -> None:
    """Scenario 1: both PvDs share the host's interface, so the PvD's source address and
    pvdd's mark choose it.  The user cannot mark a socket: the C core asks pvdd (SCM_RIGHTS)
    for the mark of every DNS socket; without it the PvD's DNS would not be used (fail
    closed), so an answer proves pvdd marked them."""
    info = lab1.isp("ispa")
    pvd = pvdd1.pvd(info["pvd_id"])
    assert pvd["mark"], pvd  # the path under test: a PvD with a mark
    with lab1.capture("ispb") as other:
        done = lab1.exec(unprivileged_user.python(
            ["-m", "pvdrun.cli", "resolve", "--socket", pvdd1.socket, "--pvd", info["pvd_id"], "--json",
             "-x", info["intranet_v6"]], {"PVDRUN_SOCKET": pvdd1.socket}), timeout=60)
    assert_no_leak(other, done.stdout, done.stderr, **shared_leak_rules(lab1, "ispa"))
    answer = only_answer(done)
    assert answer["records"] == ["intranet.ispa.example."], answer
    assert answer["server"] in pvd["dns_servers"] and answer["server"] in (info["dns_v4"], info["dns_v6"])
