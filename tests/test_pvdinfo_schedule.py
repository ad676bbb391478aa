"""When PvD Additional Information is fetched (RFC 8801 section 4.1): pvdrun.pvdinfo.Schedule
driven by a fake clock and a fake random source.  No root, no network."""
from __future__ import annotations

import itertools
import random

import pytest
from fixtures.property_settings import PROPERTY
from hypothesis import given
from hypothesis import strategies as st

from pvdrun.pvdinfo import AdditionalInfo, Schedule

PVD = "pvd.example.net"
T0 = 1_800_000_000.0


class Rng:
    """A random source returning the given values in turn (then the last one forever)."""

    def __init__(self, *values: float) -> None:
        self.values = list(values) or [0.5]
        self.calls = 0

    def __call__(self) -> float:
        value = self.values[min(self.calls, len(self.values) - 1)]
        self.calls += 1
        return value


def obj(sequence: int, now: float, lifetime: float = 3600.0, pvd_id: str = PVD) -> AdditionalInfo:
    return AdditionalInfo(pvd_id=pvd_id, sequence=sequence, data={"identifier": pvd_id}, fetched_at=now,
                          expires=now + lifetime)


def run_until_due(schedule: Schedule, start: float, end: float, step: float = 0.1) -> tuple[float, list]:
    """Advance a fake clock from ``start`` until something is due (or ``end``)."""
    now = start
    while now <= end:
        got = schedule.due(now)
        if got:
            return now, got
        now = round(now + step, 6)
    return now, []


@pytest.mark.parametrize("r", [0.0, 0.25, 0.999])
def test_first_fetch_after_the_random_delay(r: float) -> None:
    schedule = Schedule(rng=Rng(r))
    schedule.on_ra(PVD, 1, True, T0)
    assert schedule.next_wakeup() == pytest.approx(T0 + 10 * r)
    if r > 0:
        assert schedule.due(T0 + 10 * r - 0.01) == []
    assert schedule.due(T0 + 10 * r) == [(PVD, 1)]


def test_no_fetch_without_h_flag() -> None:
    schedule = Schedule(rng=Rng(0.0))
    schedule.on_ra(PVD, 1, False, T0)
    assert schedule.due(T0 + 100) == [] and schedule.next_wakeup() is None


def test_first_delay_in_range_with_the_real_random_source() -> None:
    for seed in range(50):
        schedule = Schedule(rng=random.Random(seed).random)
        schedule.on_ra(PVD, 1, True, T0)
        wake = schedule.next_wakeup()
        assert wake is not None and T0 <= wake < T0 + 10


def test_same_sequence_again_changes_nothing() -> None:
    schedule = Schedule(rng=Rng(0.3))
    schedule.on_ra(PVD, 1, True, T0)
    wake = schedule.next_wakeup()
    for i in range(100):
        schedule.on_ra(PVD, 1, True, T0 + i * 0.01)
    assert schedule.next_wakeup() == wake


def test_sequence_change_schedules_exactly_one_new_fetch() -> None:
    schedule = Schedule(rng=Rng(0.0, 0.5, 0.5))
    schedule.on_ra(PVD, 1, True, T0)
    assert schedule.due(T0) == [(PVD, 1)]
    schedule.fetched(PVD, 1, obj(1, T0 + 1), T0 + 1)
    # the refresh is far away (half-life of an hour at least); a new sequence comes in
    schedule.on_ra(PVD, 2, True, T0 + 20)
    now, got = run_until_due(schedule, T0 + 20, T0 + 40)
    assert got == [(PVD, 2)] and T0 + 20 <= now < T0 + 30
    schedule.fetched(PVD, 2, obj(2, now), now)
    for i in range(50):  # the same new sequence, again and again: no further fetch
        schedule.on_ra(PVD, 2, True, now + i)
        assert schedule.due(now + i) == []
    assert schedule.current(PVD).sequence == 2


def test_sequence_changes_before_the_fetch_make_one_fetch_of_the_newest() -> None:
    schedule = Schedule(rng=Rng(0.9))
    for seq in range(1, 6):
        schedule.on_ra(PVD, seq, True, T0 + seq * 0.1)
    _now, got = run_until_due(schedule, T0, T0 + 20)
    assert got == [(PVD, 5)]


@pytest.mark.parametrize("changing", [False, True])
def test_ra_flood_at_most_one_fetch_per_ten_seconds(changing: bool) -> None:
    schedule = Schedule(rng=Rng(0.0))
    starts: list[float] = []
    now = T0
    seq = 1
    while now < T0 + 120:
        if changing:
            seq += 1
        schedule.on_ra(PVD, seq % 256, True, now)
        for pvd_id, fetched_seq in schedule.due(now):
            starts.append(now)
            # answers at once, with a short-lived object: refreshes wanted all the time
            schedule.fetched(pvd_id, fetched_seq, obj(fetched_seq, now, lifetime=2.0), now)
        now = round(now + 0.05, 6)
    assert starts, "never fetched"
    assert all(b - a >= 10.0 - 1e-9 for a, b in itertools.pairwise(starts)), starts
    if changing:
        assert len(starts) >= 11  # but it does keep up, once per interval


def test_never_two_fetches_in_flight() -> None:
    schedule = Schedule(rng=Rng(0.0))
    schedule.on_ra(PVD, 1, True, T0)
    assert schedule.due(T0) == [(PVD, 1)]
    for i in range(1, 200):  # the fetch hangs; RAs with new sequences keep coming
        schedule.on_ra(PVD, 1 + i, True, T0 + i)
        assert schedule.due(T0 + i) == []
    assert schedule.in_flight(PVD) == 1
    schedule.fetched(PVD, 1, None, T0 + 200)
    assert schedule.in_flight(PVD) is None
    _now, got = run_until_due(schedule, T0 + 200, T0 + 260)
    assert got == [(PVD, 200)]


def test_backoff_doubles_from_10_s_to_one_hour() -> None:
    schedule = Schedule(rng=Rng(0.0))
    schedule.on_ra(PVD, 1, True, T0)
    now = T0
    waits = []
    for _ in range(12):
        got = schedule.due(now)
        assert got == [(PVD, 1)]
        schedule.fetched(PVD, 1, None, now)
        wake = schedule.next_wakeup()
        assert wake is not None
        assert schedule.due(wake - 0.01) == []
        waits.append(wake - now)
        now = wake
    assert waits == [10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600, 3600]


def test_success_resets_the_backoff() -> None:
    schedule = Schedule(rng=Rng(0.0))
    schedule.on_ra(PVD, 1, True, T0)
    now = T0
    for _ in range(4):
        schedule.due(now)
        schedule.fetched(PVD, 1, None, now)
        now = schedule.next_wakeup()
    schedule.due(now)
    schedule.fetched(PVD, 1, obj(1, now, lifetime=100.0), now)  # refresh at half-life (rng 0)
    now = schedule.next_wakeup()
    schedule.due(now)
    schedule.fetched(PVD, 1, None, now)
    assert schedule.next_wakeup() == now + 10


@pytest.mark.parametrize("r", [0.0, 0.4, 0.999])
def test_refresh_between_half_life_and_expiry(r: float) -> None:
    schedule = Schedule(rng=Rng(0.0, r))
    schedule.on_ra(PVD, 1, True, T0)
    schedule.due(T0)
    schedule.fetched(PVD, 1, obj(1, T0, lifetime=1000.0), T0)
    wake = schedule.next_wakeup()
    assert wake == pytest.approx(T0 + 500 + 500 * r)
    assert T0 + 500 <= wake < T0 + 1000
    assert schedule.due(wake - 0.01) == []
    assert schedule.due(wake) == [(PVD, 1)]


@PROPERTY
@given(lifetime=st.floats(20.0, 1e6), r=st.floats(0.0, 1.0, exclude_max=True), fetched_after=st.floats(0.0, 9.99))
def test_refresh_window_property(lifetime: float, r: float, fetched_after: float) -> None:
    schedule = Schedule(rng=Rng(0.0, r))
    schedule.on_ra(PVD, 7, True, T0)
    assert schedule.due(T0) == [(PVD, 7)]
    done = T0 + fetched_after
    schedule.fetched(PVD, 7, obj(7, done, lifetime=lifetime), done)
    wake = schedule.next_wakeup()
    assert wake is not None
    assert done + lifetime / 2 - 1e-6 <= wake < done + lifetime


def test_object_stays_current_while_refreshes_fail_then_expires() -> None:
    schedule = Schedule(rng=Rng(0.0))
    schedule.on_ra(PVD, 1, True, T0)
    schedule.due(T0)
    schedule.fetched(PVD, 1, obj(1, T0, lifetime=100.0), T0)
    now = T0
    while True:
        wake = schedule.next_wakeup()
        assert wake is not None
        now = wake
        for pvd_id, seq in schedule.due(now):
            schedule.fetched(pvd_id, seq, None, now)
        if now < T0 + 100:
            assert schedule.current(PVD) is not None, now
        else:
            break
    assert schedule.current(PVD) is None
    assert schedule.current(PVD, now=T0 + 99) is None  # dropped for good


def test_current_with_now_sees_expiry() -> None:
    schedule = Schedule(rng=Rng(0.0))
    schedule.on_ra(PVD, 1, True, T0)
    schedule.due(T0)
    schedule.fetched(PVD, 1, obj(1, T0, lifetime=60.0), T0)
    assert schedule.current(PVD, now=T0 + 59).sequence == 1
    assert schedule.current(PVD, now=T0 + 60) is None


def test_expiry_is_a_wakeup() -> None:
    schedule = Schedule(rng=Rng(0.0, 0.999))
    schedule.on_ra(PVD, 1, True, T0)
    schedule.due(T0)
    schedule.fetched(PVD, 1, obj(1, T0, lifetime=60.0), T0)
    schedule.due(T0 + 59.9)
    schedule.fetched(PVD, 1, None, T0 + 59.9)  # a refresh failed: retry at +10 s, after expiry
    assert schedule.next_wakeup() == pytest.approx(T0 + 60)
    schedule.due(T0 + 60)
    assert schedule.current(PVD) is None


def test_h_flag_cleared_forgets_the_object_and_stops_fetching() -> None:
    schedule = Schedule(rng=Rng(0.0))
    schedule.on_ra(PVD, 1, True, T0)
    schedule.due(T0)
    schedule.fetched(PVD, 1, obj(1, T0), T0)
    schedule.on_ra(PVD, 1, False, T0 + 5)
    assert schedule.current(PVD) is None
    assert schedule.next_wakeup() is None and schedule.due(T0 + 5000) == []
    schedule.on_ra(PVD, 1, True, T0 + 6000)  # back: a new first fetch
    assert schedule.due(T0 + 6000) == [(PVD, 1)]


def test_result_after_h_flag_cleared_is_discarded() -> None:
    schedule = Schedule(rng=Rng(0.0))
    schedule.on_ra(PVD, 1, True, T0)
    schedule.due(T0)
    schedule.on_ra(PVD, 1, False, T0 + 1)
    schedule.fetched(PVD, 1, obj(1, T0 + 2), T0 + 2)
    assert schedule.current(PVD) is None and schedule.next_wakeup() is None


def test_forget_while_in_flight_discards_and_allows_no_parallel_fetch() -> None:
    schedule = Schedule(rng=Rng(0.0))
    schedule.on_ra(PVD, 1, True, T0)
    schedule.due(T0)
    schedule.forget(PVD)
    schedule.on_ra(PVD, 2, True, T0 + 30)  # back while the old fetch still runs
    assert schedule.due(T0 + 30) == []
    schedule.fetched(PVD, 1, obj(1, T0 + 31), T0 + 31)
    assert schedule.current(PVD) is None  # the old PvD's result is not taken
    assert schedule.due(T0 + 31) == [(PVD, 2)]


def test_forget_drops_everything() -> None:
    schedule = Schedule(rng=Rng(0.0))
    schedule.on_ra(PVD, 1, True, T0)
    schedule.due(T0)
    schedule.fetched(PVD, 1, obj(1, T0), T0)
    schedule.forget(PVD)
    assert schedule.current(PVD) is None and schedule.next_wakeup() is None and schedule.pvd_ids() == []


def test_unexpected_fetched_is_ignored() -> None:
    schedule = Schedule(rng=Rng(0.0))
    schedule.fetched(PVD, 1, obj(1, T0), T0)
    schedule.on_ra(PVD, 1, True, T0)
    schedule.fetched(PVD, 1, obj(1, T0), T0)  # not handed out by due()
    assert schedule.current(PVD) is None


def test_pvds_are_independent() -> None:
    other = "other.example.net"
    schedule = Schedule(rng=Rng(0.0))
    schedule.on_ra(PVD, 1, True, T0)
    schedule.on_ra(other, 9, True, T0)
    assert sorted(schedule.due(T0)) == sorted([(PVD, 1), (other, 9)])
    schedule.fetched(PVD, 1, None, T0 + 1)
    schedule.fetched(other, 9, obj(9, T0 + 1, pvd_id=other), T0 + 1)
    assert schedule.current(other).sequence == 9 and schedule.current(PVD) is None


@PROPERTY
@given(st.lists(st.tuples(st.floats(0.0, 3.0), st.integers(0, 3), st.booleans(),
                          st.sampled_from(["ok", "fail", "hang"])), max_size=80),
       st.randoms(use_true_random=False))
def test_random_event_streams_keep_the_invariants(events: list, rnd: random.Random) -> None:
    """Whatever the RAs and results: at most one fetch in flight, starts >= 10 s apart, and
    current() never returns an expired object or one after the H flag went."""
    schedule = Schedule(rng=rnd.random)
    now = T0
    starts: list[float] = []
    flying: tuple[str, int] | None = None
    h = False
    for gap, seq, h_flag, outcome in events:
        now += gap * 4
        schedule.on_ra(PVD, seq, h_flag, now)
        h = h_flag
        if flying is not None and outcome != "hang":
            schedule.fetched(*flying, obj(flying[1], now, lifetime=30.0) if outcome == "ok" else None, now)
            flying = None
        got = schedule.due(now)
        assert len(got) <= 1
        if got:
            assert flying is None, "a second fetch while one is in flight"
            flying = got[0]
            starts.append(now)
        current = schedule.current(PVD, now=now)
        if current is not None:
            assert h and current.expires > now
    assert all(b - a >= 10.0 - 1e-9 for a, b in itertools.pairwise(starts))
