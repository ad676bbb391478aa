"""When to fetch each PvD's Additional Information (RFC 8801 section 4.1).

Pure logic: the caller passes the time (``now``, epoch seconds as ``time.time()`` gives) to every
call and the randomness comes from ``rng`` (a callable returning a float in [0, 1)); no thread,
no I/O, no clock read here.  The caller's loop::

    schedule.on_ra(pvd_id, sequence, h_flag, now)     # every RA (or every table refresh)
    for pvd_id, sequence in schedule.due(now):          # each now marked in flight
        ... fetch in a worker, then schedule.fetched(pvd_id, sequence, info_or_None, time.time())
    sleep until schedule.next_wakeup()

The rules:

* first fetch of a PvD (or after its H flag comes back) after a random delay in [0, first_delay);
* a Sequence Number change schedules one new fetch after a random delay (several changes before
  that fetch starts still make one fetch, of the newest sequence);
* never two fetches in flight for one PvD, and never two starts within ``min_interval`` seconds
  for one PvD, however many RAs arrive;
* after a success, a refresh at a random time between half the object's remaining lifetime and
  its expiry;
* after a failure, a retry after ``backoff[0]`` seconds, doubling with each consecutive failure up
  to ``backoff[1]``; the object fetched before stays current until its ``expires``;
* an object past its ``expires`` is dropped; an RA without the H flag drops the object and stops
  fetching; a result for a PvD forgotten or whose H flag was cleared meanwhile is discarded.
"""
from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from pvdrun.pvdinfo.model import AdditionalInfo


def refresh_time(now: float, expires: float, r: float) -> float:
    """A time between half the remaining lifetime and ``expires`` (excluded), ``r`` in [0, 1)
    choosing where (rounding never lets it reach ``expires``)."""
    remaining = expires - now
    when = now + remaining * (0.5 + 0.5 * r)
    return min(when, math.nextafter(expires, -math.inf))


@dataclass
class _State:
    sequence: int
    h_flag: bool = True
    next_fetch: float | None = None   # when a fetch is wanted (before the min_interval rule)
    in_flight: int | None = None      # the sequence being fetched
    last_start: float | None = None   # when the last fetch started
    failures: int = 0                 # consecutive failures
    info: AdditionalInfo | None = None
    gone: bool = False                # forgotten while a fetch was in flight
    discard: bool = False             # the fetch in flight began before a forget or H-flag clear


class Schedule:
    """Fetch times of every PvD's Additional Information, and the objects in force."""

    def __init__(self, rng: Callable[[], float] = random.random, min_interval: float = 10.0,
                 first_delay: float = 10.0, backoff: tuple[float, float] = (10.0, 3600.0)) -> None:
        self._rng = rng
        self.min_interval = min_interval
        self.first_delay = first_delay
        self.backoff = backoff
        self._states: dict[str, _State] = {}
        self._now = float("-inf")  # the latest time any call was given

    # -- helpers ---------------------------------------------------------------------------------
    def _tick(self, now: float) -> None:
        self._now = max(self._now, now)

    def _random(self) -> float:
        value = float(self._rng())
        return min(max(value, 0.0), 1.0)

    def _delay(self, now: float) -> float:
        return now + self._random() * self.first_delay

    def _start_time(self, state: _State) -> float | None:
        """When ``state``'s next fetch may start (None: none wanted or one in flight)."""
        if not state.h_flag or state.gone or state.in_flight is not None or state.next_fetch is None:
            return None
        if state.last_start is None:
            return state.next_fetch
        return max(state.next_fetch, state.last_start + self.min_interval)

    def _expire(self, now: float) -> None:
        for state in self._states.values():
            if state.info is not None and not state.info.is_current(now):
                state.info = None

    def backoff_delay(self, failures: int) -> float:
        """The wait after ``failures`` consecutive failures (>= 1)."""
        low, high = self.backoff
        return min(low * (2.0 ** min(max(failures - 1, 0), 64)), high)

    # -- the interface ---------------------------------------------------------------------------
    def on_ra(self, pvd_id: str, sequence: int, h_flag: bool, now: float) -> None:
        """A PvD seen in an RA with its Sequence Number and H flag (cheap and idempotent: call
        it on every RA or every table refresh)."""
        self._tick(now)
        state = self._states.get(pvd_id)
        if not h_flag:
            if state is not None:
                state.h_flag, state.info, state.next_fetch, state.failures = False, None, None, 0
                state.sequence = sequence
                state.discard = state.discard or state.in_flight is not None
            return
        if state is None:
            self._states[pvd_id] = _State(sequence=sequence, next_fetch=self._delay(now))
            return
        if state.gone:  # forgotten while in flight, and back: a fresh start once that fetch ends
            state.gone, state.info, state.failures = False, None, 0
            state.h_flag, state.sequence, state.next_fetch = True, sequence, self._delay(now)
            return
        if not state.h_flag:  # the H flag is back
            state.h_flag, state.sequence, state.failures = True, sequence, 0
            state.next_fetch = self._delay(now)
            return
        if sequence != state.sequence:
            state.sequence, state.failures = sequence, 0
            candidate = self._delay(now)
            state.next_fetch = candidate if state.next_fetch is None else min(state.next_fetch, candidate)

    def forget(self, pvd_id: str) -> None:
        """The PvD went away: its object and schedule go (a fetch in flight is discarded)."""
        state = self._states.get(pvd_id)
        if state is None:
            return
        if state.in_flight is None:
            del self._states[pvd_id]
        else:
            state.gone, state.h_flag, state.info, state.next_fetch = True, False, None, None
            state.discard = True

    def due(self, now: float) -> list[tuple[str, int]]:
        """The (PvD ID, sequence) pairs to fetch now, earliest first; each is marked in flight
        until :meth:`fetched` is called for it.  Also drops objects past their expiry."""
        self._tick(now)
        self._expire(now)
        ready = []
        for pvd_id, state in self._states.items():
            start = self._start_time(state)
            if start is not None and start <= now:
                ready.append((start, pvd_id, state))
        ready.sort(key=lambda item: item[0])
        result = []
        for _start, pvd_id, state in ready:
            state.in_flight, state.last_start, state.next_fetch = state.sequence, now, None
            result.append((pvd_id, state.sequence))
        return result

    def fetched(self, pvd_id: str, sequence: int, info: AdditionalInfo | None, now: float) -> None:
        """The fetch of (pvd_id, sequence) that :meth:`due` handed out ended: ``info`` is the
        validated object, or None when it failed (then a retry after the backoff)."""
        self._tick(now)
        state = self._states.get(pvd_id)
        if state is None or state.in_flight != sequence:
            return  # not a fetch this schedule handed out (or already reported)
        state.in_flight = None
        if state.gone:
            del self._states[pvd_id]
            return
        if state.discard or not state.h_flag:
            state.discard = False
            return  # forgotten or H flag cleared meanwhile: the result is not wanted
        if info is None:
            state.failures += 1
            state.next_fetch = now + self.backoff_delay(state.failures)
            self._expire(now)
            return
        state.failures = 0
        if info.is_current(now):
            state.info = info
        if state.sequence != sequence:
            if state.next_fetch is None:  # on_ra normally set it already
                state.next_fetch = self._delay(now)
            return
        if state.next_fetch is None:
            if info.is_current(now):
                state.next_fetch = refresh_time(now, info.expires, self._random())
            else:  # valid when checked, expired when reported: try again later
                state.next_fetch = now + self.backoff_delay(1)

    def next_wakeup(self) -> float | None:
        """The earliest time :meth:`due` may have something to hand out or an object expires
        (None: nothing is scheduled)."""
        times = []
        for state in self._states.values():
            start = self._start_time(state)
            if start is not None:
                times.append(start)
            if state.info is not None:
                times.append(state.info.expires)
        return min(times) if times else None

    def current(self, pvd_id: str, now: float | None = None) -> AdditionalInfo | None:
        """The object in force for ``pvd_id``: None before the first success, once it expired
        (at ``now`` when given, else at the latest time any call was given), after the H flag
        was cleared or the PvD forgotten."""
        state = self._states.get(pvd_id)
        if state is None or state.info is None:
            return None
        at = self._now if now is None else max(now, self._now)
        if not state.info.is_current(at):
            state.info = None
            return None
        return state.info

    def in_flight(self, pvd_id: str) -> int | None:
        """The sequence being fetched for ``pvd_id``, or None."""
        state = self._states.get(pvd_id)
        return None if state is None else state.in_flight

    def pvd_ids(self) -> list[str]:
        """The PvDs this schedule follows (H flag set), in no particular order."""
        return [pvd_id for pvd_id, state in self._states.items() if state.h_flag and not state.gone]
