"""glibc's resolver paths that do not go through getaddrinfo -- res_query,
res_search, res_querydomain, res_send, their res_n* and __res_* forms,
gethostbyaddr(_r), getaddrinfo_a with gai_suspend/gai_error/gai_cancel --
inside a PvD, through the installed libpvdshim.so (shim/hooks/resolv_hooks.c,
shim/hooks/gai_async.c), in the two-ISP lab of fixtures/resolve_lab.py (R3, R25;
section 5.3 of the Troan multihoming document: wrong DNS server selection).

Every test namespace gets a resolv.conf naming the OTHER ISP's server (what
a host's resolv.conf says is never the PvD's own).  Each function must
resolve a name only the PvD's server knows (split horizon), its query must
be seen on the PvD's link, and the suite's capture (fixtures/capture.py: proven
live by markers, nothing filtered out) on the other ISP's link must hold nothing
of the client.  The control runs the same client without the
shim: glibc then asks the resolv.conf server, through the other ISP's link,
and the capture there sees it (the test can fail).
"""
from __future__ import annotations

import ipaddress
import os
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from fixtures.capture import LinkCapture, assert_caught, assert_no_leak
from fixtures.shim_source import include_flags, sources
from fixtures.resolve_lab import ResolveLab, asan_preload, shim_lib, sh, split_lab  # noqa: F401

pytestmark = pytest.mark.root

PROBE_SRC = Path(__file__).resolve().parent / "c" / "glibc_paths_probe.c"

# <netdb.h> values (h_errno) and glibc's EAI_* codes of getaddrinfo_a.
HOST_NOT_FOUND, TRY_AGAIN, NO_RECOVERY, NO_DATA = 1, 2, 3, 4
EAI_NONAME, EAI_AGAIN, EAI_FAIL = -2, -3, -4
EAI_INPROGRESS, EAI_CANCELED, EAI_NOTCANCELED, EAI_ALLDONE, EAI_INTR = -100, -101, -102, -103, -104
ECONNREFUSED = 111


@dataclass(frozen=True)
class View:
    """What only one ISP's DNS server knows, and where that server is."""

    key: str
    server: str          # the ISP's DNS server (the PvD's)
    name: str            # a name only this ISP's server knows
    short: str           # the same without the ISP's search domain
    domain: str          # the ISP's search domain
    rtype: str           # the record type the name has
    addr: str            # its address (with a PTR record back to name)


VIEWS = {
    "a": View("a", "10.1.0.1", "intranet.isp-a.example", "intranet", "isp-a.example", "A", "10.1.0.81"),
    "b": View("b", "2001:db8:b::1", "www.isp-b.example", "www", "isp-b.example", "AAAA", "2001:db8:b::81"),
}
OTHER = {"a": "b", "b": "a"}

RES_FUNCS = ["query", "search", "querydomain", "send", "nquery", "nsearch", "nquerydomain", "nsend"]
CASES = ([f"res_{f}" for f in RES_FUNCS] + [f"__res_{f}" for f in RES_FUNCS]
         + ["gethostbyaddr", "gethostbyaddr_r", "getaddrinfo_a-wait", "getaddrinfo_a-none",
            "getaddrinfo_a-signal", "getaddrinfo_a-thread"])


def case_args(case: str, view: View) -> list[str]:
    """The probe's arguments for one function of CASES, asking view's name."""
    if case.startswith(("res_", "__res_")):
        func = case[4:] if case.startswith("res_") else case
        bare = func.removeprefix("__res_")
        if "querydomain" in bare:
            return ["res", func, view.short, view.domain, view.rtype]
        return ["res", func, view.short if "search" in bare else view.name, view.rtype]
    if case == "gethostbyaddr":
        return ["ghba", view.addr]
    if case == "gethostbyaddr_r":
        return ["ghbar", view.addr]
    return ["gaia", case.split("-")[1], view.name]


def control_args(args: list[str]) -> list[str]:
    """The same call by its current name (glibc >= 2.34 keeps __res_* for old binaries only)."""
    if args[0] == "res" and args[1].startswith("__res_"):
        return ["res", args[1].removeprefix("__res_"), *args[2:]]
    return args


def answered(case: str, view: View, stdout: str) -> bool:
    """Did the call return the PvD's own answer for view's name?"""
    lines = stdout.splitlines()
    if not lines:
        return False
    if case.startswith(("res_", "__res_")):
        return int(lines[0].split()[0].split("=")[1]) > 0 and f"{view.rtype} {view.addr}" in lines
    if case.startswith("gethostbyaddr"):
        return f"name={view.name}" in lines and f"addr={view.addr}" in lines
    results = [line for line in lines if line.startswith(f"{view.name} ")]
    return bool(results) and results[0].split()[1] == "rc=0" and view.addr in results[0].split()


def query_name(case: str, view: View) -> str:
    """The question the PvD's server must see."""
    if case.startswith("gethostbyaddr"):
        return ipaddress.ip_address(view.addr).reverse_pointer
    return view.name


class Watch(LinkCapture):
    """The suite's capture on one ISP's link; ``server`` is the DNS server on that link."""

    def __init__(self, ns: str, ifname: str, server: str, label: str) -> None:
        super().__init__(ns, ifname, label=label)
        self.server = server

    @property
    def dns(self) -> list[str]:
        return ResolveLab.packets(self)

    @property
    def queries(self) -> list[str]:
        """DNS questions sent to this ISP's server (UDP, or a TCP connection to port 53)."""
        return [line for line in self.dns if f"> {self.server}.53:" in line]

    def asked(self, qname: str) -> bool:
        return any(f"? {qname}. " in line for line in self.queries)


def capture(ns: str, ifname: str, server: str, label: str) -> Watch:
    """The capture on `ifname` in namespace `ns`; `server` is the DNS server on that link."""
    return Watch(ns, ifname, server, label)


def watch(lab: ResolveLab, key: str) -> Watch:
    """A capture on ISP `key`'s side of its link in the resolve lab."""
    return capture(lab.isps[key].ns, "up0", VIEWS[key].server, f"ISP {key.upper()}")


def host_resolv_conf(lab: ResolveLab, key: str) -> Path:
    """The test namespace's resolv.conf: ISP `key`'s server and search domain."""
    path = lab.workdir / f"resolv-{key}.conf"
    path.write_text(f"nameserver {VIEWS[key].server}\nsearch {VIEWS[key].domain}\noptions timeout:2 attempts:1\n")
    path.chmod(0o644)
    return path


def client(lab: ResolveLab, probe: Path, args: list[str], resolv: Path, scope: str | None = None,
           preload: str | None = None, env: dict[str, str] | None = None,
           user: list[str] | None = None) -> subprocess.CompletedProcess:
    """Run the probe in the client namespace with `resolv` as its /etc/resolv.conf (a private
    mount namespace), optionally scoped with the shim and as another user."""
    command = shlex.join([*(user or []), str(probe), *args])
    script = f"mount --bind {shlex.quote(str(resolv))} /etc/resolv.conf && exec {command}"
    return lab.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script], scope=scope,
                   preload=preload, env=env, timeout=120)


@pytest.fixture(scope="module")
def glibc_probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/c/glibc_paths_probe.c, compiled (world-readable, for the unprivileged test)."""
    out = tmp_path_factory.mktemp("glibcprobe") / "glibc_paths_probe"
    sh(os.environ.get("CC", "cc"), "-std=gnu11", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-D_GNU_SOURCE",
       "-o", str(out), str(PROBE_SRC), "-pthread", "-lresolv", "-ldl")
    return out


@pytest.mark.parametrize("pvd", ["a", "b"])
@pytest.mark.parametrize("case", CASES)
def test_each_path_asks_only_the_pvds_server(split_lab: ResolveLab, glibc_probe: Path, shim_lib: str,
                                             case: str, pvd: str) -> None:
    view, other = VIEWS[pvd], OTHER[pvd]
    args = case_args(case, view)
    resolv = host_resolv_conf(split_lab, other)

    # Control: without the shim glibc asks the resolv.conf server, out of the other ISP's link,
    # and never gets the PvD's answer.
    with watch(split_lab, other) as leak:
        plain = client(split_lab, glibc_probe, control_args(args), resolv)
    assert plain.returncode == 0, plain.stderr
    assert leak.queries, f"control: no query on ISP {other}'s link: {leak.lines}"
    assert_caught(leak, plain.stdout, **split_lab.leak_rules(pvd))
    assert not answered(case, view, plain.stdout), plain.stdout

    # The shim, scoped to the PvD: its own server only.
    with watch(split_lab, pvd) as own, watch(split_lab, other) as foreign:
        scoped = client(split_lab, glibc_probe, args, resolv, scope=split_lab.scope(pvd), preload=shim_lib)
    assert scoped.returncode == 0, scoped.stderr
    assert answered(case, view, scoped.stdout), (scoped.stdout, scoped.stderr)
    assert own.asked(query_name(case, view)), own.lines
    assert_no_leak(foreign, scoped.stdout, **split_lab.leak_rules(pvd))


@pytest.mark.parametrize("args", [["res", "query", "intranet.isp-a.example", "A"],
                                  ["res", "nsend", "intranet.isp-a.example", "A"],
                                  ["ghba", "10.1.0.81"], ["gaia", "wait", "intranet.isp-a.example"]])
def test_without_a_pvd_the_real_functions_run(split_lab: ResolveLab, glibc_probe: Path, shim_lib: str,
                                              args: list[str]) -> None:
    """The shim loaded, no PvD set: glibc's own function, which asks the resolv.conf server."""
    resolv = host_resolv_conf(split_lab, "b")
    with watch(split_lab, "b") as seen:
        done = client(split_lab, glibc_probe, args, resolv, preload=shim_lib)
    assert done.returncode == 0, done.stderr
    assert seen.queries, seen.lines
    assert not answered("res_query" if args[0] == "res" else "gethostbyaddr" if args[0] == "ghba"
                        else "getaddrinfo_a-wait", VIEWS["a"], done.stdout)


NULL_SCOPE = "v=1 id=null handle=4294967295"


def test_null_pvd_fails_every_path_at_once(split_lab: ResolveLab, glibc_probe: Path, shim_lib: str) -> None:
    """R13: no query at all, on either link; every answer is the null PvD's refusal (speed is
    measured by make bench, never asserted here)."""
    resolv = host_resolv_conf(split_lab, "b")
    view = VIEWS["a"]
    outputs = {}
    with watch(split_lab, "a") as cap_a, watch(split_lab, "b") as cap_b:
        for case in CASES:
            done = client(split_lab, glibc_probe, case_args(case, view), resolv, scope=NULL_SCOPE,
                          preload=shim_lib)
            assert done.returncode == 0, (case, done.stderr)
            outputs[case] = done.stdout.splitlines()
    for case, lines in outputs.items():
        if case.endswith("send"):
            assert lines[0].startswith(f"rc=-1 h_errno=4242 errno={ECONNREFUSED} "), (case, lines)
        elif case.startswith(("res_", "__res_")):
            assert lines[0].startswith(f"rc=-1 h_errno={NO_RECOVERY} errno=4242"), (case, lines)
        elif case == "gethostbyaddr":
            assert lines == [f"h_errno={NO_RECOVERY} errno_kept=1"], lines
        elif case == "gethostbyaddr_r":
            assert lines == [f"rc=0 h_errno={NO_RECOVERY} found=0"], lines
        else:
            assert f"{view.name} rc={EAI_FAIL}" in lines, (case, lines)
    assert_no_leak(cap_a, **split_lab.silent_rules("a"))
    assert_no_leak(cap_b, **split_lab.silent_rules("b"))


def test_pvd_without_dns_server_fails_without_asking_anyone(split_lab: ResolveLab, glibc_probe: Path,
                                                            shim_lib: str) -> None:
    """TRY_AGAIN / EAI_AGAIN (the PvD may learn servers later), one stderr line, no query:
    the host's resolv.conf server is never the fallback."""
    resolv = host_resolv_conf(split_lab, "b")
    scope = split_lab.scope("a", dns_servers=[])
    view = VIEWS["a"]
    with watch(split_lab, "a") as cap_a, watch(split_lab, "b") as cap_b:
        results = {case: client(split_lab, glibc_probe, case_args(case, view), resolv, scope=scope,
                                preload=shim_lib) for case in CASES}
    for case, done in results.items():
        lines = done.stdout.splitlines()
        if case.endswith("send"):
            assert lines[0].startswith(f"rc=-1 h_errno=4242 errno={ECONNREFUSED} "), (case, lines)
        elif case.startswith(("res_", "__res_")):
            assert lines[0].startswith(f"rc=-1 h_errno={TRY_AGAIN} errno=4242"), (case, lines)
        elif case == "gethostbyaddr":
            assert lines == [f"h_errno={TRY_AGAIN} errno_kept=1"], lines
        elif case == "gethostbyaddr_r":
            assert lines == [f"rc=11 h_errno={TRY_AGAIN} found=0"], lines  # EAGAIN
        else:
            assert f"{view.name} rc={EAI_AGAIN}" in lines, (case, lines)
        assert done.stderr.count("has no DNS server") == 1, (case, done.stderr)
    assert_no_leak(cap_a, **split_lab.silent_rules("a"))
    assert_no_leak(cap_b, **split_lab.silent_rules("b"))


def res(lab: ResolveLab, probe: Path, lib: str, args: list[str], scope: str | None = None,
        env: dict[str, str] | None = None) -> list[str]:
    resolv = host_resolv_conf(lab, "b")
    done = client(lab, probe, ["res", *args], resolv, scope=scope or lab.scope("a"), preload=lib, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_res_query_negative_answers_as_glibc(split_lab: ResolveLab, glibc_probe: Path, shim_lib: str) -> None:
    """-1 with HOST_NOT_FOUND (the NXDOMAIN reply left in the buffer), NO_DATA, TRY_AGAIN;
    the res_n* forms also set the state's res_h_errno."""
    lines = res(split_lab, glibc_probe, shim_lib, ["query", "nonexistent.example", "A"])
    assert lines[0] == f"rc=-1 h_errno={HOST_NOT_FOUND} errno=4242" and lines[1].startswith("rcode=3 "), lines
    lines = res(split_lab, glibc_probe, shim_lib, ["nquery", "intranet.isp-a.example", "AAAA"])
    assert lines[0].startswith(f"rc=-1 h_errno={NO_DATA} errno=4242") and f"state_h_errno={NO_DATA}" in lines[0]
    assert lines[1] == "rcode=0 tc=0 ancount=0", lines
    dead = split_lab.scope("a", dns_servers=["10.1.0.99"])
    lines = res(split_lab, glibc_probe, shim_lib, ["search", "intranet", "A"], scope=dead,
                env={"RES_OPTIONS": "timeout:1 attempts:1"})
    assert lines[0] == f"rc=-1 h_errno={TRY_AGAIN} errno=4242", lines
    lines = res(split_lab, glibc_probe, shim_lib, ["send", "svc.example", "A"], scope=dead,
                env={"RES_OPTIONS": "timeout:1 attempts:1"})
    assert lines[0].startswith("rc=-1 h_errno=4242 errno=110 "), lines  # ETIMEDOUT, as glibc


def test_res_send_forwards_the_callers_query(split_lab: ResolveLab, glibc_probe: Path, shim_lib: str) -> None:
    """The bytes res_mkquery built go out as they are: the server sees the caller's query id."""
    with watch(split_lab, "a") as own:
        lines = res(split_lab, glibc_probe, shim_lib, ["send", "svc.example", "A"])
    qid = int(lines[0].split("qid=")[1].split()[0])
    assert "A 10.1.0.80" in lines, lines
    assert any(f": {qid}+ A? svc.example. " in line for line in own.queries), (qid, own.lines)


def test_long_answers_tcp_and_short_buffers(split_lab: ResolveLab, glibc_probe: Path, shim_lib: str) -> None:
    """A truncated UDP reply is asked again over TCP; a reply longer than the caller's buffer is
    cut there with TC set; RES_USEVC asks over TCP only."""
    with watch(split_lab, "a") as own:
        full = res(split_lab, glibc_probe, shim_lib, ["query", "big.example", "A"])
    assert int(full[0].split()[0].split("=")[1]) > 512, full[0]
    assert sorted(line for line in full if line.startswith("A ")) == sorted(f"A 10.1.1.{i}" for i in range(1, 41))
    assert any("Flags [S]" in line for line in own.queries), own.lines
    cut = res(split_lab, glibc_probe, shim_lib, ["nsend", "big.example", "A"], env={"PROBE_ANSLEN": "100"})
    assert cut[0].startswith("rc=100 ") and cut[1].startswith("rcode=0 tc=1 "), cut
    with watch(split_lab, "a") as own:
        vc = res(split_lab, glibc_probe, shim_lib, ["nquery", "svc.example", "A"], env={"PROBE_USEVC": "1"})
    assert "A 10.1.0.80" in vc, vc
    assert own.queries and all("Flags" in line or "?" not in line for line in own.queries), own.lines
    assert any("Flags [S]" in line for line in own.queries), own.lines


def test_res_search_uses_the_pvds_search_list_and_ndots(split_lab: ResolveLab, glibc_probe: Path,
                                                        shim_lib: str) -> None:
    """Never the resolv.conf search list (isp-b.example here): the PvD's, with RES_OPTIONS ndots."""
    with watch(split_lab, "a") as own:
        lines = res(split_lab, glibc_probe, shim_lib, ["search", "intranet", "A"])
        ndots = res(split_lab, glibc_probe, shim_lib, ["nsearch", "svc.example", "A"],
                    env={"RES_OPTIONS": "timeout:2 attempts:1 ndots:3"})
    assert "A 10.1.0.81" in lines and "A 10.1.0.80" in ndots, (lines, ndots)
    asked = [line.split("? ")[1].split()[0] for line in own.queries if "? " in line]
    assert not any("isp-b" in name for name in asked), asked
    assert asked.index("svc.example.isp-a.example.") < asked.index("svc.example."), asked


def test_getaddrinfo_a_results_per_request(split_lab: ResolveLab, glibc_probe: Path, shim_lib: str) -> None:
    resolv = host_resolv_conf(split_lab, "b")
    done = client(split_lab, glibc_probe, ["gaia", "wait", "intranet.isp-a.example", "nonexistent.example",
                                           "localhost"], resolv, scope=split_lab.scope("a"), preload=shim_lib)
    lines = done.stdout.splitlines()
    assert lines[:2] == ["submit=0 errno_kept=1", "all_done=1"], lines
    assert lines[2] == "intranet.isp-a.example rc=0 10.1.0.81", lines
    assert lines[3] == f"nonexistent.example rc={EAI_NONAME}", lines
    assert lines[4].startswith("localhost rc=0 "), lines


def test_gai_cancel_suspend_and_interruption(split_lab: ResolveLab, glibc_probe: Path, shim_lib: str) -> None:
    """Against a server that never answers: of 20 requests, the last is still queued (16 workers)
    and is cancelled, the first is running and is not; gai_suspend times out, and says
    EAI_ALLDONE once nothing is pending (as glibc's); the SIGEV_THREAD notification comes once all are complete; a signal interrupts
    gai_suspend (EAI_INTR)."""
    resolv = host_resolv_conf(split_lab, "b")
    dead = split_lab.scope("a", dns_servers=["10.1.0.99"])
    env = {"RES_OPTIONS": "timeout:1 attempts:1"}
    done = client(split_lab, glibc_probe, ["gaia-cancel", "dead.example", "20"], resolv, scope=dead,
                  preload=shim_lib, env=env)
    lines = done.stdout.splitlines()
    assert lines[:9] == ["submit=0", f"cancel_last={EAI_CANCELED}", f"error_last={EAI_CANCELED}",
                         f"cancel_first={EAI_NOTCANCELED}", f"suspend_timeout={EAI_AGAIN}",
                         "notified=1 all_done=1", f"cancel_done={EAI_ALLDONE}", f"suspend_done={EAI_ALLDONE}",
                         f"error_first={EAI_AGAIN}"], (lines, done.stderr)
    assert lines[9:] == [f"n{i}.dead.example rc={EAI_AGAIN}" for i in range(19)] + \
        [f"n19.dead.example rc={EAI_CANCELED}"], lines
    done = client(split_lab, glibc_probe, ["gaia-intr", "slow.example"], resolv, scope=dead,
                  preload=shim_lib, env=env)
    assert done.stdout.splitlines() == ["submit=0", f"suspend={EAI_INTR}", f"slow.example rc={EAI_AGAIN}"], \
        done.stdout


def test_thread_scope_applies_to_that_threads_requests(split_lab: ResolveLab, glibc_probe: Path,
                                                       shim_lib: str) -> None:
    """R12: pvd_set_thread_scope(B) in one thread; getaddrinfo_a's workers resolve in the
    submitting thread's PvD, res_query in the calling thread's."""
    resolv = host_resolv_conf(split_lab, "b")
    done = client(split_lab, glibc_probe, ["thread-scope", split_lab.scope("b"), "svc.example"], resolv,
                  scope=split_lab.scope("a"), preload=shim_lib)
    assert done.stdout.splitlines() == ["thread res_query=2001:db8:b::80 getaddrinfo_a=2001:db8:b::80",
                                        "main res_query=2001:db8:a::80 getaddrinfo_a=2001:db8:a::80"], \
        (done.stdout, done.stderr)


def test_unprivileged_user(split_lab: ResolveLab, glibc_probe: Path, shim_lib: str) -> None:
    """As nobody (the mount of the test's resolv.conf is done before dropping root): device and
    source binding need no privilege; the other ISP's link stays silent."""
    shared = Path(tempfile.mkdtemp(prefix="pvdrun-glibc-"))
    try:
        shared.chmod(0o755)
        for src in (glibc_probe, Path(shim_lib)):
            shutil.copy(src, shared / src.name)
        probe = shared / glibc_probe.name
        lib = str(shared / Path(shim_lib).name)
        user = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        env = {"PVDRUN_SOCKET": str(shared / "no-pvdd.sock")}
        resolv = host_resolv_conf(split_lab, "b")
        view = VIEWS["a"]
        cases = ["res_query", "res_nsend", "gethostbyaddr", "getaddrinfo_a-signal"]
        with watch(split_lab, "a") as own, watch(split_lab, "b") as foreign:
            results = {case: client(split_lab, probe, case_args(case, view), resolv, scope=split_lab.scope("a"),
                                    preload=lib, env=env, user=user) for case in cases}
            whoami = client(split_lab, Path("/usr/bin/id"), ["-u"], resolv, user=user)
        assert whoami.stdout.strip() == "65534", whoami
        for case, done in results.items():
            assert answered(case, view, done.stdout), (case, done.stdout, done.stderr)
        assert own.asked(view.name) and own.asked(ipaddress.ip_address(view.addr).reverse_pointer), own.lines
        assert_no_leak(foreign, **split_lab.leak_rules("a"))
    finally:
        shutil.rmtree(shared, ignore_errors=True)


ASAN_CASES = [["res", "query", "intranet.isp-a.example", "A"], ["res", "search", "intranet", "A"],
              ["res", "nquerydomain", "intranet", "isp-a.example", "A"], ["res", "__res_nsend", "svc.example", "A"],
              ["res", "query", "big.example", "A"], ["res", "query", "nonexistent.example", "A"],
              ["ghba", "10.1.0.81"], ["ghba", "::ffff:10.1.0.81"], ["ghbar", "10.1.0.81", "16"],
              ["ghbar", "2001:db8:b::81"], ["gaia", "wait", "svc.example", "nonexistent.example", "localhost"],
              ["gaia", "none", "svc.example", "intranet"], ["gaia", "signal", "svc.example"],
              ["gaia", "thread", "svc.example", "www.example"]]


def test_paths_under_asan(split_lab: ResolveLab, glibc_probe: Path, asan_preload: str) -> None:
    """The shim built with ASan/UBSan and leak detection: every path runs without a report
    (exit status 99 would mean one), the small-buffer and cancellation paths included."""
    env = {"ASAN_OPTIONS": "detect_leaks=1:exitcode=99", "UBSAN_OPTIONS": "halt_on_error=1:exitcode=99"}
    resolv = host_resolv_conf(split_lab, "b")
    for case in ASAN_CASES:
        done = client(split_lab, glibc_probe, case, resolv, scope=split_lab.scope("a"), preload=asan_preload,
                      env={**env, "PROBE_ANSLEN": "300"} if "big.example" in case else env)
        assert done.returncode == 0 and "ERROR: " not in done.stderr, (case, done.stderr[-2000:])
        assert done.stdout, case
    ranged = client(split_lab, glibc_probe, ["ghbar", "10.1.0.81", "16"], resolv, scope=split_lab.scope("a"),
                    preload=asan_preload, env=env)
    assert ranged.stdout.splitlines() == [f"rc=34 h_errno=-1 found=0"], ranged.stdout  # ERANGE, NETDB_INTERNAL
    dead = split_lab.scope("a", dns_servers=["10.1.0.99"])
    done = client(split_lab, glibc_probe, ["gaia-cancel", "dead.example", "20"], resolv, scope=dead,
                  preload=asan_preload, env={**env, "RES_OPTIONS": "timeout:1 attempts:1"})
    assert done.returncode == 0 and "ERROR: " not in done.stderr, done.stderr[-2000:]
    done = client(split_lab, glibc_probe, ["res", "query", "svc.example", "A"], resolv, scope=NULL_SCOPE,
                  preload=asan_preload, env=env)
    assert done.returncode == 0 and "ERROR: " not in done.stderr, done.stderr[-2000:]


LAB3_CASES = ["res_query", "res_nsend", "res_search", "gethostbyaddr", "getaddrinfo_a-wait"]


@pytest.mark.parametrize("case", LAB3_CASES)
def test_launcher_scenario_3_overlapping_dns_server(lab3: object, tmp_path: Path, glibc_probe: Path,
                                                   case: str) -> None:
    """Scenario 3 through `pvdrun --pvd` (one-shot discovery, the launcher's private resolv.conf):
    both ISPs' DNS server is 198.51.100.53, and only ISP A's knows intranet.ispa.example (and its
    PTR).  Without the shim glibc asks 198.51.100.53 through the host's default route, ISP A,
    and gets A's answer; under PvD v4b the query goes to ISP B's 198.51.100.53 only (which knows
    nothing of it), under v4a to ISP A's only."""
    from fixtures.lab_rules import v4_dns_config
    from fixtures.pvdd_lab import PVDRUN

    lab = lab3
    env = v4_dns_config(tmp_path, lab)
    dns = lab.isp("ispa")["dns_v4"]
    view = View("ispa", dns, "intranet.ispa.example", "intranet", "ispa.example", "A", lab.isp("ispa")["intranet_v4"])
    args = case_args(case, view)
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(f"nameserver {dns}\nsearch ispa.example\noptions timeout:2 attempts:1\n")

    def cap(isp: str) -> Watch:
        return capture(lab.isp(isp)["capture_ns"], lab.isp(isp)["capture_if"], dns, isp)

    def rules(pvd_isp: str) -> dict[str, list[str]]:
        """What the other ISP's link must not hold of a program scoped to ``pvd_isp``."""
        other = "ispb" if pvd_isp == "ispa" else "ispa"
        return {"sources": lab.isp(pvd_isp)["host_addresses"], "quiet": lab.isp(other)["host_addresses"],
                "destinations": [dns]}

    # Control: glibc alone, the same resolv.conf the launcher gives v4b: ISP A's view, via ISP A.
    script = f"mount --bind {shlex.quote(str(resolv))} /etc/resolv.conf && exec {shlex.join([str(glibc_probe), *args])}"
    with cap("ispa") as on_a, cap("ispb") as on_b:
        plain = lab.exec(["unshare", "-m", "--propagation", "private", "sh", "-c", script], timeout=60)
    assert plain.returncode == 0, plain.stderr
    assert answered(case, view, plain.stdout), plain.stdout  # the wrong ISP's answer: the leak
    assert on_a.queries and not on_b.queries, (on_a.lines, on_b.lines)
    assert_caught(on_a, plain.stdout, **rules("ispb"))

    # PvD v4b: ISP B's server only; it does not know the name.
    with cap("ispa") as on_a, cap("ispb") as on_b:
        scoped = lab.exec([PVDRUN, "--pvd", "v4b", str(glibc_probe), *args], env=env, timeout=60)
    assert scoped.returncode == 0, scoped.stderr
    assert scoped.stdout and not answered(case, view, scoped.stdout), scoped.stdout
    assert on_b.queries, on_b.lines
    assert_no_leak(on_a, scoped.stdout, **rules("ispb"))

    # PvD v4a: ISP A's server only, which answers.
    with cap("ispa") as on_a, cap("ispb") as on_b:
        scoped = lab.exec([PVDRUN, "--pvd", "v4a", str(glibc_probe), *args], env=env, timeout=60)
    assert answered(case, view, scoped.stdout), (scoped.stdout, scoped.stderr)
    assert on_a.asked(query_name(case, view)), on_a.lines
    assert_no_leak(on_b, scoped.stdout, **rules("ispa"))


@pytest.fixture(scope="module")
def match_harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/c/dns_match_harness.c with shim/dns/dns_wire.c, under ASan/UBSan."""
    out = tmp_path_factory.mktemp("dnsmatch") / "dns_match_harness"
    sh(os.environ.get("CC", "cc"), "-std=gnu11", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-D_GNU_SOURCE",
       "-fsanitize=address,undefined", "-fno-sanitize-recover=all", *include_flags(), "-o", str(out),
       str(PROBE_SRC.parent / "dns_match_harness.c"), *sources("dns_wire.c"))
    return out


def matches(harness: Path, query: bytes, reply: bytes, *extra: str) -> list[int]:
    proc = subprocess.run([str(harness), query.hex(), *extra], input=reply, capture_output=True, timeout=30)
    assert proc.returncode == 0 and b"runtime error" not in proc.stderr, proc.stderr
    return [int(line.split("=")[1]) for line in proc.stdout.decode().split()]


def test_reply_matching_for_res_send(match_harness: Path) -> None:
    """A reply counts only with the query's id, QR set, the same opcode and the same question
    (names case-insensitive, compressed or not); UPDATE replies may be a bare header; every
    truncation of a reply fails cleanly under the sanitizers."""
    import dns.message
    import dns.opcode
    import dns.rrset

    query = dns.message.make_query("Svc.Example", "MX")
    query.id = 0x4242
    wire = query.to_wire()
    reply = dns.message.make_response(query)
    reply.answer.append(dns.rrset.from_text("svc.example.", 60, "IN", "MX", "10 mail.svc.example."))
    good = reply.to_wire()
    ok, truncated, mismatch = 0, -2, -6
    assert matches(match_harness, wire, good) == [ok]
    assert matches(match_harness, wire, good.replace(b"Svc", b"sVC", 1)) == [ok]
    assert matches(match_harness, wire, b"\x42\x43" + good[2:]) == [mismatch]              # id
    assert matches(match_harness, wire, good[:2] + bytes([good[2] & 0x7F]) + good[3:]) == [mismatch]  # QR
    assert matches(match_harness, wire, good[:2] + bytes([good[2] | 0x20]) + good[3:]) == [mismatch]  # opcode
    other_type = dns.message.make_response(dns.message.make_query("svc.example", "A"))
    other_type.id = 0x4242
    assert matches(match_harness, wire, other_type.to_wire()) == [mismatch]
    no_question = good[:4] + b"\x00\x00" + good[6:12]
    assert matches(match_harness, wire, no_question) == [mismatch]
    update = dns.message.make_query("svc.example", "SOA")
    update.id = 7
    update.set_opcode(dns.opcode.UPDATE)
    bare = bytes([0, 7, 0x80 | (dns.opcode.UPDATE << 3), 0]) + bytes(8)
    assert matches(match_harness, update.to_wire(), bare) == [ok]
    cuts = matches(match_harness, wire, good, "cuts")
    question_end = len(wire)
    assert all(rc == truncated for rc in cuts[:question_end]), cuts
    assert all(rc == ok for rc in cuts[question_end:]), cuts  # the answer section is not looked at
