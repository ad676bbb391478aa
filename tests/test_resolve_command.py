"""``pvdrun resolve`` without a network and without root: its options, bad input (one line and
the usage status, never a traceback), IP literals answered without a query, and /etc/hosts
read in nsswitch.conf's order, as the shim reads them.

The hosts and nsswitch files are the test's own (``PVDRUN_HOSTS``, ``PVDRUN_NSSWITCH``); the
host's are never read or changed.  The PvD is handed to the command directly (no discovery)
and has no DNS server: any path that would send a query fails with the temporary status
instead, so an answer here was given without one.
"""
from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Iterator

import pytest
from click.testing import CliRunner, Result

import pvdrun.commands.resolve as command
from pvdrun.errors import EXIT_FAILED, EXIT_OK, EXIT_TEMPORARY, EXIT_USAGE
from pvdrun.model import Pvd
from pvdrun.resolve import hosts
from pvdrun.resolve.sources import literal_address, reverse_address

HOSTS = """\
# a comment line
192.0.2.7   printer.example printer   # trailing comment
2001:db8::7 printer.example
192.0.2.8   Scanner.Example
fe80::1%eth0 zoned.example
not-an-address ignored.example
192.0.2.9
"""
#: how each lookup of the PvD was asked for (--config, --no-daemon)
ASKED: list[dict] = []
PVD = Pvd(pvd_id="ispa.example", handle=77, interfaces=["lo"], ifindexes=[1],
          addresses=["192.0.2.1/24", "2001:db8::1/64"])


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    (tmp_path / "hosts").write_text(HOSTS)
    (tmp_path / "nsswitch.conf").write_text("passwd: files\nhosts: files mdns4_minimal [NOTFOUND=return] dns\n")
    monkeypatch.setenv(hosts.HOSTS_ENV, str(tmp_path / "hosts"))
    monkeypatch.setenv(hosts.NSSWITCH_ENV, str(tmp_path / "nsswitch.conf"))
    monkeypatch.setattr(command, "pvd_named", lambda name, socket_path, **how: ASKED.append(how) or PVD)
    yield tmp_path


def run(*args: str) -> Result:
    result = CliRunner().invoke(command.resolve_command, ["--pvd", "ispa", *args])
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), \
        result.exc_info
    return result


def one_line(result: Result) -> str:
    """stderr is one line (no usage block, no traceback)."""
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr


# ---- the files the shim reads -----------------------------------------------------------

def test_nsswitch_order_as_the_shim_reads_it() -> None:
    assert hosts.parse_order("hosts: files mdns4_minimal [NOTFOUND=return] dns myhostname") == ("files", "dns")
    assert hosts.parse_order("  hosts:dns files") == ("dns", "files")
    assert hosts.parse_order("hosts: resolve [!UNAVAIL=return] files dns") == ("dns", "files")
    assert hosts.parse_order("hosts: files") == ("files",)
    assert hosts.parse_order("hosts: mdns") == ()
    assert hosts.parse_order("passwd: files\n") == ("files", "dns")  # no hosts: line
    assert hosts.parse_order(None) == ("files", "dns")  # no file


def test_hosts_file_lines(files: Path) -> None:
    found = hosts.lookup_name("PRINTER.example.")
    assert found is not None and found.canonical_name == "printer.example"
    assert found.addresses == ["192.0.2.7", "2001:db8::7"]
    assert hosts.lookup_name("printer", (6,)) is None  # the alias is on the IPv4 line only
    assert hosts.lookup_name("zoned.example") is None  # a zone: inet_pton does not read it
    assert hosts.lookup_name("ignored.example") is None
    assert hosts.lookup_address(ipaddress.ip_address("192.0.2.8")) == "Scanner.Example"
    assert hosts.lookup_address(ipaddress.ip_address("192.0.2.9")) is None  # no name


def test_literals_as_getaddrinfo_reads_them() -> None:
    assert str(literal_address("10.1")) == "10.0.0.1"  # inet_aton's forms
    assert str(literal_address("0x7f.1")) == "127.0.0.1"
    assert str(literal_address("2001:db8::1%eth0")) == "2001:db8::1"
    assert literal_address("svc.example") is None
    assert literal_address("10.1.2.3 x") is None
    assert str(reverse_address("::ffff:192.0.2.7")) == "192.0.2.7"  # asked as IPv4, as glibc
    with pytest.raises(ValueError):
        reverse_address("10.1")  # -x wants a whole address


# ---- the command --------------------------------------------------------------------------

def test_hosts_answers_first_without_a_query(files: Path) -> None:
    result = run("printer.example")
    assert result.exit_code == EXIT_OK, result.stderr
    assert result.stdout.splitlines() == ["printer.example\t0\tAAAA\t2001:db8::7",
                                          "printer.example\t0\tA\t192.0.2.7"]
    assert result.stderr == f";; answered by {files / 'hosts'}\n"
    result = run("--type", "a", "printer", "--json")
    data = json.loads(result.stdout)
    assert [(a["type"], a["records"], a["source"], a["server"]) for a in data["answers"]] == \
        [("A", ["192.0.2.7"], "files", None)]
    assert data["servers"] == [] and data["errors"] == []


def test_config_and_no_daemon_as_every_command_takes_them(files: Path) -> None:
    ASKED.clear()
    run("--config", "/etc/pvd/other.toml", "printer")
    run("--no-daemon", "printer")
    assert ASKED == [{"config_path": "/etc/pvd/other.toml", "no_daemon": False},
                     {"config_path": None, "no_daemon": True}]


def test_json_errors_say_which_type_failed(files: Path) -> None:
    result = run("nowhere.example", "--json")
    assert result.exit_code == EXIT_TEMPORARY
    data = json.loads(result.stdout)
    assert [(e["type"], e["kind"]) for e in data["errors"]] == [("AAAA", "no-server"), ("A", "no-server")]


def test_dns_first_when_nsswitch_says_so(files: Path) -> None:
    (files / "nsswitch.conf").write_text("hosts: dns files\n")
    result = run("printer.example")  # DNS is asked first: this PvD has no server
    assert result.exit_code == EXIT_OK and result.stdout.count("\n") == 2
    (files / "nsswitch.conf").write_text("hosts: dns\n")
    result = run("printer.example")
    assert result.exit_code == EXIT_TEMPORARY and "has no DNS server" in one_line(result)


def test_other_types_are_dns_only(files: Path) -> None:
    result = run("-t", "MX", "printer.example")
    assert result.exit_code == EXIT_TEMPORARY and "has no DNS server" in one_line(result)


def test_ip_literals_answer_themselves(files: Path) -> None:
    result = run("192.0.2.200")
    assert result.exit_code == EXIT_OK
    assert result.stdout == "192.0.2.200\t0\tA\t192.0.2.200\n"
    assert result.stderr == ";; answered without a query (an IP literal)\n"
    result = run("--json", "2001:db8::99")
    assert json.loads(result.stdout)["answers"][0]["source"] == "literal"
    result = run("-t", "AAAA", "192.0.2.200")
    assert result.exit_code == EXIT_FAILED and "IPv4 address" in one_line(result)


def test_reverse_from_hosts(files: Path) -> None:
    result = run("-x", "192.0.2.8")
    assert result.exit_code == EXIT_OK, result.stderr
    assert result.stdout == "8.2.0.192.in-addr.arpa\t0\tPTR\tScanner.Example\n"
    result = run("-x", "2001:db8::7", "--json")
    answer = json.loads(result.stdout)["answers"][0]
    assert answer["records"] == ["printer.example"] and answer["source"] == "files"
    result = run("-x", "::ffff:192.0.2.7")
    assert result.stdout.split("\t")[-1] == "printer.example\n"
    result = run("-x", "192.0.2.99")  # not in the file: DNS, and this PvD has none
    assert result.exit_code == EXIT_TEMPORARY, result.stderr


@pytest.mark.parametrize("args,words", [
    (["-x", "not-an-address"], "-x wants an IPv4 or IPv6 address"),
    (["-x", "10.1"], "-x wants an IPv4 or IPv6 address"),
    (["-x", "-t", "MX", "192.0.2.8"], "-x looks up PTR records"),
    (["-t", "BOGUS", "svc.example"], "unknown record type 'BOGUS'"),
    (["-t", "MX", "192.0.2.8"], "use -x"),
    (["a..b"], "not a valid DNS name"),
    (["a" * 70 + ".com"], "A DNS label is > 63 octets long"),
    (["svc." + "b" * 64], "A DNS label is > 63 octets long"),
])
def test_bad_input_is_one_line_and_the_usage_status(files: Path, args: list[str], words: str) -> None:
    result = run(*args)
    assert result.exit_code == EXIT_USAGE
    assert words in one_line(result) and "Traceback" not in result.stderr


def test_help_is_complete() -> None:
    text = CliRunner().invoke(command.resolve_command, ["--help"]).stdout
    for option in ("--pvd", "--type", "-x", "--reverse", "--timeout", "--attempts", "--json", "--socket"):
        assert option in text
    assert "Examples:" in text and "-t MX" in text and "-x 2001:db8:a::80" in text
