"""The configuration file: schema, and errors naming file, line and problem."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pvdrun.config import EXIT_BAD_CONFIG, ConfigError, load_config, parse_config

GOOD = """\
default = "work"

[pvd.work]
interface = "eth0"
dns = ["2001:db8::53", "192.0.2.53"]
search = ["Corp.Example."]
users = ["root"]

[pvd.work.attributes]
metered = true

[pvd.isp]
pvd_id = "ispa.example"
kind = "cellular"
"""


def test_good_config() -> None:
    config = parse_config(GOOD, "pvd.toml")
    assert config.default == "work"
    work, isp = config.pvds
    assert work.interface == "eth0" and work.search == ["corp.example"]
    assert work.attributes == {"metered": True} and work.users == ["root"]
    assert isp.pvd_id == "ispa.example" and isp.kind == "cellular"


@pytest.mark.parametrize("text,line,words", [
    ("[pvd.a]\ninterface = \"x\"\ncolour = 1\n", 3, "unknown key 'colour'"),
    ("\n\n[pvd.a]\ndns = [\"nope\"]\ninterface = \"x\"\n", 4, "not an IP address"),
    ("[pvd.a]\nkind = \"modem\"\ninterface = \"x\"\n", 2, "kind must be one of"),
    ("[pvd.a]\nusers = \"alice\"\n", 1, "needs 'interface'"),
    ("default = \"b\"\n[pvd.a]\ninterface = \"x\"\n", 1, "not a [pvd.NAME]"),
    ("[pvd.a]\ninterface = x\n", 2, "Invalid value"),
])
def test_bad_config_names_file_line_problem(text: str, line: int, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "/etc/pvd/pvd.toml")
    message = str(info.value)
    assert message.startswith("/etc/pvd/pvd.toml: ")
    assert f"line {line}" in message and words in message


def test_missing_default_file_is_empty_but_explicit_is_an_error(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PVDRUN_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config(str(tmp_path / "absent.toml"))
    monkeypatch.setenv("PVDRUN_CONFIG", str(tmp_path / "absent.toml"))
    with pytest.raises(ConfigError):
        load_config()


def test_cli_reports_bad_config(tmp_path: Path) -> None:
    """`pvdrun list --config BAD` exits with its own status and a one-line message."""
    path = tmp_path / "pvd.toml"
    path.write_text("[pvd.a]\ninterface = \"x\"\nbogus = 2\n")
    result = subprocess.run([sys.executable, "-m", "pvdrun.cli", "list", "--config", str(path)],
                            capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin", "PVDRUN_NO_RS": "1"})
    assert result.returncode == EXIT_BAD_CONFIG
    assert result.stderr.strip() == f"pvdrun: {path}: line 3: unknown key 'bogus' in [pvd.a]"


def test_daemon_refuses_bad_config(tmp_path: Path) -> None:
    """pvdd does not start on a malformed configuration: file and line on stderr, exit 7."""
    path = tmp_path / "pvd.toml"
    path.write_text('default = 3\n')
    result = subprocess.run([sys.executable, "-m", "pvdrun.cli", "daemon", "--config", str(path),
                             "--socket", str(tmp_path / "s.sock")], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == EXIT_BAD_CONFIG
    assert f"{path}: line 1: default must be a string" in result.stderr
    assert not (tmp_path / "s.sock").exists()
