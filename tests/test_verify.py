"""``pvdrun verify``: a program run in one PvD, and proof of where its sockets, lookups and
packets went.

In a scenario-3 lab (two ISPs, one link each) with pvdd in the host namespace, as root (the
watch made by verify itself) and as an unprivileged user (the watch made by pvdd):

* clean runs (curl, wget, Python) pass: exit 0, nothing on ISP B's link (a live capture,
  proven by its markers), and the watch saw the program's packets on ISP A's link (so its
  "nothing elsewhere" is not blindness);
* a program that escapes the shim with the syscall instruction itself, and one that asks the
  C API for a socket in ISP B's PvD, are caught: exit 1, the offending flow on ISP B's link,
  which the capture sees too;
* CMD's failure and signal are reported, not verify's status; processes CMD leaves are ended;
  nothing of a watch outlives verify, not even after verify is killed (the next one sweeps).

Without the lab: the parser's usage errors and the verdict's rules on made-up traces.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pytest

from fixtures.capture import assert_caught, assert_no_leak
from fixtures.commands import PVDRUN
from fixtures.lab import Lab
from fixtures.launch_lab import lab3_with_pvdd
from fixtures.netns import wait_for
from fixtures.prereq import require
from fixtures.pvdd import Pvdd
from fixtures.strict_programs import _cc
from fixtures.unprivileged import User, unprivileged_user, user_for, who  # noqa: F401 - fixtures
from pvdrun.errors import EXIT_USAGE
from pvdrun.model import Pvd
from pvdrun.verify.nftwatch import Flow, Seen
from pvdrun.verify.report import Links, Outcome, Report
from pvdrun.verify.trace import Trace

# -- the verdict's rules, on made-up traces ---------------------------------------------------

A = Pvd(pvd_id="implicit:ispa", handle=1, interfaces=["ispa"], addresses=["2001:db8:a::10/64", "192.0.2.10/24"],
        dns_servers=["2001:db8:a:1::53"])


def report(sockets: list[dict[str, Any]] = (), lookups: list[dict[str, Any]] = (),
           flows: list[Flow] = (), loopback: int = 0) -> Report:
    return Report.build("ispa", A, Outcome(["x"], 1, 0, None), Trace(list(sockets), list(lookups)),
                        Links(True, None, Seen(list(flows), loopback)))


def flow(link: str, source: str | None, destination: str = "2001:db8:b:1::80") -> Flow:
    return Flow(link, "tcp", source, 40000, destination, 80, 3, 180)


def test_verdict_rules() -> None:
    assert not report().left
    assert not report(flows=[flow("ispa", "2001:db8:a::10")], loopback=5).left
    assert not report(flows=[flow("ispa", "fe80::1")]).left, "link-local sources are the link's"
    assert not report(lookups=[{"op": "lookup", "server": "[2001:db8:a:1::53]:53", "verdict": "answered"}]).left
    assert not report(sockets=[{"op": "connect", "verdict": "refused", "pvd": ""}]).left
    assert not report(sockets=[{"op": "connect", "verdict": "tied", "pvd": "implicit:ispa"}]).left
    assert report(flows=[flow("ispb", "2001:db8:b::10")]).left
    assert report(flows=[flow("ispa", "2001:db8:b::10")]).left, "another PvD's source on the PvD's link"
    assert report(flows=[flow("ispb", None)]).left, "a link made during the run"
    assert report(sockets=[{"op": "connect", "verdict": "tied", "pvd": "implicit:ispb"}]).left
    assert report(lookups=[{"op": "lookup", "server": "[2001:db8:b:1::53]:53", "verdict": "failed"}]).left
    assert report(lookups=[{"op": "lookup", "server": "192.0.2.53:53", "verdict": "answered"}]).left
    assert not report(lookups=[{"op": "lookup", "server": "[2001:db8:b:1::53]:53", "verdict": "refused"}]).left
    left = report(sockets=[{"op": "connect", "verdict": "tied", "pvd": "implicit:ispa", "pid": 7,
                            "destination": "[2001:db8:b:1::80]:80"}],
                  flows=[flow("ispb", "2001:db8:b::10"), flow("ispb", "2001:db8:b::10", "2001:db8:b:1::99")])
    found = left.to_dict()["offending"]
    assert [item["pid"] for item in found] == [7, None]
    assert [item["seen_by_shim"] for item in found] == [True, False]
    assert any("on ispb" in line and "not seen by the shim" in line for line in left.lines())


@pytest.mark.parametrize("words, message", [
    ([], "no PvD"),
    (["true"], "no PvD"),
    (["--pvd", "x"], "no command"),
    (["--pvd", "x", "--json=1", "true"], "--json takes no value"),
    (["--pvd", "x", "--report"], "--report needs a value"),
    (["--pvd", "x", "--report=", "true"], "non-empty"),
    (["--pvd", "x", "--bogus", "true"], "unknown option"),
])
def test_usage_errors(words: list[str], message: str) -> None:
    done = subprocess.run([PVDRUN, "verify", *words], capture_output=True, text=True, timeout=30)
    assert done.returncode == EXIT_USAGE, done
    assert message in done.stderr and len(done.stderr.splitlines()) == 1, done.stderr
    assert "verify" in done.stderr


def test_help_has_examples_and_statuses() -> None:
    done = subprocess.run([PVDRUN, "verify", "--help"], capture_output=True, text=True, timeout=30, check=True)
    assert "Examples:" in done.stdout and "Exit status: 0 nothing left NAME; 1 something left" in done.stdout


# -- in a lab ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def vlab() -> Iterator[tuple[Lab, Pvdd]]:
    """A private scenario-3 lab with pvdd in its host namespace."""
    require(shutil.which("nft") is not None, "nft (Debian: nftables)")
    with lab3_with_pvdd("pvv") as made:
        yield made


@pytest.fixture(scope="module")
def leak_program() -> str:
    return _cc("verify_leak")


def run_verify(lab: Lab, daemon: Pvdd, command: list[str], user: User | None, tmp_path: Path,
               *options: str, pvd: str = "ispa") -> tuple[subprocess.CompletedProcess, dict[str, Any]]:
    """``pvdrun verify --pvd PVD --report FILE OPTIONS CMD`` in the lab's host namespace (as
    ``user`` when given); its run and its JSON report."""
    shared = Path(tempfile.mkdtemp(prefix="pvv-", dir="/tmp"))  # the user cannot enter tmp_path's parents
    os.chmod(shared, 0o777)
    out = shared / "report.json"
    env = {"PVDRUN_SOCKET": daemon.socket}
    argv = [PVDRUN, "verify", "--pvd", pvd, "--report", str(out), *options, "--", *command]
    if user is not None:
        argv = user.argv(argv, env)
    try:
        done = lab.exec(argv, env=env, timeout=60)
        assert out.exists(), done
        return done, json.loads(out.read_text())
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def leak_rules(lab: Lab) -> dict[str, list[str]]:
    """The capture's verdict for ISP A's traffic on ISP B's link: from ISP A's addresses or to
    its service; an address both ISPs give the host (scenario 3's IPv4) is judged "quiet"."""
    mine, theirs = set(lab.isp("ispa")["host_addresses"]), set(lab.isp("ispb")["host_addresses"])
    return {"sources": sorted(mine - theirs), "quiet": sorted(mine & theirs),
            "destinations": [lab.isp("ispa")["service_v6"]]}


def targets(lab: Lab) -> dict[str, str]:
    return {"a": lab.isp("ispa")["service_v6"], "b": lab.isp("ispb")["service_v6"]}


def ispb_router(lab: Lab) -> str:
    """ISP B's router as the host sees it on ISP B's link: a link-local address, scoped."""
    done = lab.exec(["ip", "-6", "route", "show", "default", "dev", "ispb"], check=True)
    return done.stdout.split()[2] + "%ispb"


CLEAN = {
    "curl": lambda url: ["curl", "-sS", "-m", "10", "-o", "/dev/null", url],
    "wget": lambda url: ["wget", "-q", "-T", "10", "-O", "/dev/null", url],
    "python": lambda url: ["python3", "-c", f"import urllib.request as u; u.urlopen({url!r}, timeout=10).read()"],
}


@pytest.mark.root
@pytest.mark.parametrize("program", sorted(CLEAN))
def test_clean_run_stays(vlab: tuple[Lab, Pvdd], who: str, program: str, tmp_path: Path,
                         request: pytest.FixtureRequest) -> None:
    """A clean program asked for ISP A's service by name: verify exits 0, the watch saw its
    packets on ISP A's link and none elsewhere, and ISP B's link (a live capture) holds nothing
    from the host's ISP A addresses or to the service."""
    lab, daemon = vlab
    user = user_for(who, request)
    command = CLEAN[program]("http://svc.example/")
    require(shutil.which(command[0]) is not None, f"{command[0]}")
    rules = leak_rules(lab)
    with lab.capture("ispb") as other:
        done, found = run_verify(lab, daemon, command, user, tmp_path)
    assert done.returncode == 0, (done.stderr, found)
    assert found["verdict"] == "stayed" and found["offending"] == [], found
    assert found["command"]["status"] == 0, done.stderr
    assert found["links"]["watched"], found["links"]
    assert found["links"]["packets_inside"] > 0, "the watch saw nothing: it cannot vouch for 'nothing elsewhere'"
    assert {f["link"] for f in found["links"]["flows"]} == {"ispa"}, found["links"]["flows"]
    assert found["sockets"]["tied"] >= 1, found["sockets"]
    assert_no_leak(other, done.stderr, **rules)
    assert "stayed in the PvD" in done.stderr


@pytest.mark.root
def test_raw_syscall_escape_is_caught(vlab: tuple[Lab, Pvdd], who: str, leak_program: str, tmp_path: Path,
                                      request: pytest.FixtureRequest) -> None:
    """A program that connects with the syscall instruction itself (no library sees it) to ISP
    B's router out of ISP B's link: verify exits 1 and names the flow, the link and that the
    shim never saw it; the capture on ISP B's link sees the same connection (control)."""
    lab, daemon = vlab
    user = user_for(who, request)
    router = ispb_router(lab)
    with lab.capture("ispb") as other:
        done, found = run_verify(lab, daemon, [leak_program, "asm", router, "80"], user, tmp_path)
    assert done.returncode == 1, (done.stderr, found)
    assert found["verdict"] == "left"
    links = [item for item in found["offending"] if item["kind"] == "link"]
    assert links and all(item["link"] == "ispb" for item in links), found["offending"]
    assert links[0]["destination"] == router.split("%")[0] and links[0]["destination_port"] == 80
    assert links[0]["seen_by_shim"] is False and links[0]["pid"] is None
    assert found["sockets"]["tied"] == 0, "the shim saw a socket it should not have seen"
    assert_caught(other, destinations=[router.split("%")[0]])
    assert "LEFT" in done.stderr and "on ispb" in done.stderr


@pytest.mark.root
def test_c_api_socket_in_the_other_pvd_is_caught(vlab: tuple[Lab, Pvdd], who: str, leak_program: str,
                                                  tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """A program that asks the shim's C API for a socket in ISP B's PvD and connects to ISP B's
    service: the shim ties it as asked, the trace says so, the watch sees it on ISP B's link
    with the process that made it; exit 1."""
    lab, daemon = vlab
    user = user_for(who, request)
    target = targets(lab)["b"]
    with lab.capture("ispb") as other:
        done, found = run_verify(lab, daemon, [leak_program, "api", "ispb", target, "80"], user, tmp_path)
    assert done.returncode == 1, (done.stderr, found)
    kinds = {item["kind"] for item in found["offending"]}
    assert kinds == {"socket", "link"}, found["offending"]
    sockets = [item for item in found["offending"] if item["kind"] == "socket"]
    assert "implicit:ispb" in sockets[0]["why"]
    links = [item for item in found["offending"] if item["kind"] == "link"]
    assert all(item["link"] == "ispb" for item in links)
    assert any(item["destination"] == target and item["pid"] == found["command"]["pid"] for item in links), links
    assert_caught(other, destinations=[target])


@pytest.mark.root
def test_command_status_and_signal_are_reported_not_returned(vlab: tuple[Lab, Pvdd], tmp_path: Path) -> None:
    lab, daemon = vlab
    done, found = run_verify(lab, daemon, ["sh", "-c", "exit 3"], None, tmp_path)
    assert done.returncode == 0 and found["command"] == {**found["command"], "status": 3, "signal": None}
    assert "command: exit 3" in done.stderr
    done, found = run_verify(lab, daemon, ["sh", "-c", "kill -TERM $$"], None, tmp_path)
    assert done.returncode == 0 and found["command"]["signal"] == "SIGTERM" and found["command"]["status"] is None
    assert "killed by SIGTERM" in done.stderr


@pytest.mark.root
def test_json_is_the_last_line_of_stdout(vlab: tuple[Lab, Pvdd], tmp_path: Path) -> None:
    lab, daemon = vlab
    done = lab.exec([PVDRUN, "verify", "--json", "--pvd", "ispa", "echo", "hello"],
                    env={"PVDRUN_SOCKET": daemon.socket})
    lines = done.stdout.splitlines()
    assert lines[0] == "hello" and json.loads(lines[-1])["verdict"] == "stayed", done
    assert "pvdrun verify" not in done.stderr


def watch_leftovers(lab: Lab) -> tuple[list[str], list[str]]:
    """The watch tables in the lab's host namespace, and the watch cgroups anywhere."""
    tables = lab.exec(["nft", "list", "tables"], check=True).stdout.split()
    found = []
    for top, dirs, _ in os.walk("/sys/fs/cgroup"):
        found += [os.path.join(top, d) for d in dirs if d.startswith("verify-")]
        if top.count("/") > 8:
            dirs[:] = []
    private = "/run/pvdrun/cgroup2"
    if os.path.isdir(private):
        for top, dirs, _ in os.walk(private):
            found += [os.path.join(top, d) for d in dirs if d.startswith("verify-")]
    return [t for t in tables if t.startswith("pvdrun_verify_")], found


@pytest.mark.root
def test_leftover_processes_end_and_nothing_stays(vlab: tuple[Lab, Pvdd], who: str, tmp_path: Path,
                                                  request: pytest.FixtureRequest) -> None:
    """CMD leaves a child running: verify ends it and says so; no table, no cgroup stays."""
    lab, daemon = vlab
    user = user_for(who, request)
    seconds = str(100000 + os.getpid() % 100000 + (1 if user else 0))
    marker = f"^sleep {seconds}$"
    done, found = run_verify(lab, daemon, ["sh", "-c", f"sleep {seconds} & echo started"], user, tmp_path)
    assert done.returncode == 0, done.stderr
    assert len(found["ended_after_the_command"]) == 1, found
    assert "ended after the command" in done.stderr
    assert subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode == 1, "the child still runs"
    assert watch_leftovers(lab) == ([], [])


@pytest.mark.root
def test_killed_verify_is_swept_by_the_next(vlab: tuple[Lab, Pvdd], tmp_path: Path) -> None:
    """verify killed with SIGKILL leaves its table and cgroup; the next verify removes them."""
    lab, daemon = vlab
    proc = lab.popen([PVDRUN, "verify", "--pvd", "ispa", "sleep", "300"],
                     env={**os.environ, "PVDRUN_SOCKET": daemon.socket},
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: watch_leftovers(lab)[0], what="the watch table")
    finally:
        proc.kill()
        proc.wait()
    subprocess.run(["pkill", "-f", "^sleep 300$"], check=False)
    wait_for(lambda: not any(open(os.path.join(c, "cgroup.procs")).read().strip()
                             for c in watch_leftovers(lab)[1]), what="the sleep ending")
    assert watch_leftovers(lab)[0], "SIGKILL left nothing: the sweep below proves nothing"
    done, _ = run_verify(lab, daemon, ["true"], None, tmp_path)
    assert done.returncode == 0
    assert watch_leftovers(lab) == ([], [])


@pytest.mark.root
def test_user_without_pvdd_says_links_are_not_watched(vlab: tuple[Lab, Pvdd], tmp_path: Path,
                                                      unprivileged_user: User) -> None:
    """A user with --no-daemon: the shim's trace only; the report says why the links are not
    watched, and the verdict still holds what the trace shows."""
    lab, daemon = vlab
    done, found = run_verify(lab, daemon, ["curl", "-sS", "-m", "5", "-o", "/dev/null",
                                           f"http://[{targets(lab)['a']}]/"],
                             unprivileged_user, tmp_path, "--no-daemon")
    assert found["links"]["watched"] is False and "root" in found["links"]["why"], found["links"]
    assert "links: not watched" in done.stderr


def _pvdd(daemon: Pvdd) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(daemon.socket)
    sock.settimeout(10)
    return sock


def _ask(sock: socket.socket, message: dict[str, Any]) -> dict[str, Any]:
    sock.sendall((json.dumps({"v": 1, **message}) + "\n").encode())
    line = b""
    while not line.endswith(b"\n"):
        line += sock.recv(65536)
    return json.loads(line)


@pytest.mark.root
def test_pvdd_watches_belong_to_their_connection_and_user(vlab: tuple[Lab, Pvdd],
                                                          unprivileged_user: User) -> None:
    """A watch is read only on its connection, entered only by its user, removed with its
    connection; a process held in strict mode or in a watch cannot be moved by another."""
    lab, daemon = vlab
    owner = _pvdd(daemon)
    token = _ask(owner, {"op": "watch"})["token"]
    with _pvdd(daemon) as stranger:
        reply = _ask(stranger, {"op": "watch_end", "token": token})
        assert reply["ok"] is False and reply["error"]["code"] == "forbidden", reply
    # the user (another uid than the watch's owner, root here) may not enter it
    script = ("import json,socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); "
              "s.sendall((json.dumps({'v':1,'op':'watch_enter','token':sys.argv[2]})+'\\n').encode()); "
              "print(s.recv(65536).decode())")
    done = subprocess.run(unprivileged_user.python(["-c", script, daemon.socket, token]),
                          capture_output=True, text=True, timeout=30)
    reply = json.loads(done.stdout)
    assert reply["ok"] is False and reply["error"]["code"] == "forbidden", (reply, done.stderr)
    assert watch_leftovers(lab)[0], "the watch made no table"
    owner.close()
    wait_for(lambda: watch_leftovers(lab) == ([], []), what="the watch removed with its connection")
    with _pvdd(daemon) as again:
        reply = _ask(again, {"op": "watch_end", "token": token})
        assert reply["ok"] is False, reply


@pytest.mark.root
def test_isp_going_down_mid_run_fails_and_sends_nothing_elsewhere(vlab: tuple[Lab, Pvdd]) -> None:
    """A program asking ISP A's service again and again; ISP A's link goes down under it (lab
    fault): its requests then fail instead of going out by ISP B, whose link (a live capture)
    holds nothing of it, and verify says it stayed."""
    lab, daemon = vlab
    url = f"http://[{targets(lab)['a']}]/"
    loop = (f"for i in 1 2 3 4 5 6 7 8; do if curl -sS -m 2 -o /dev/null {url} 2>/dev/null; "
            "then echo ok; else echo fail; fi; sleep 0.3; done")
    shared = Path(tempfile.mkdtemp(prefix="pvv-", dir="/tmp"))
    out = shared / "report.json"
    try:
        with lab.capture("ispb") as other:
            proc = lab.popen([PVDRUN, "verify", "--pvd", "ispa", "--report", str(out), "sh", "-c", loop],
                             env={**os.environ, "PVDRUN_SOCKET": daemon.socket}, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
            try:
                assert proc.stdout is not None
                first = proc.stdout.readline().strip()
                subprocess.run([PVDRUN, "lab", "fault", "--name", lab.name, "ispa", "--down"], check=True,
                               capture_output=True, timeout=60)
                rest, stderr = proc.communicate(timeout=90)
            finally:
                proc.kill()
                proc.wait()
        found = json.loads(out.read_text())
    finally:
        shutil.rmtree(shared, ignore_errors=True)
        subprocess.run([PVDRUN, "lab", "heal", "--name", lab.name], check=True, capture_output=True, timeout=120)
        wait_for(lambda: daemon.request({"v": 1, "op": "scope", "name": "ispa"}).get("ok"), what="ispa back")
    assert first == "ok", (first, rest, stderr)
    assert rest.split()[-1] == "fail", (rest, stderr)
    assert proc.returncode == 0 and found["verdict"] == "stayed", (stderr, found["offending"])
    assert_no_leak(other, stderr, **leak_rules(lab))


@pytest.mark.root
def test_link_made_during_the_run_is_watched_too(vlab: tuple[Lab, Pvdd], leak_program: str, tmp_path: Path) -> None:
    """CMD (root) makes a new link and sends out of it with raw system calls: the watch, made
    before the link existed, still counts it (without its source) and verify exits 1."""
    lab, daemon = vlab
    script = (f"ip link add pvvx0 type veth peer name pvvx1 && ip link set pvvx0 up && ip link set pvvx1 up && "
              f"ip addr add 10.99.0.1/24 dev pvvx0 && {leak_program} asm 10.99.0.2 80; ip link del pvvx0")
    try:
        done, found = run_verify(lab, daemon, ["sh", "-c", script], None, tmp_path)
    finally:
        lab.exec(["ip", "link", "del", "pvvx0"])
    assert done.returncode == 1, (done.stderr, found)
    links = [item for item in found["offending"] if item["kind"] == "link"]
    assert links and links[0]["link"] == "pvvx0" and links[0]["destination"] == "10.99.0.2", found["offending"]
    assert links[0]["source"] is None


@pytest.mark.root
def test_null_pvd_run_stays(vlab: tuple[Lab, Pvdd], tmp_path: Path) -> None:
    """The null PvD: curl cannot open a socket, nothing leaves, verify exits 0."""
    lab, daemon = vlab
    done, found = run_verify(lab, daemon, ["curl", "-sS", "-m", "3", f"http://[{targets(lab)['b']}]/"], None,
                             tmp_path, pvd="null")
    assert done.returncode == 0 and found["verdict"] == "stayed", found
    assert found["command"]["status"] != 0 and found["links"]["flows"] == []
    assert found["sockets"]["refused"] >= 1, found["sockets"]


@pytest.mark.root
def test_strict_run_says_the_links_are_not_watched(vlab: tuple[Lab, Pvdd], tmp_path: Path) -> None:
    """A program in strict mode moves into its PvD's cgroup, where the watch cannot follow it:
    the report says so instead of vouching for the links."""
    lab, daemon = vlab
    done, found = run_verify(lab, daemon, ["true"], None, tmp_path, "--strict")
    assert found["links"]["watched"] is False and "strict mode" in found["links"]["why"], found["links"]
    assert "links: not watched (strict mode" in done.stderr


@pytest.mark.root
def test_sigterm_to_verify_reaches_the_command(vlab: tuple[Lab, Pvdd]) -> None:
    """SIGTERM to verify goes on to CMD; verify still reports (CMD killed by SIGTERM, exit 0)."""
    lab, daemon = vlab
    proc = lab.popen([PVDRUN, "verify", "--json", "--pvd", "ispa", "sh", "-c", "echo up; exec sleep 60"],
                     env={**os.environ, "PVDRUN_SOCKET": daemon.socket}, stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "up"
        verifier = int(subprocess.run(["pgrep", "-f", "-n", "verify --json --pvd ispa sh"], capture_output=True,
                                      text=True, check=True).stdout.split()[0])
        os.kill(verifier, signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, err
    assert json.loads(out.splitlines()[-1])["command"]["signal"] == "SIGTERM"
