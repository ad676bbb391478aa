"""Hostile programs against the shim: invalid pointers.

libc hands a program's pointers to the kernel, which answers EFAULT for a bad one; a
preload library that reads them first must answer the same and never crash the program.
Each case runs on a fresh socket and on one tied to the PvD by a first datagram; the
program must print every case and exit 0.  The same binary without the shim is the
control: EFAULT everywhere too.  When the scoped program does not live, the cases are run
again one per child process to say which one killed it.  See fixtures/hostile_lab.py.
"""
from __future__ import annotations

import subprocess

import pytest

from fixtures.hostile_lab import (PVD, HostileEnv, env, env1, env3, finished, hostile_bindir,  # noqa: F401
                         hostile_user, mismatches, results, verdict)

pytestmark = pytest.mark.root

WHO = ("root", "user")
CONTRACT = ["sendto_addr1_len16", "sendto_addr1_len28", "sendto_unmapped_len16", "sendto_unmapped_len28",
            "sendmsg_msg_invalid", "sendmsg_name_invalid", "sendmsg_control_invalid", "sendmmsg_array_invalid",
            "sendmmsg_name_invalid", "connect_invalid", "bind_invalid", "setsockopt_bindtodevice_invalid",
            "setsockopt_bindtoifindex_invalid", "setsockopt_join_invalid", "setsockopt_mcast_join_invalid"]
V6_ONLY = ["setsockopt_ipv6_pktinfo_invalid", "setsockopt_2292pktoptions_invalid"]
EXTRA = ["sendto_page_remapped_prot_none", "sendto_page_munmapped_by_syscall"]


def efault_cases(family: str, extra: bool = False) -> dict[str, str | tuple[str, ...]]:
    names = EXTRA if extra else CONTRACT + (V6_ONLY if family == "6" else [])
    want: dict[str, str | tuple[str, ...]] = {f"{state}_{name}": "EFAULT" for state in ("fresh", "tied")
                                              for name in names}
    if not extra:
        # the first of two messages is valid: the kernel sends it and reports 1; stopping
        # before it (EFAULT for the batch) is the other acceptable answer
        want.update({f"{state}_sendmmsg_second_name_invalid": ("sent1", "EFAULT") for state in ("fresh", "tied")})
    return want


def families(where: str) -> list[str]:
    """Scenario 3: IPv4 and IPv6 sockets; scenario 1: IPv6 (ispb has no IPv4 to tie to)."""
    return ["4", "6"] if where == "s3" else ["6"]


def run_efault(env: HostileEnv, who: str, mode: str, group: str, family: str,
               scoped: bool = True) -> subprocess.CompletedProcess:
    dst = env.service(PVD, int(family)) or ""
    return env.run(who, [env.program("hostile_efault"), mode, group, family, dst, "9"], scoped=scoped)


def check(env: HostileEnv, who: str, group: str, family: str) -> list[str]:
    """Problems of one family: control (no shim) and scoped, inline; isolated on failure."""
    want = efault_cases(family, extra=group == "extra")
    control = run_efault(env, who, "inline", group, family, scoped=False)
    problems = [f"IPv{family} control (no shim): {p}" for p in
                finished(control, "control") + mismatches(results(control), want)]
    done = run_efault(env, who, "inline", group, family)
    scoped = finished(done) + mismatches(results(done), want)
    if scoped:
        isolated = run_efault(env, who, "isolate", group, family)
        scoped.append("one case per child process:\n" + isolated.stdout + isolated.stderr)
    return problems + [f"IPv{family} scoped: {p}" for p in scoped]


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("where", ["s3", "s1"])
def test_invalid_pointers_fail_with_efault(env: HostileEnv, where: str, who: str) -> None:
    """sendto with addr (void *)1 and an munmap()ed page (lengths 16 and 28); sendmsg with
    msg, msg_name, msg_control (controllen 32) invalid; sendmmsg with the array invalid and
    with a message's msg_name invalid; connect and bind with an invalid address; setsockopt
    SO_BINDTODEVICE, SO_BINDTOIFINDEX, IPV6_PKTINFO, IPV6_2292PKTOPTIONS, IP_ADD_MEMBERSHIP
    (IPV6_JOIN_GROUP) and MCAST_JOIN_GROUP with an invalid value: EFAULT, fresh and tied
    sockets, and the program lives (exit 0 after its last line)."""
    problems: list[str] = []
    for family in families(where):
        problems += check(env, who, "contract", family)
    verdict(problems)


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("where", ["s3"])
def test_pages_made_unreadable_behind_the_shims_back(env: HostileEnv, where: str, who: str) -> None:
    """Beyond the contract's list: a page passed once as a valid sendto address, then made
    unreadable by mmap(MAP_FIXED, PROT_NONE) over it or by munmap through syscall(2) (paths
    a preload library does not see), then passed again: EFAULT, and the program lives."""
    problems: list[str] = []
    for family in families(where):
        problems += check(env, who, "extra", family)
    verdict(problems)
