"""pvd_get_attributes and pvd_get_attribute (the C API, pvd.h since version 5): a PvD's extensible
attributes, {"attributes":...,"additional_info":...} verbatim from pvdd's reply, through a real
pvdd, as root and as an unprivileged user; the errnos (ENODATA, ERANGE with the buffer left
empty, ENOENT, EFAULT for a bad pointer, ENOTCONN when pvdd no longer answers); a PvD known
without pvdd has none.  The scanner itself (shim/core/json_scan.c) with a nested
additional_info object, under ASan/UBSan, through tests/c/json_attributes_harness.c."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from fixtures.launch_lab import LaunchLab, launch_lab
from fixtures.netns import wait_for
from fixtures.shim_source import include_flags, sources
from fixtures.unprivileged import User, unprivileged_user, user_for, who  # noqa: F401 - fixtures
from pvdrun.shim import library_path

C_DIR = Path(__file__).resolve().parent / "c"
CONFIG = ('[pvd.work]\ninterface = "fa0"\n\n[pvd.work.attributes]\nmetered = true\n'
          'note = "caf\\u00e9 \\"x\\""\nnested = { deep = [1, 2, { k = "v" }] }\n')


@pytest.fixture(scope="module")
def probe() -> Iterator[str]:
    """tests/c/attributes_probe.c linked with the installed shim, in a world-readable folder."""
    lib = library_path()
    folder = tempfile.mkdtemp(prefix=f"pvdattr{os.getpid()}-")
    os.chmod(folder, 0o755)
    out = os.path.join(folder, "attributes_probe")
    subprocess.run(["cc", "-Wall", "-Wextra", "-Werror", "-I", os.path.dirname(lib), "-o", out,
                    str(C_DIR / "attributes_probe.c"), lib, f"-Wl,-rpath,{os.path.dirname(lib)}"], check=True)
    os.chmod(out, 0o755)
    try:
        yield out
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def lab() -> Iterator[LaunchLab]:
    with launch_lab("fa0") as made:
        made.daemon.write_config(CONFIG)
        made.daemon.signal(signal.SIGHUP)
        wait_for(lambda: "work" in made.daemon.pvd("implicit:fa0")["names"]
                 and made.daemon.pvd("implicit:fa0")["attributes"].get("metered") is True,
                 timeout=20, what="work named, with its attributes")
        yield made


def call(lab: LaunchLab, probe: str, user: User | None, *args: str, **env: str) -> tuple[str, str | None]:
    """Run the probe: its status line and its buffer (None when the buffer was not its own)."""
    done = lab.run([probe, *args], user, **env)
    assert done.returncode == 0, (done.stdout, done.stderr)
    lines = done.stdout.splitlines()
    buf = next((line[4:] for line in lines[1:] if line.startswith("buf=")), None)
    return lines[0], buf


@pytest.mark.root
def test_attributes_through_pvdd(lab: LaunchLab, probe: str, who: str, request: pytest.FixtureRequest) -> None:
    user = user_for(who, request)
    status, buf = call(lab, probe, user, "work", "-", "4096")
    assert status.endswith("errno=0 kept=1"), status
    assert buf is not None and status == f"rc={len(buf.encode())} errno=0 kept=1"
    got = json.loads(buf)
    assert list(got) == ["attributes", "additional_info"]
    assert got["additional_info"] is None
    assert got["attributes"] == lab.daemon.pvd("implicit:fa0")["attributes"]
    assert got["attributes"]["metered"] is True and got["attributes"]["note"] == 'café "x"'
    assert got["attributes"]["nested"] == {"deep": [1, 2, {"k": "v"}]}
    # verbatim: the escapes as pvdd wrote them
    assert '"note":"caf\\u00e9 \\"x\\""' in buf

    assert call(lab, probe, user, "work", "metered", "64") == ("rc=4 errno=0 kept=1", "true")
    status, buf = call(lab, probe, user, "work", "nested", "64")
    assert json.loads(buf or "") == {"deep": [1, 2, {"k": "v"}]}, status
    assert call(lab, probe, user, "work", "no-such-key", "64") == ("rc=-1 errno=ENODATA kept=0", "")
    # the object is longer than 20 bytes: ERANGE, and nothing partial left
    assert call(lab, probe, user, "work", "-", "20") == ("rc=-1 errno=ERANGE kept=0", "")
    assert call(lab, probe, user, "work", "metered", "4") == ("rc=-1 errno=ERANGE kept=0", "")
    assert call(lab, probe, user, "#123457", "-", "4096") == ("rc=-1 errno=ENOENT kept=0", "")
    assert call(lab, probe, user, "#0", "metered", "4096") == ("rc=-1 errno=ENOENT kept=0", "")


@pytest.mark.root
def test_invalid_pointers_are_efault(lab: LaunchLab, probe: str, who: str, request: pytest.FixtureRequest) -> None:
    user = user_for(who, request)
    assert call(lab, probe, user, "work", "-", "4096", "bad") == ("rc=-1 errno=EFAULT kept=0", None)
    assert call(lab, probe, user, "work", "metered", "4096", "bad") == ("rc=-1 errno=EFAULT kept=0", None)
    assert call(lab, probe, user, "work", "-", "4096", "ro") == ("rc=-1 errno=EFAULT kept=0", None)
    assert call(lab, probe, user, "work", "@bad", "4096") == ("rc=-1 errno=EFAULT kept=0", "")


@pytest.mark.root
def test_pvdd_gone_is_enotconn(lab: LaunchLab, probe: str, who: str, request: pytest.FixtureRequest,
                               tmp_path: Path) -> None:
    user = user_for(who, request)
    gone = os.path.join(str(tmp_path), "gone.sock")
    assert call(lab, probe, user, "work", "-", "4096", PVDRUN_PROBE_SOCKET_AFTER_FIND=gone) == \
        ("rc=-1 errno=ENOTCONN kept=0", "")
    assert call(lab, probe, user, "work", "metered", "4096", PVDRUN_PROBE_SOCKET_AFTER_FIND=gone) == \
        ("rc=-1 errno=ENOTCONN kept=0", "")


@pytest.mark.root
def test_without_pvdd_a_scope_pvd_has_none(lab: LaunchLab, probe: str, who: str, request: pytest.FixtureRequest,
                                           tmp_path: Path) -> None:
    user = user_for(who, request)
    scope = lab.daemon.pvd("implicit:fa0")["scope"]
    env = {"PVDRUN_SOCKET": os.path.join(str(tmp_path), "none.sock"), "PVDRUN_SCOPE": scope}
    empty = '{"attributes":{},"additional_info":null}'
    assert call(lab, probe, user, "implicit:fa0", "-", "4096", **env) == (f"rc={len(empty)} errno=0 kept=1", empty)
    assert call(lab, probe, user, "implicit:fa0", "metered", "4096", **env) == ("rc=-1 errno=ENODATA kept=0", "")
    assert call(lab, probe, user, "#4294967295", "-", "4096", **env) == (f"rc={len(empty)} errno=0 kept=1", empty)


BINDING = ("import json, sys\nfrom pvdrun.shim import binding\n"
           "h = binding.find('work')\n"
           "out = {'all': binding.attributes(h), 'metered': binding.attribute(h, 'metered')}\n"
           "try:\n    binding.attribute(h, 'no-such-key')\nexcept OSError as exc:\n    out['missing'] = exc.errno\n"
           "print(json.dumps(out))\n")


@pytest.mark.root
def test_python_binding(lab: LaunchLab) -> None:
    import errno

    done = lab.run([sys.executable, "-c", BINDING], None)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["all"]["attributes"]["metered"] is True and out["all"]["additional_info"] is None
    assert out["metered"] is True and out["missing"] == errno.ENODATA


# ---- the scanner, with a nested additional_info (no pvdd, no root) ----

@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("jsonattr") / "json_attributes_harness"
    subprocess.run([os.environ.get("CC", "cc"), "-std=gnu11", "-O1", "-g", "-Wall", "-Wextra", "-Werror",
                    "-D_GNU_SOURCE", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                    *include_flags(), "-o", str(out), str(C_DIR / "json_attributes_harness.c"),
                    *sources("json_scan.c")], check=True)
    return out


def scan(harness: Path, reply: bytes, *args: str) -> list[str]:
    proc = subprocess.run([str(harness), *args], check=False, input=reply, capture_output=True, timeout=30)
    assert proc.returncode == 0 and b"runtime error" not in proc.stderr, proc.stderr
    return proc.stdout.decode().splitlines()


INFO = {"identifier": "pvd.example.com.", "expires": "2027-01-01T00:00:00Z", "prefixes": ["2001:db8:1::/48"],
        "noInternet": True, "metered": False, "dnsZones": ["example.com."], "name": "Caf\u00e9",
        "proxies": [{"url": "http://[2001:db8::8]:3128", "bypass": ["a\\b", {"x": [[], {}]}]}],
        "futureKey": {"a": {"b": [1.5e-3, None, "\U0001F600"]}}}
PVD = {"pvd_id": "pvd.example.com.", "handle": 42,
       "attributes": {"metered": True, "only": "attr", "Caf\u00e9": 1, "\U0001F600": [2]},
       "additional_info": INFO, "scope": "v=1 id=pvd.example.com. handle=42"}


def reply(pvd: dict, **dump: object) -> bytes:
    return json.dumps({"v": 1, "ok": True, "op": "get", "pvd": pvd}, **dump).encode() + b"\n"


@pytest.mark.parametrize("separators", [(",", ":"), (", ", ": "), (" ,\t", "\t: ")])
def test_scanner_nested_additional_info(harness: Path, separators: tuple[str, str]) -> None:
    data = reply(PVD, separators=separators)
    status, text = scan(harness, data, "42", "65536")
    assert status == f"rc={len(text)} errno=0"
    assert json.loads(text) == {"attributes": PVD["attributes"], "additional_info": INFO}
    # verbatim: the reply's own spelling of the nested object
    assert json.dumps(INFO, separators=separators) in text
    for key in ("noInternet", "proxies", "futureKey", "name", "only"):
        status, text = scan(harness, data, "42", "4096", key)
        assert status == f"rc={len(text)} errno=0"
        assert json.loads(text) == (INFO | PVD["attributes"] if key == "only" else INFO)[key]
    # additional_info first: its "metered" (false) hides the configured one
    assert scan(harness, data, "42", "4096", "metered") == ["rc=5 errno=0", "false"]
    # keys are compared unescaped: \u00e9 and a surrogate pair match the UTF-8 key
    assert scan(harness, data, "42", "4096", "Caf\u00e9") == ["rc=1 errno=0", "1"]
    assert scan(harness, data, "42", "4096", "\U0001F600") == ["rc=3 errno=0", "[2]"]
    assert scan(harness, data, "42", "4096", "Cafe") == ["rc=-1 errno=ENODATA", "left=empty"]
    assert scan(harness, data, "42", "4096", "name") == ["rc=11 errno=0", '"Caf\\u00e9"']
    assert scan(harness, data, "42", "10") == ["rc=-1 errno=ERANGE", "left=empty"]
    assert scan(harness, data, "43", "4096") == ["rc=-1 errno=ENOENT", "left=empty"]


def test_scanner_refuses_malformed(harness: Path) -> None:
    good = reply(PVD)
    assert scan(harness, good[:-40], "42", "4096")[0] == "rc=-1 errno=EPROTO"
    nested: list = []
    for _ in range(34):
        nested = [nested]
    deep = reply({**PVD, "additional_info": {"x": nested}})
    assert scan(harness, deep, "42", "4096")[0] == "rc=-1 errno=EPROTO"
    assert scan(harness, reply({**PVD, "additional_info": [1]}), "42", "4096")[0] == "rc=-1 errno=EPROTO"
    assert scan(harness, b'{"ok":true,"pvd":{"handle":42,"attributes":{"x":"\\q"}}}', "42", "64")[0] == \
        "rc=-1 errno=EPROTO"
    assert scan(harness, b'{"v":1,"ok":false,"code":"unknown_pvd","message":"no"}', "42", "64") == \
        ["rc=-1 errno=ENOENT", "left=empty"]
    assert scan(harness, reply({"handle": 42}), "42", "64") == \
        ["rc=40 errno=0", '{"attributes":{},"additional_info":null}']
