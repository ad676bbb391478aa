"""The native launcher (launcher/, the installed ``pvdrun``): the launcher form without Python.

It runs ``pvdrun --pvd NAME CMD`` itself only when pvdd gives the PvD's scope and the program is
one the shim surely holds; everything else goes, unchanged, to the Python command line
(``pvdrun-cli``).  So these tests hold it to the Python launcher: the same parse, never "surely
preloadable" where the Python rule refuses, the same environment, resolv.conf, exit statuses
and messages, as root and as an unprivileged user, and a fall-back whenever pvdd is absent,
stopped or talks nonsense.  ``PVDRUN_LAUNCHER_TRACE=1`` makes it say what it decided.
No wall-clock assertion: the speed is the bench's (launch.with_pvdd).
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import threading
from pathlib import Path
from typing import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fixtures.capture import assert_caught, assert_no_leak
from fixtures.commands import PVDRUN, PVDRUN_CLI
from fixtures.lab import Lab
from fixtures.launch_lab import LaunchLab, lab3_with_pvdd, launch_lab
from fixtures.pvdd import Pvdd
from fixtures.property_settings import PROPERTY
from fixtures.unprivileged import User, unprivileged_user, user_for, who  # noqa: F401 - fixtures
from pvdrun.errors import EXIT_CANNOT_HONOUR, EXIT_NO_DAEMON, EXIT_NOT_FOUND, EXIT_UNKNOWN_PVD, EXIT_USAGE
from pvdrun.launch_args import LaunchArgs, LaunchUsageError, is_launcher_form, parse, parse_exec
from pvdrun.shim import library_path
from pvdrun.shim.preloadable import NotPreloadable, check_preloadable

TRACE = {"PVDRUN_LAUNCHER_TRACE": "1"}
EXECS = "pvdrun: native launcher: exec "
HANDS_OVER = ": pvdrun-cli"
#: What a program is given (resolv.conf read without the shim, whose own view would answer).
SHOW = ('echo "scope=$PVDRUN_SCOPE"; echo "preload=$LD_PRELOAD"; echo "socket=$PVDRUN_SOCKET"; '
        'env -u LD_PRELOAD cat /etc/resolv.conf')

pytestmark = pytest.mark.skipif(not os.path.isfile(PVDRUN_CLI) or open(PVDRUN, "rb").read(4) != b"\x7fELF",
                                reason="pvdrun is not the native launcher here (not installed by pip)")


def native_decisions(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("pvdrun: native launcher: ")]


@pytest.fixture(scope="module")
def lone_launcher(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A copy of the native launcher with nothing beside it: it parses, checks and traces, then
    cannot hand over (exit 5), so that nothing else runs."""
    where = tmp_path_factory.mktemp("lone")
    copy = str(where / "pvdrun")
    shutil.copy(PVDRUN, copy)
    return copy


def lone_run(launcher: str, args: list[str], path: str, env: dict[str, str] | None = None) -> list[str]:
    done = subprocess.run([launcher, *args], capture_output=True, text=True, timeout=30,
                          env={"PATH": path, **TRACE, **(env or {})})
    assert done.returncode == 5 and "cannot run" in done.stderr, done.stderr
    return native_decisions(done.stderr)


# -- the parse ---------------------------------------------------------------------------------

def parsed(decisions: list[str]) -> LaunchArgs | None:
    """The launcher's words as the native launcher's trace reports them (None: not parsed)."""
    line = decisions[0]
    if not line.startswith("pvdrun: native launcher: launcher form: "):
        return None
    fields = dict(re.findall(r"(\w+)=(<[^>]*>|-?\d+)", line.split(" command=", 1)[0]))
    command = re.findall(r"<([^>]*)>", line.split(" command=", 1)[1])
    text = {key: value[1:-1] for key, value in fields.items() if value.startswith("<")}
    return LaunchArgs(pvd_name=text["pvd"], socket_path=text["socket"] or None,
                      config_path=text["config"] or None, no_daemon=fields["no_daemon"] == "1",
                      strict={"-1": None, "1": True, "0": False}[fields["strict"]],
                      verbose=fields["verbose"] == "1", proxy_env=fields["no_proxy_env"] == "0",
                      command=command)


def python_parse(words: list[str]) -> LaunchArgs | None:
    """pvdrun/launch_args.py's parse of ``pvdrun WORDS``; None where it is not the launcher's
    (a subcommand) or is a usage error or -h (the Python command line's to say)."""
    try:
        if words[:1] == ["exec"]:
            found = parse_exec(words[1:])
        elif words[:1] == ["run"]:
            found = parse(words[1:])
        elif is_launcher_form(words):
            found = parse(words)
        else:
            return None
    except LaunchUsageError:
        return None
    return None if found.help else found


WORDS = st.sampled_from(["--pvd", "-p", "--pvd=a", "--pvd=", "-pa", "-p=a", "--socket", "--socket=/s",
                         "--socket=", "--config", "--config=/c", "--no-daemon", "-v", "--verbose",
                         "--strict", "--no-strict", "--strict=1", "--no-proxy-env", "--no-proxy-env=1",
                         "--", "-", "-h", "--help", "--version",
                         "-x", "--pv", "a", "b", "", "run", "exec", "list", "null"])


@PROPERTY
@given(st.lists(WORDS, max_size=8))
def test_native_parse_is_the_python_parse(lone_launcher: str, args: list[str]) -> None:
    """The native launcher parses exactly what pvdrun/launch_args.py parses (the launcher form,
    run and exec), to the same PvD, options and command; everything else it hands over."""
    decisions = lone_run(lone_launcher, args, "/nonexistent")
    python = python_parse(args)
    assert parsed(decisions) == python, decisions
    if python is None:
        assert decisions[0].endswith("not the launcher form" + HANDS_OVER), decisions
    elif python.pvd_name == "null" and not (python.config_path or python.no_daemon or python.verbose):
        assert decisions[1].endswith("the null PvD" + HANDS_OVER)


# -- the program check -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Programs the shim holds and programs it does not, and files that only look like ELF."""
    where = tmp_path_factory.mktemp("corpus")
    source = where / "main.c"
    source.write_text("int main(void) { return 0; }\n")
    programs = {"true": shutil.which("true") or "/bin/true", "sh": "/bin/sh", "pvdrun": PVDRUN}
    for name, flags in (("dynamic", []), ("static", ["-static"]), ("pie", ["-pie", "-fPIE"])):
        out = str(where / name)
        subprocess.run(["cc", *flags, "-o", out, str(source)], check=True, capture_output=True)
        programs[name] = out
    good = Path(programs["dynamic"]).read_bytes()

    def variant(name: str, data: bytes, mode: int = 0o755) -> None:
        path = where / name
        path.write_bytes(data)
        path.chmod(mode)
        programs[name] = str(path)

    variant("truncated", good[:200])
    variant("header only", good[:64])
    variant("go note", good + b"\x04\x00\x00\x00\x10\x00\x00\x00\x04\x00\x00\x00Go\x00\x00" + b"x" * 16)
    go_note_early = bytearray(good)
    go_note_early[64 + 56 * 13:64 + 56 * 13 + 8] = b"\x04\x00\x00\x00Go\x00\x00"
    variant("go note in headers", bytes(go_note_early))
    big_endian = bytearray(good)
    big_endian[5] = 2
    variant("big endian", bytes(big_endian))
    bad_class = bytearray(good)
    bad_class[4] = 9
    variant("bad class", bytes(bad_class))
    far_sections = bytearray(good)
    far_sections[0x28:0x30] = (len(good) * 4).to_bytes(8, "little")  # e_shoff beyond the file
    variant("sections beyond the file", bytes(far_sections))
    many_headers = bytearray(good)
    many_headers[0x38:0x3A] = (0xFFFF).to_bytes(2, "little")  # e_phnum: headers beyond the file
    variant("program headers beyond the file", bytes(many_headers))
    go_section = good.replace(b".note.gnu.build-id\x00", b".gopclntab\x00" + b"\x00" * 8, 1)
    assert go_section != good
    variant("go section", go_section)
    variant("script", b"#!/bin/sh\nexit 0\n")
    variant("text", b"hello\n")
    variant("setuid", good, 0o4755)
    suid = where / "setuid"
    os.chown(suid, 65534, 65534)  # another owner: the loader runs it in secure mode
    suid.chmod(0o4755)
    busybox = shutil.which("busybox")
    if busybox:
        programs["busybox"] = busybox
    os.chmod(where, 0o755)
    return programs


def python_says_preloadable(path: str) -> bool:
    try:
        check_preloadable(path, "/usr/bin:/bin")
    except (NotPreloadable, OSError):
        return False
    return True


def test_native_check_is_never_looser_than_python(lone_launcher: str, corpus: dict[str, str]) -> None:
    """Wherever the native launcher would go on (surely preloadable), the Python rule agrees;
    and it does go on for ordinary dynamic programs (the fast path is the common path)."""
    verdicts = {}
    for name, path in corpus.items():
        decisions = lone_run(lone_launcher, ["--pvd", "x", path], "/usr/bin:/bin")
        native = not decisions[1].endswith("program not surely preloadable" + HANDS_OVER)
        verdicts[name] = native
        if native:
            assert python_says_preloadable(path), name
    # pvdrun itself too: a pvdrun run by another is scoped by the shim (the inner one leaves it)
    assert all(verdicts[name] for name in ("true", "sh", "dynamic", "pie", "pvdrun")), verdicts
    assert not any(verdicts[name] for name in ("static", "go note", "go section", "setuid", "script",
                                               "truncated", "big endian", "bad class",
                                               "program headers beyond the file")), verdicts


def test_native_check_refuses_go(lone_launcher: str, tmp_path: Path) -> None:
    """A Go program, static or dynamically linked (cgo: it has PT_INTERP), is never fast."""
    go = shutil.which("go")
    if go is None:
        pytest.skip("go is not installed (Debian: golang-go)")
    (tmp_path / "main.go").write_text('package main\n\nimport "C"\nimport "fmt"\n\n'
                                      'func main() { fmt.Println("hi") }\n')
    (tmp_path / "go.mod").write_text("module hi\n\ngo 1.19\n")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "GOCACHE": str(tmp_path / "c"),
           "GOPATH": str(tmp_path / "p"), "GOPROXY": "off", "GOTOOLCHAIN": "local", "GOFLAGS": "-buildvcs=false"}
    for cgo, strip in (("1", []), ("1", ["-ldflags=-s -w"])):
        binary = str(tmp_path / f"hi{cgo}{len(strip)}")
        subprocess.run([go, "build", *strip, "-o", binary, "."], cwd=tmp_path, check=True,
                       capture_output=True, env={**env, "CGO_ENABLED": cgo})
        decisions = lone_run(lone_launcher, ["--pvd", "x", binary], "/usr/bin:/bin")
        assert decisions[1].endswith("program not surely preloadable" + HANDS_OVER), (cgo, strip, decisions)
        assert not python_says_preloadable(binary)


# -- launches through pvdd ---------------------------------------------------------------------

class TracedLab(LaunchLab):
    """The launch lab, every command run with PVDRUN_LAUNCHER_TRACE=1."""

    def run(self, argv: list[str], user: User | None = None, **extra: str) -> subprocess.CompletedProcess:
        return super().run(argv, user, **TRACE, **extra)


@pytest.fixture(scope="module")
def lab() -> Iterator[LaunchLab]:
    with launch_lab("nl0") as made:
        yield TracedLab(made.net, made.daemon)


def same_run(lab: LaunchLab, args: list[str], user: User | None = None, **extra: str) -> tuple[subprocess.CompletedProcess, subprocess.CompletedProcess]:
    """``args`` through the native launcher and through the Python command line."""
    return lab.run([PVDRUN, *args], user, **extra), lab.run([PVDRUN_CLI, *args], user, **extra)


@pytest.mark.root
def test_native_launch_is_the_python_launch(lab: LaunchLab, who: str, request: pytest.FixtureRequest) -> None:
    """Through pvdd, the native launcher execs the program itself (no Python), and the program
    sees what the Python launcher gives it: scope line, preload list, socket, resolv.conf (root:
    the PvD's private one; a user: the host's); as root and as an unprivileged user."""
    user = user_for(who, request)
    native, python = same_run(lab, ["--pvd", "nl0", "sh", "-c", SHOW], user)
    assert native.returncode == python.returncode == 0, (native.stderr, python.stderr)
    assert native_decisions(native.stderr)[-1] in (EXECS + "/usr/bin/sh", EXECS + "/bin/sh"), native.stderr
    assert native.stdout == python.stdout
    assert "scope=v=" in native.stdout and "id=implicit:nl0 " in native.stdout
    assert f"preload={library_path()}" in native.stdout or user is not None
    private = "# resolv.conf of PvD implicit:nl0, generated by pvdrun (private mount namespace)"
    assert (private in native.stdout) == (user is None)


@pytest.mark.root
def test_native_launch_keeps_user_preloads_and_socket(lab: LaunchLab, tmp_path: Path) -> None:
    """Other preloaded libraries stay after ours, a duplicate of ours goes, --socket reaches the
    program, and an explicit PVDRUN_SHIM_LIBRARY (a libpvdshim.so file) is the one preloaded."""
    other = tmp_path / "libother.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(other), "-x", "c", "/dev/null"], check=True)
    copy_dir = tmp_path / "copy"
    copy_dir.mkdir()
    copy = copy_dir / "libpvdshim.so"
    shutil.copy(library_path(), copy)
    preload = f"{other} {library_path()}:{other}"
    args = ["--socket", lab.daemon.socket, "--pvd=nl0", "--", "sh", "-c", SHOW]
    native, python = same_run(lab, ["-p", "nl0", *args], LD_PRELOAD=preload.replace(str(library_path()), str(other)),
                              PVDRUN_SHIM_LIBRARY=str(copy))
    assert native.returncode == python.returncode == 0, (native.stderr, python.stderr)
    assert native.stdout == python.stdout
    assert f"preload={copy}:{other}:" in native.stdout  # ours first, the user's duplicate of it gone
    assert f"socket={lab.daemon.socket}\n" in native.stdout
    assert native_decisions(native.stderr)[-1].startswith(EXECS)
    bad = tmp_path / "libwrong.so"
    shutil.copy(library_path(), bad)
    native, python = same_run(lab, ["--pvd", "nl0", "true"], PVDRUN_SHIM_LIBRARY=str(bad))
    assert native.returncode == python.returncode == 5
    assert native_decisions(native.stderr)[-1].endswith("preload library not found" + HANDS_OVER)


#: case -> (arguments after ``pvdrun``, expected status): each handed to the Python command line.
REFUSALS = {
    "unknown PvD": (["--pvd", "no-such-pvd", "true"], EXIT_UNKNOWN_PVD, "pvdd gave no scope for the PvD"),
    "command not found": (["--pvd", "nl0", "no-such-command-pvdrun"], EXIT_NOT_FOUND, "program not found"),
    "--socket not answering": (["-p", "nl0", "--socket", "/nonexistent/pvdd.sock", "true"], EXIT_NO_DAEMON,
                               "pvdd gave no scope for the PvD"),
    "missing command": (["--pvd", "nl0"], EXIT_USAGE, "not the launcher form"),
    "an unknown option": (["--pvd", "nl0", "--sokcet", "/x", "true"], EXIT_USAGE, "not the launcher form"),
    "verbose": (["--pvd", "nl0", "-v", "true"], 0, "--config, --no-daemon or --verbose"),
    "exec, unknown PvD": (["exec", "no-such-pvd", "--", "true"], EXIT_UNKNOWN_PVD, "pvdd gave no scope for the PvD"),
    "the null PvD": (["--pvd", "null", "true"], 0, "the null PvD"),
    "a command that is an option": (["--pvd", "nl0", "--", "-x"], EXIT_NOT_FOUND, "program not found"),
}


@pytest.mark.root
@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_everything_else_is_the_python_command_line(lab: LaunchLab, case: str) -> None:
    """Refusals, other forms and strict mode: the same status and messages as pvdrun-cli's,
    because pvdrun-cli is what runs them."""
    args, status, why = REFUSALS[case]
    native, python = same_run(lab, args)
    assert (native.returncode, python.returncode) == (status, status), (native.stderr, python.stderr)
    assert native_decisions(native.stderr)[-1] == f"pvdrun: native launcher: {why}{HANDS_OVER}"
    told = [line for line in native.stderr.splitlines() if line not in native_decisions(native.stderr)]
    assert told == python.stderr.splitlines()
    assert native.stdout == python.stdout


@pytest.mark.root
def test_native_strict_launch_is_the_python_one(lab: LaunchLab) -> None:
    """--strict: pvdd moves the native launcher itself into the PvD's cgroup, as it moves the
    Python launcher; a refusal (the null PvD's cgroup already holds it) is the Python one's."""
    show = ["sh", "-c", "cat /proc/self/cgroup"]
    native, python = same_run(lab, ["--pvd", "nl0", "--strict", *show])
    if python.returncode != 0 and "strict mode" in python.stderr:
        pytest.skip(f"strict mode unavailable here: {python.stderr.strip()}")
    assert native.returncode == python.returncode == 0, (native.stderr, python.stderr)
    assert native.stdout == python.stdout and "/pvd-" in native.stdout
    assert native_decisions(native.stderr)[-1].startswith(EXECS)
    nested = f"{PVDRUN} --pvd nl0 --strict true"
    done = lab.run([PVDRUN_CLI, "--pvd", "null", "--strict", "sh", "-c", f"env -u LD_PRELOAD {nested}"])
    assert done.returncode == EXIT_CANNOT_HONOUR, done.stderr
    assert "pvdrun: native launcher: pvdd did not hold the launcher in strict mode" + HANDS_OVER in done.stderr
    assert "strict" in done.stderr.splitlines()[-1]


@pytest.mark.root
def test_exit_status_and_signal_are_the_programs(lab: LaunchLab) -> None:
    """The launcher execs: the program's own status, and its death by a signal, are pvdrun's."""
    done = lab.run([PVDRUN, "--pvd", "nl0", "sh", "-c", "exit 42"])
    assert done.returncode == 42 and native_decisions(done.stderr)[-1].startswith(EXECS)
    done = lab.run([PVDRUN, "--pvd", "nl0", "sh", "-c", "kill -TERM $$"])
    assert done.returncode == -15


@pytest.mark.root
def test_inner_launcher_detaches_the_outer_resolv_conf(lab: LaunchLab) -> None:
    """An inner native launch (LD_PRELOAD cleared, so the outer shim is not loaded) inside an
    outer pvdrun sees its own PvD's resolv.conf, not the outer's; inside the outer pvdrun with
    its shim preloaded, the Python command line takes over (it leaves the outer scope)."""
    # the last reader without the shim, whose own view of resolv.conf would answer otherwise
    inner = f"env -u LD_PRELOAD {PVDRUN} --pvd nl0 env -u LD_PRELOAD head -1 /etc/resolv.conf"
    done = lab.run([PVDRUN, "--pvd", "null", "sh", "-c", inner])
    assert done.returncode == 0, done.stderr
    assert done.stdout == "# resolv.conf of PvD implicit:nl0, generated by pvdrun (private mount namespace)\n"
    assert native_decisions(done.stderr)[-1].startswith(EXECS)
    done = lab.run([PVDRUN, "--pvd", "nl0", PVDRUN, "--pvd", "nl0", "true"])
    assert done.returncode == 0, done.stderr
    assert "pvdrun: native launcher: inside an outer pvdrun" + HANDS_OVER in done.stderr


@pytest.mark.root
def test_symlinked_launcher_finds_its_install(lab: LaunchLab, tmp_path: Path) -> None:
    """pipx links the command into ~/.local/bin: the launcher still finds its library and
    pvdrun-cli beside its real file."""
    link = tmp_path / "pvdrun"
    link.symlink_to(PVDRUN)
    done = lab.run([str(link), "--pvd", "nl0", "true"])
    assert done.returncode == 0 and native_decisions(done.stderr)[-1].startswith(EXECS), done.stderr
    done = lab.run([str(link), "--version"])
    assert done.returncode == 0 and done.stdout.startswith("pvdrun, version "), done.stderr


# -- a pvdd that is not there, or talks nonsense ----------------------------------------------

class FakePvdd:
    """A Unix socket server answering every request with ``reply`` (None: closing at once)."""

    def __init__(self, path: str, reply: bytes | None) -> None:
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(path)
        self.server.listen(8)
        self.reply = reply
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                if self.reply is not None:
                    try:
                        conn.recv(65536)
                        conn.sendall(self.reply)
                    except OSError:
                        pass  # the launcher gave up reading (a reply too long): its business

    def close(self) -> None:
        self.server.shutdown(socket.SHUT_RDWR)
        self.server.close()


NONSENSE = {
    "closes": None,
    "garbage": b"\x00\xff garbage\n",
    "no newline": b'{"v":1,"ok":true,"op":"scope","scope":"v=1 id=x"',
    "ok false": b'{"v":1,"ok":false,"error":{"code":"unknown_pvd","message":"no"}}\n',
    "no scope": b'{"v":1,"ok":true,"op":"scope","resolv_conf":"x"}\n',
    "escaped scope": b'{"v":1,"ok":true,"op":"scope","scope":"v=1\\u0020id=x","resolv_conf":""}\n',
    "huge": b'{"v":1,"ok":true,"op":"scope","scope":"' + b"a" * 70000 + b'"}\n',
}


@pytest.mark.parametrize("case", sorted(NONSENSE))
def test_nonsense_from_pvdd_hands_over(tmp_path: Path, case: str) -> None:
    """Whatever answers on the socket, the native launcher execs nothing it was not given and
    hands over to the Python command line (which then says what is wrong)."""
    path = str(tmp_path / "pvdd.sock")
    fake = FakePvdd(path, NONSENSE[case])
    try:
        done = subprocess.run([PVDRUN, "--pvd", "x", "--socket", path, "true"], capture_output=True,
                              text=True, timeout=60, env={**os.environ, **TRACE})
    finally:
        fake.close()
    assert done.returncode != 0, done.stderr
    assert native_decisions(done.stderr)[-1] == "pvdrun: native launcher: pvdd gave no scope for the PvD" + HANDS_OVER


@pytest.mark.root
def test_pvdd_stopped_and_restarted(lab: LaunchLab) -> None:
    """pvdd stopped: the Python command line runs the launch (a one-shot discovery); started
    again: the native launcher runs it."""
    lab.daemon.stop()
    try:
        done = lab.run([PVDRUN, "--pvd", "nl0", "true"])
        assert done.returncode == 0, done.stderr
        assert native_decisions(done.stderr)[-1].endswith("pvdd gave no scope for the PvD" + HANDS_OVER)
    finally:
        lab.daemon.start()
        lab.daemon.wait_listed("implicit:nl0")
    done = lab.run([PVDRUN, "--pvd", "nl0", "true"])
    assert done.returncode == 0 and native_decisions(done.stderr)[-1].startswith(EXECS), done.stderr


@pytest.mark.root
def test_pvdd_scope_refusal_is_the_launchers(lab: LaunchLab) -> None:
    """pvdd's scope op refuses what the launcher refuses, with the launcher's words."""
    reply = lab.daemon.request({"v": 1, "op": "scope", "name": "null"})
    assert not reply["ok"] and reply["error"]["code"] == "bad_request"
    reply = lab.daemon.request({"v": 1, "op": "scope", "name": "no-such"})
    assert not reply["ok"] and reply["error"]["code"] == "unknown_pvd"
    reply = lab.daemon.request({"v": 1, "op": "scope", "name": "nl0"})
    assert reply["ok"] and reply["scope"].startswith("v=") and reply["resolv_conf"].startswith("# resolv.conf of PvD ")
    assert EXIT_CANNOT_HONOUR == 4


# -- nothing leaves by another PvD's link ------------------------------------------------------

@pytest.fixture(scope="module")
def nlab3() -> Iterator[tuple[Lab, Pvdd]]:
    """A private scenario-3 lab (two ISPs, one link each) with pvdd in its host namespace."""
    with lab3_with_pvdd("pvn") as made:
        yield made


@pytest.mark.root
def test_native_launch_sends_nothing_on_the_other_link(nlab3: tuple[Lab, Pvdd], who: str,
                                                       request: pytest.FixtureRequest) -> None:
    """curl run by the native launcher in ISP A's PvD, asked for ISP B's service, as root and as
    a user: the launcher execs it itself, it fails, and ISP B's link (a live capture, proven by
    its markers) holds nothing of it.  Control: the same curl sent out of ISP B's link
    (--interface) is caught there by the same verdict."""
    lab, daemon = nlab3
    user = user_for(who, request)
    target = lab.isp("ispb")["service_v6"]
    curl = ["curl", "-sS", "-m", "5", f"http://[{target}]/"]
    env = {"PVDRUN_SOCKET": daemon.socket, **TRACE}
    argv = [PVDRUN, "--pvd", "ispa", *curl]
    if user is not None:
        argv = user.argv(argv, env)
    rules = {"sources": lab.isp("ispa")["host_addresses"], "destinations": [target]}
    with lab.capture("ispb") as other:
        done = lab.exec(argv, env=env)
    assert done.returncode != 0, done.stdout
    assert native_decisions(done.stderr)[-1] == EXECS + "/usr/bin/curl", done.stderr
    assert_no_leak(other, done.stderr, **rules)
    with lab.capture("ispb") as control:
        lab.exec([*curl[:1], "--interface", "ispb", *curl[1:]])
    assert_caught(control, destinations=[target])
