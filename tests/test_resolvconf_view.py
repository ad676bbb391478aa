"""resolv.conf as the PvD sees it, for every user, and the host's resolver daemons out of reach
(shim/hooks/open.c, shim/dns/resolvconf_view.c, shim/core/host_resolvers.c; lab scenario 3).

dig, host and nslookup read resolv.conf themselves.  Run through ``pvdrun --pvd ispb`` -- as
root (the launcher's private mount and the shim's view) and as a real unprivileged user (the
shim's view alone, the launcher's one-shot discovery) -- with the namespace's resolv.conf
naming ISP A's server, they ask ISP B's server only and get ISP B's split-horizon answer; the
suite's capture on ISP A's link (proven live by its marker) holds nothing of them, and the
control, the same program unscoped, is caught there by the same verdict.  Every file the tests
mount lives in a private mount namespace of the test; the host's /etc and /run are never
touched."""
from __future__ import annotations

import ipaddress
import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pytest

from fixtures.capture import assert_caught, assert_no_leak, ip_destination, ip_source, is_link_control
from fixtures.prereq import require
from fixtures.resolvconf import nameservers
from fixtures.unprivileged import User, unprivileged_user  # noqa: F401  (fixture)
from pvdrun.resolve.resolvconf import NO_SERVER_PLACEHOLDER
from fixtures.pvdd_lab import PvddInLab
from fixtures.resolve_lab import asan_preload  # noqa: F401  (fixture)

pytestmark = pytest.mark.root

from fixtures.commands import PVDRUN  # noqa: E402
PROBE_SRC = Path(__file__).parent / "c" / "resolvconf_probe.c"
ISP, OTHER = "ispb", "ispa"
PROGRAMS = {
    "dig": ["dig", "+short", "+tries=1", "+time=3", "AAAA", "svc.example"],
    "host": ["host", "-t", "AAAA", "-W", "3", "svc.example"],
    "nslookup": ["nslookup", "-type=AAAA", "-timeout=3", "svc.example"],
}
WHO = ["root", "user"]
OPENERS = ["open", "open64", "openat", "openat64", "open_2", "open64_2", "openat_2", "openat64_2", "fopen",
           "fopen64"]
RESOLVED = "/run/systemd/resolve/io.systemd.Resolve"


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A world-readable directory for the test's files, removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="pvdrun-rcview-"))
    try:
        path.chmod(0o755)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """tests/c/resolvconf_probe.c with _FORTIFY_SOURCE (so that __open_2 & co are called), in a
    directory the test user can read."""
    require(shutil.which(os.environ.get("CC", "cc")) is not None, "a C compiler (cc)")
    where = Path(tempfile.mkdtemp(prefix="pvdrun-rcprobe-"))
    try:
        where.chmod(0o755)
        out = where / "resolvconf_probe"
        subprocess.run([os.environ.get("CC", "cc"), "-std=gnu11", "-O2", "-D_FORTIFY_SOURCE=2", "-Wall", "-Wextra",
                        "-Werror", "-D_GNU_SOURCE", "-o", str(out), str(PROBE_SRC)], check=True)
        symbols = subprocess.run(["nm", "-D", str(out)], capture_output=True, text=True, check=True).stdout
        assert "__open_2" in symbols and "__openat64_2" in symbols, symbols
        yield out
    finally:
        shutil.rmtree(where, ignore_errors=True)


def in_private_ns(setup: list[str], argv: list[str]) -> list[str]:
    """argv running ``argv`` in a new private mount namespace after the ``setup`` commands (any
    failing one: exit 99); what they mount disappears with the namespace."""
    steps = " && ".join([*setup, "true"])
    return ["unshare", "-m", "--propagation", "private", "sh", "-c",
            f"{{ {steps}; }} || exit 99; exec {shlex.join(argv)}"]


def bind_resolv_conf(workdir: Path, text: str, name: str = "host-resolv.conf") -> str:
    """Setup step binding ``text`` over /etc/resolv.conf (the file stays until the test ends)."""
    path = workdir / name
    path.write_text(text)
    path.chmod(0o644)
    return f"mount --bind {shlex.quote(str(path))} /etc/resolv.conf"


def no_daemon(workdir: Path) -> dict[str, str]:
    """pvdrun's environment: no pvdd (the launcher's one-shot discovery)."""
    return {"PVDRUN_SOCKET": str(workdir / "no-daemon.sock")}


@pytest.fixture(scope="module")
def user_pvdd(lab3: Any) -> Iterator[PvddInLab]:
    """pvdd in lab 3, for the test user: the launcher's one-shot discovery, without root, cannot
    solicit the Router Advertisements that carry the PvDs' DNS servers (RDNSS)."""
    daemon = PvddInLab(lab3)
    try:
        yield daemon.start()
    finally:
        daemon.cleanup()


class Launch:
    """``pvdrun --pvd ispb ARGV`` as root (the launcher's one-shot discovery, its private
    mount and the shim; "root-nomount": without the mount, PVDRUN_NO_RESOLV_CONF=1) or as the
    test user (pvdd, the shim alone)."""

    def __init__(self, request: pytest.FixtureRequest, who: str, workdir: Path) -> None:
        self.who, self.workdir = who, workdir
        self.user: User | None = request.getfixturevalue("unprivileged_user") if who == "user" else None
        self.socket = request.getfixturevalue("user_pvdd").socket if who == "user" else None

    def __call__(self, argv: list[str]) -> list[str]:
        if self.user is None:
            env = no_daemon(self.workdir)
            if self.who == "root-nomount":  # the shim's view alone, as root
                env["PVDRUN_NO_RESOLV_CONF"] = "1"
            return ["env", *(f"{k}={v}" for k, v in env.items()), PVDRUN, "--pvd", ISP, *argv]
        assert self.socket is not None
        passed = {k: os.environ[k] for k in ("PVDRUN_SHIM_LIBRARY",) if k in os.environ}  # docs/testing.md
        return self.user.python(["-m", "pvdrun.cli", "--pvd", ISP, "--socket", self.socket, *argv], passed)


def addresses(text: str) -> set[str]:
    """Every IP address written in ``text`` (normalised)."""
    found = set()
    for word in text.replace(",", " ").split():
        try:
            found.add(str(ipaddress.ip_address(word.rstrip("."))))
        except ValueError:
            continue
    return found


def answer(lab: Any, isp: str) -> str:
    return str(ipaddress.ip_address(lab.isp(isp)["service_v6"]))


def leak_rules(lab: Any) -> dict[str, Any]:
    """The other ISP's link must hold nothing from ISP B's host addresses, nothing to ISP A's
    DNS servers (the host's resolv.conf names them), nothing but link control from the host's
    ISP A addresses."""
    other = lab.isp(OTHER)
    return {"sources": lab.isp(ISP)["host_addresses"], "quiet": other["host_addresses"],
            "destinations": [other[k] for k in ("dns_v4", "dns_v6") if other[k]]}


def assert_asked_own_server(own: Any, lab: Any, *context: Any) -> None:
    """On the PvD's own link: the query went to the PvD's server, and nothing to the server the
    host's resolv.conf names (ISP A's, which the routers may well reach through ISP B: the
    other link alone cannot tell)."""
    assert_no_leak(own, *context, destinations=[lab.isp(OTHER)["dns_v6"]])
    assert own.frames_to([lab.isp(ISP)["dns_v6"]]), ("no query to the PvD's server", own.show(), *context)


def run(lab: Any, argv: list[str], timeout: float = 90) -> subprocess.CompletedProcess:
    return lab.exec(argv, timeout=timeout)


# ---- dig, host, nslookup ----------------------------------------------------------------------

@pytest.mark.parametrize("program", sorted(PROGRAMS))
@pytest.mark.parametrize("who", ["root", "root-nomount", "user"])
def test_resolver_programs_ask_only_the_pvds_server(lab3: Any, request: pytest.FixtureRequest,
                                                    workdir: Path, who: str, program: str) -> None:
    launch = Launch(request, who, workdir)
    setup = [bind_resolv_conf(workdir, nameservers(lab3.isp(OTHER)["dns_v6"]))]
    rules = leak_rules(lab3)
    with lab3.capture(OTHER) as other, lab3.capture(ISP) as own:
        done = run(lab3, in_private_ns(setup, launch(PROGRAMS[program])))
    assert_no_leak(other, done.stdout, done.stderr, **rules)
    assert_asked_own_server(own, lab3, done.stdout, done.stderr)
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert answer(lab3, ISP) in addresses(done.stdout), done.stdout
    # Control: the same program unscoped asks the resolv.conf's server, on ISP A's link.
    with lab3.capture(OTHER) as control:
        plain = run(lab3, in_private_ns(setup, PROGRAMS[program]))
    assert_caught(control, plain.stdout, plain.stderr, **rules)
    assert answer(lab3, ISP) not in addresses(plain.stdout), plain.stdout


@pytest.mark.parametrize("who", WHO)
def test_a_stub_resolver_in_resolv_conf_is_never_asked(lab3: Any, request: pytest.FixtureRequest,
                                                       workdir: Path, who: str) -> None:
    """The namespace's resolv.conf names 127.0.0.53, as on hosts running systemd-resolved; a
    listener there records what reaches it.  dig through pvdrun asks ISP B's server and the
    listener hears nothing; unscoped, dig's query reaches the listener."""
    launch = Launch(request, who, workdir)
    heard = workdir / "stub.log"
    heard.touch()
    listener = lab3.popen(["socat", "-u", "UDP4-RECV:53,bind=127.0.0.53,reuseaddr",
                           f"OPEN:{heard},append"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(100):
            if "127.0.0.53:53" in run(lab3, ["ss", "-Hlun"]).stdout:
                break
            assert listener.poll() is None, listener.stderr.read() if listener.stderr else ""
            subprocess.run(["sleep", "0.05"], check=False)
        setup = [bind_resolv_conf(workdir, "nameserver 127.0.0.53\noptions edns0 trust-ad\n")]
        with lab3.capture(OTHER) as other, lab3.capture(ISP) as own:
            done = run(lab3, in_private_ns(setup, launch(PROGRAMS["dig"])))
        assert_no_leak(other, done.stdout, done.stderr, **leak_rules(lab3))
        assert own.frames_to([lab3.isp(ISP)["dns_v6"]]), own.show()
        assert done.returncode == 0 and answer(lab3, ISP) in addresses(done.stdout), (done.stdout, done.stderr)
        assert b"svc" not in heard.read_bytes(), heard.read_bytes()
        plain = run(lab3, in_private_ns(setup, ["dig", "+tries=1", "+time=1", "AAAA", "svc.example"]))
        assert b"svc" in heard.read_bytes(), (plain.stdout, plain.stderr)
    finally:
        listener.terminate()
        listener.wait(timeout=10)


@pytest.mark.parametrize("who", WHO)
def test_resolv_conf_symlinked_into_run_systemd_resolve(lab3: Any, request: pytest.FixtureRequest,
                                                        workdir: Path, probe: Path, who: str) -> None:
    """/etc/resolv.conf is a symlink to .../run/systemd/resolve/stub-resolv.conf (an overlay on
    /etc over a tmpfs, in the test's mount namespace).  Scoped, reading /etc/resolv.conf, the
    symlink's target by its own path, and systemd-resolved's two files by theirs (absent here)
    all give ISP B's view; dig asks ISP B.  Unscoped, the target holds ISP A's server."""
    launch = Launch(request, who, workdir)
    root = workdir / "sd"
    root.mkdir()
    stub = root / "run/systemd/resolve/stub-resolv.conf"
    host_text = nameservers(lab3.isp(OTHER)["dns_v6"])
    setup = [f"mount -t tmpfs -o mode=755 tmpfs {root}",
             f"mkdir -p {stub.parent} {root}/up {root}/work",
             f"printf %s {shlex.quote(host_text)} > {stub}", f"chmod 644 {stub}",
             f"ln -s {stub} {root}/up/resolv.conf",
             f"mount -t overlay overlay -o lowerdir=/etc,upperdir={root}/up,workdir={root}/work /etc"]
    reads = "; ".join(f"echo '--- {p}'; {probe} read {fn} {p}" for fn, p in
                      [("open", "/etc/resolv.conf"), ("fopen", str(stub)), ("openat", str(stub)),
                       ("open", "/run/systemd/resolve/stub-resolv.conf"), ("fopen", "/run/systemd/resolve/resolv.conf")])
    shown = run(lab3, in_private_ns(setup, launch(["sh", "-c", reads])))
    assert shown.returncode == 0, (shown.stdout, shown.stderr)
    parts = shown.stdout.split("--- ")[1:]
    assert len(parts) == 5, shown.stdout
    isp_dns = lab3.isp(ISP)["dns_v6"]
    for part in parts:
        assert f"nameserver {isp_dns}" in part and lab3.isp(OTHER)["dns_v6"] not in part, shown.stdout
    plain = run(lab3, in_private_ns(setup, ["sh", "-c", f"readlink /etc/resolv.conf; {probe} read fopen {stub}"]))
    assert plain.stdout.splitlines()[0] == str(stub), plain.stdout
    assert f"nameserver {lab3.isp(OTHER)['dns_v6']}" in plain.stdout, plain.stdout
    with lab3.capture(OTHER) as other, lab3.capture(ISP) as own:
        done = run(lab3, in_private_ns(setup, launch(PROGRAMS["dig"])))
    assert_no_leak(other, done.stdout, done.stderr, **leak_rules(lab3))
    assert_asked_own_server(own, lab3, done.stdout, done.stderr)
    assert done.returncode == 0 and answer(lab3, ISP) in addresses(done.stdout), (done.stdout, done.stderr)
    with lab3.capture(OTHER) as control:
        plain = run(lab3, in_private_ns(setup, PROGRAMS["dig"]))
    assert_caught(control, plain.stdout, **leak_rules(lab3))


def scope_line(lab: Any, workdir: Path) -> str:
    """ISP B's scope line, as the launcher gives it."""
    done = run(lab, ["env", *(f"{k}={v}" for k, v in no_daemon(workdir).items()), PVDRUN, "--pvd", ISP,
                     "sh", "-c", 'printf %s "$PVDRUN_SCOPE"'])
    assert done.returncode == 0 and done.stdout.startswith("v=1 "), done.stderr
    return done.stdout


def test_a_pvd_without_dns_servers_sends_nothing(lab3: Any, workdir: Path, probe: Path) -> None:
    """ISP B's PvD with its dns= tokens removed: the view names no real server (the placeholder
    the launcher also writes), dig fails, and neither link carries a query (the namespace's
    resolv.conf names ISP A's server, which the control asks)."""
    from pvdrun.shim import library_path
    line = " ".join(t for t in scope_line(lab3, workdir).split() if not t.startswith("dns="))
    env = ["env", f"PVDRUN_SCOPE={line}", f"LD_PRELOAD={library_path()}"]
    setup = [bind_resolv_conf(workdir, nameservers(lab3.isp(OTHER)["dns_v6"], lab3.isp(OTHER)["dns_v4"]))]
    view = run(lab3, in_private_ns(setup, [*env, str(probe), "read", "open", "/etc/resolv.conf"]))
    servers = [ln.split()[1] for ln in view.stdout.splitlines() if ln.startswith("nameserver")]
    assert servers == [NO_SERVER_PLACEHOLDER], view.stdout
    everything = {lab3.isp(i)[k] for i in ("ispa", "ispb") for k in ("dns_v4", "dns_v6") if lab3.isp(i)[k]}
    hosts = lab3.isp("ispa")["host_addresses"] + lab3.isp("ispb")["host_addresses"]
    with lab3.capture("ispa") as cap_a, lab3.capture("ispb") as cap_b:
        done = run(lab3, in_private_ns(setup, [*env, "dig", "+tries=1", "+time=2", "AAAA", "svc.example"]))
    assert_no_leak(cap_a, done.stdout, done.stderr, quiet=hosts, destinations=sorted(everything))
    # The PvD's own link: no server asked.  dig's socket is tied to the PvD (its wildcard bind)
    # before it sends to the placeholder, and Linux sends a device-bound IPv4 datagram to 127/8
    # out of that device (the on-link fallback, docs/security.md): such a datagram may show
    # there, on the PvD's link only, and nothing else of the program.
    assert_no_leak(cap_b, done.stdout, done.stderr, destinations=sorted(everything),
                   matching={"from the host, to anything but 127/8":
                             lambda f: ip_source(f) in hosts and not is_link_control(f)
                             and not ipaddress.ip_address(ip_destination(f) or "::").is_loopback})
    assert done.returncode != 0, done.stdout
    assert NO_SERVER_PLACEHOLDER in done.stdout + done.stderr, (done.stdout, done.stderr)
    with lab3.capture(OTHER) as control:
        plain = run(lab3, in_private_ns(setup, ["dig", "+tries=1", "+time=2", "AAAA", "svc.example"]))
    assert_caught(control, plain.stdout, **leak_rules(lab3))


# ---- every way to open it (C) -----------------------------------------------------------------

def probe_cases(probe: Path, leave_out: tuple[str, ...] = ()) -> str:
    """One shell script running every probe case (but ``leave_out``), each introduced by a
    '=== NAME' line."""
    p = shlex.quote(str(probe))
    cases = [(f"read-{fn}", f"{p} read {fn} /etc/resolv.conf") for fn in OPENERS]
    cases += [("twice", f"{p} twice /etc/resolv.conf"), ("many", f"{p} many /etc/resolv.conf 10000"),
              ("efault", f"{p} efault"), ("errno-view", f"{p} errno /etc/resolv.conf"),
              ("errno-other", f"{p} errno /etc/hostname"),
              *[(f"kind-{k}", f"{p} kind /etc/resolv.conf {k}") for k in ("rdonly", "wronly-creat", "path", "rdwr")],
              ("relative", f"{p} relative /etc resolv.conf"),
              ("relative-systemd", f"{p} relative /run systemd/resolve/stub-resolv.conf"),
              ("dotted", f"{p} read open //etc/./resolv.conf"),
              ("vfork", f"{p} vfork /etc/resolv.conf"), ("signal", f"{p} signal /etc/resolv.conf"),
              ("closeall", f"{p} closeall /etc/resolv.conf"), ("other-file", f"{p} kind /etc/hostname rdonly")]
    return "; ".join(f"echo '=== {name}'; {command}" for name, command in cases if name not in leave_out)


def split_cases(text: str) -> dict[str, str]:
    out = {}
    for chunk in text.split("=== ")[1:]:
        name, _, body = chunk.partition("\n")
        out[name.strip()] = body
    return out


@pytest.mark.parametrize("who", WHO)
def test_every_open_reads_the_view(lab3: Any, request: pytest.FixtureRequest, workdir: Path,
                                   probe: Path, who: str) -> None:
    launch = Launch(request, who, workdir)
    setup = [bind_resolv_conf(workdir, nameservers(lab3.isp(OTHER)["dns_v6"]))]
    done = run(lab3, in_private_ns(setup, launch(["sh", "-c", probe_cases(probe)])))
    cases = split_cases(done.stdout)
    own, foreign = f"nameserver {lab3.isp(ISP)['dns_v6']}", lab3.isp(OTHER)["dns_v6"]
    for fn in OPENERS:
        assert own in cases[f"read-{fn}"] and foreign not in cases[f"read-{fn}"], (fn, done.stdout, done.stderr)
    assert cases["twice"].strip() == "a=# resol b=# resol a-again=v.conf  same-file=1", cases["twice"]
    highest = int(cases["many"].split()[1])
    assert highest < 16, cases["many"]  # 10000 opens, no descriptor kept
    assert cases["efault"].strip() == "efault OK", cases["efault"]
    assert cases["errno-view"].strip() == "fd ok errno 4242", cases["errno-view"]
    assert cases["errno-other"].strip() == "fd ok errno 4242", cases["errno-other"]
    assert cases["kind-rdonly"].strip() == "view"
    written = "file" if who == "root" else "error Permission denied"
    assert cases["kind-wronly-creat"].strip() == written, cases["kind-wronly-creat"]
    assert cases["kind-rdwr"].strip() == written, cases["kind-rdwr"]
    assert cases["kind-path"].strip() == "file", cases["kind-path"]
    assert cases["relative"].strip() == "view" and cases["relative-systemd"].strip() == "view", done.stdout
    assert own in cases["dotted"], cases["dotted"]
    vfork_child, _, vfork_parent = cases["vfork"].partition("--- parent")
    assert own in vfork_child and own in vfork_parent, cases["vfork"]
    handler, _, main = cases["signal"].partition("--- main")
    assert own in handler and own in main, cases["signal"]
    assert cases["closeall"].startswith("view\n") and own in cases["closeall"], cases["closeall"]
    assert cases["other-file"].strip() == "file"
    # Unscoped: the real file, untouched.
    plain = run(lab3, in_private_ns(setup, [str(probe), "read", "open", "/etc/resolv.conf"]))
    assert plain.stdout == nameservers(lab3.isp(OTHER)["dns_v6"]), plain.stdout
    absent = run(lab3, in_private_ns(setup, [str(probe), "read", "open", "/run/systemd/resolve/resolv.conf"]))
    assert absent.stdout.startswith("error No such file"), absent.stdout


# ---- the host's resolver daemons --------------------------------------------------------------

NSCD_CONF = """debug-level 1
enable-cache hosts yes
persistent hosts no
shared hosts no
positive-time-to-live hosts 600
enable-cache passwd no
enable-cache group no
enable-cache services no
enable-cache netgroup no
"""


def scoped_then_plain(lab: Any, launch: Launch, setup: list[str], inside: str,
                      between: str = "true") -> tuple[dict[str, str], dict[str, str], str]:
    """Run the '=== CASE'-introduced commands of ``inside`` scoped (``launch``), then
    ``between``, then unscoped, in one private mount namespace after ``setup``: the two runs'
    outputs by case, and the whole output (for messages)."""
    script = (f"echo '=== scoped'; {shlex.join(launch(['sh', '-c', inside]))}; {between}; "
              f"echo '=== plain'; {inside}")
    done = run(lab, in_private_ns(setup, ["sh", "-c", script]))
    assert done.returncode != 99, done.stderr
    scoped_part, _, plain_part = done.stdout.partition("=== plain")
    return split_cases(scoped_part), split_cases(plain_part), done.stdout + done.stderr


def daemon_setup(starts: list[str], socket: str, pids: Path) -> list[str]:
    """A tmpfs on /run (this namespace's only), then each of ``starts`` in the background (their
    process ids in ``pids``, for :func:`stop_daemons`), waiting for ``socket`` to appear (exit 99
    when it does not)."""
    wait = f"i=0; while [ ! -S {socket} ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; [ -S {socket} ]"
    return ["mount -t tmpfs -o mode=755 tmpfs /run", "mkdir -p /run/nscd /run/systemd/resolve",
            *(f"{{ {start} </dev/null >/dev/null & echo $! >> {pids}; }}" for start in starts), wait]


def stop_daemons(pids: Path) -> None:
    """End the daemons a test started (by their process ids), whatever happened."""
    if not pids.exists():
        return
    for word in pids.read_text().split():
        try:
            os.kill(int(word), 15)
        except (ValueError, ProcessLookupError):
            continue


@pytest.mark.parametrize("who", WHO)
def test_nscd_is_out_of_reach(lab3: Any, request: pytest.FixtureRequest, workdir: Path, probe: Path,
                              who: str) -> None:
    """A real nscd in the test's mount namespace (its own /run/nscd).  Scoped: getent hosts is
    answered from ISP B's DNS and nscd logs no request for the name; a program's connect() to
    /run/nscd/socket or /var/run/nscd/socket is refused with ECONNREFUSED.  Unscoped, both
    reach nscd."""
    launch = Launch(request, who, workdir)
    require(shutil.which("nscd") is not None, "nscd (Debian package nscd)")
    conf, log = workdir / "nscd.conf", workdir / "nscd.log"
    conf.write_text(NSCD_CONF)
    conf.chmod(0o644)
    pids = workdir / "pids"
    setup = daemon_setup([f"nscd -d -f {conf} 2>{log}"], "/run/nscd/socket", pids)
    p = shlex.quote(str(probe))
    inside = (f"echo '=== getent'; getent hosts svc.example; echo '=== run'; {p} connect /run/nscd/socket; "
              f"echo '=== var'; {p} connect /var/run/nscd/socket; echo '=== dotted'; {p} connect //run/./nscd/socket")
    try:
        mine, plain, output = scoped_then_plain(lab3, launch, setup, inside + "; sleep 0.3",
                                                f"sleep 0.3; cp {log} {log}.scoped")
    finally:
        stop_daemons(pids)
    assert answer(lab3, ISP) in addresses(mine["getent"]), output
    for case in ("run", "var", "dotted"):
        assert mine[case].strip() == "connect ECONNREFUSED", (case, output)
        assert plain[case].strip() == "connect OK", (case, output)
    before = Path(f"{log}.scoped").read_text()
    after = log.read_text()
    assert "svc.example" not in before, before
    assert "svc.example" in after, after  # the control reached nscd


@pytest.mark.parametrize("who", WHO)
def test_systemd_resolved_varlink_is_out_of_reach(lab3: Any, request: pytest.FixtureRequest, workdir: Path,
                                                  probe: Path, who: str) -> None:
    """Listeners at systemd-resolved's varlink sockets in the test's mount namespace: a scoped
    connect() by path (absolute, through /var/run, relative to the working directory) is
    refused with ECONNREFUSED, an abstract socket of the same name is not those; a bad address
    pointer is EFAULT.  Unscoped, every connect succeeds."""
    launch = Launch(request, who, workdir)
    require(shutil.which("socat") is not None, "socat")
    pids = workdir / "pids"
    starts = [f"socat UNIX-LISTEN:{path},fork,mode=666 OPEN:/dev/null 2>/dev/null" for path in (RESOLVED, RESOLVED + ".Monitor")]
    setup = daemon_setup([f"socat ABSTRACT-LISTEN:{RESOLVED},fork OPEN:/dev/null 2>/dev/null", *starts], RESOLVED + ".Monitor",
                         pids)
    p = shlex.quote(str(probe))
    inside = (f"echo '=== abs'; {p} connect {RESOLVED}; echo '=== monitor'; {p} connect {RESOLVED}.Monitor; "
              f"echo '=== var'; {p} connect /var{RESOLVED}; "
              f"echo '=== relative'; cd /run/systemd && {p} connect resolve/io.systemd.Resolve; cd /; "
              f"echo '=== abstract'; {p} connect @{RESOLVED}; echo '=== efault'; {p} connect-efault")
    try:
        mine, plain, output = scoped_then_plain(lab3, launch, setup, inside)
    finally:
        stop_daemons(pids)
    for case in ("abs", "monitor", "var", "relative"):
        assert mine[case].strip() == "connect ECONNREFUSED", (case, output)
        assert plain[case].strip() == "connect OK", (case, output)
    assert mine["abstract"].strip() == "connect OK" and plain["abstract"].strip() == "connect OK", output
    assert mine["efault"].strip() == "connect EFAULT" and plain["efault"].strip() == "connect EFAULT", output


# ---- what the view says (no network: the probe only reads) -------------------------------------

def view_of(probe: Path, scope: str, env: dict[str, str] | None = None) -> str:
    """What a program scoped by ``scope`` reads at /etc/resolv.conf (the host's file is only read)."""
    from pvdrun.shim import library_path
    done = subprocess.run([str(probe), "read", "open", "/etc/resolv.conf"], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "PVDRUN_SCOPE": scope, "LD_PRELOAD": library_path(),
                               **(env or {})}, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_view_renders_the_pvds_resolver(probe: Path) -> None:
    """Servers in order, the fourth and later as comments; a link-local server with its zone
    named by the PvD's own interface (the scope line's if=NAME:INDEX, whatever the host calls
    that index); at most six search domains; the shim's RES_OPTIONS; the null PvD and a
    malformed scope name only the placeholder, with the same first words as the launcher's
    file."""
    domains = [f"d{i}.example" for i in range(8)]
    scope = ("v=1 id=view.example handle=77 if=pvdlink0:9999 addr=2001:db8:1::10 addr=192.0.2.10 "
             "dns=2001:db8:1::53 dns=fe80::53%9999 dns=192.0.2.53 dns=198.51.100.53 "
             + " ".join(f"search={d}" for d in domains))
    text = view_of(probe, scope, {"RES_OPTIONS": "ndots:3 timeout:2"})
    lines = text.splitlines()
    assert lines[0].startswith("# resolv.conf of PvD view.example"), text
    assert [ln for ln in lines if ln.startswith("nameserver")] == [
        "nameserver 2001:db8:1::53", "nameserver fe80::53%pvdlink0", "nameserver 192.0.2.53"], text
    assert "# (beyond glibc's 3) nameserver 198.51.100.53" in lines, text
    assert f"search {' '.join(domains[:6])}" in lines, text
    assert "options timeout:2 attempts:2 ndots:3" in lines, text
    assert "options timeout:5 attempts:2 ndots:1" in view_of(probe, scope).splitlines()
    for other in ("v=1 id=null handle=4294967295", "v=1 id=null", "garbage"):
        servers = [ln for ln in view_of(probe, other).splitlines() if ln.startswith("nameserver")]
        assert servers == [f"nameserver {NO_SERVER_PLACEHOLDER}"], (other, servers)
    without = view_of(probe, "v=1 id=bare.example handle=78 if=pvdlink0:9999 addr=192.0.2.10")
    assert [ln for ln in without.splitlines() if ln.startswith("nameserver")] == [
        f"nameserver {NO_SERVER_PLACEHOLDER}"], without


def test_every_open_under_asan(probe: Path, asan_preload: str, workdir: Path) -> None:  # noqa: F811
    """The probe's cases with the shim built with ASan and UBSan (leak detection on): no report,
    and the view read as with the installed shim.  Not the bad pointer: libasan, preloaded
    first, reads fopen's path itself before the shim is reached, and crashes on it."""
    scope = "v=1 id=asan.example handle=79 if=lo:1 addr=127.0.0.1 dns=192.0.2.53 search=asan.example"
    setup = [bind_resolv_conf(workdir, nameservers("198.51.100.1"))]
    env = {"PATH": "/usr/bin:/bin", "PVDRUN_SCOPE": scope, "LD_PRELOAD": asan_preload,
           "ASAN_OPTIONS": "detect_leaks=1:exitcode=99", "UBSAN_OPTIONS": "halt_on_error=1:exitcode=99"}
    script = probe_cases(probe, leave_out=("efault",)).replace("; echo '===", "; echo \"rc=$?\"; echo '===") + '; echo "rc=$?"'
    done = subprocess.run(in_private_ns(setup, ["sh", "-c", script]), capture_output=True, text=True, env=env,
                          timeout=300, check=False)
    assert "Sanitizer" not in done.stderr and "runtime error" not in done.stderr, done.stderr
    cases = split_cases(done.stdout)
    assert "rc=99" not in done.stdout, done.stdout
    for fn in OPENERS:
        assert "nameserver 192.0.2.53" in cases[f"read-{fn}"], (fn, done.stdout)
    assert cases["many"].startswith("highest ") and cases["twice"].startswith("a=# resol b=# resol"), done.stdout
    assert cases["closeall"].startswith("view\n"), done.stdout
