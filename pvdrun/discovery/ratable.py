"""What the RAs heard say, kept with lifetimes: per router and per explicit PvD.

``RaTable.add`` merges one heard RA: its top-level options into the record
of the advertising router on that link, and each RFC 8801 PvD option into
the record of that PvD ID on that link (several RAs may split one PvD, and
several PvDs may come from one router address: records are keyed by PvD ID,
not by router).  Every element expires with its own lifetime (``expire``);
an explicit PvD whose every element expired is gone, and when it is heard
again its ``generation`` grows, which changes its handle (R5).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pvdrun.discovery.ra import INFINITE_LIFETIME, Options, Preference, PvdOption
from pvdrun.discovery.rasock import HeardRa

log = logging.getLogger("pvdrun.discovery")

FOREVER = float("inf")
#: At most this many routers and this many explicit PvDs are kept per link, so
#: a flood of forged RAs cannot grow the table without bound.
MAX_PER_LINK = 64

T = TypeVar("T")


def _until(now: float, lifetime: int) -> float:
    return FOREVER if lifetime == INFINITE_LIFETIME else now + lifetime


def _t(until: float) -> float | None:
    return None if until == FOREVER else until


def _f(until: float | None) -> float:
    return FOREVER if until is None else float(until)


def _learn(table: dict[str, T], key: str, lifetime: int, value: T) -> None:
    """An RA element with ``lifetime``: zero withdraws it, anything else (re)sets it."""
    if lifetime == 0:
        table.pop(key, None)
    else:
        table[key] = value


@dataclass
class OptionSet:
    """Configuration elements with absolute expiry times (monotonic clock)."""

    prefixes: dict[str, float] = field(default_factory=dict)
    routes: dict[str, tuple[Preference, float]] = field(default_factory=dict)  # prefix -> (pref, until)
    rdnss: dict[str, float] = field(default_factory=dict)
    dnssl: dict[str, float] = field(default_factory=dict)
    default_until: float = 0.0  # router lifetime
    #: per PIO prefix: (on-link, autonomous, preferred until); pvdd applies nested PIOs itself
    prefix_flags: dict[str, tuple[bool, bool, float]] = field(default_factory=dict)

    def merge(self, options: Options, now: float) -> None:
        """Add or refresh elements; a zero lifetime removes one."""
        for pio in options.prefixes:
            if pio.valid_lifetime == 0:
                self.prefixes.pop(pio.prefix, None)
                self.prefix_flags.pop(pio.prefix, None)
            else:
                self.prefixes[pio.prefix] = _until(now, pio.valid_lifetime)
                self.prefix_flags[pio.prefix] = (pio.on_link, pio.autonomous,
                                                 _until(now, min(pio.preferred_lifetime,
                                                                 pio.valid_lifetime)))
        for rio in options.routes:
            _learn(self.routes, rio.prefix, rio.lifetime, (rio.preference, _until(now, rio.lifetime)))
        for opt in options.rdnss:
            for server in opt.servers:
                _learn(self.rdnss, server, opt.lifetime, _until(now, opt.lifetime))
        for search in options.dnssl:
            for domain in search.domains:
                _learn(self.dnssl, domain, search.lifetime, _until(now, search.lifetime))

    def expire(self, now: float) -> bool:
        """Drop expired elements; True when something was dropped."""
        before = self.size()
        self.prefixes = {k: t for k, t in self.prefixes.items() if t > now}
        self.prefix_flags = {k: v for k, v in self.prefix_flags.items() if k in self.prefixes}
        self.routes = {k: v for k, v in self.routes.items() if v[1] > now}
        self.rdnss = {k: t for k, t in self.rdnss.items() if t > now}
        self.dnssl = {k: t for k, t in self.dnssl.items() if t > now}
        expired_default = 0.0 < self.default_until <= now
        if expired_default:
            self.default_until = 0.0
        return self.size() != before or expired_default

    def size(self) -> int:
        return len(self.prefixes) + len(self.routes) + len(self.rdnss) + len(self.dnssl)

    def next_expiry(self) -> float:
        times = [*self.prefixes.values(), *(v[1] for v in self.routes.values()),
                 *self.rdnss.values(), *self.dnssl.values()]
        if self.default_until:
            times.append(self.default_until)
        return min(times, default=FOREVER)

    def alive(self) -> bool:
        return self.size() > 0 or self.default_until > 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, expiry times as they are (monotonic clock; null for never)."""
        return {"prefixes": {k: _t(t) for k, t in self.prefixes.items()},
                "routes": {k: [int(p), _t(t)] for k, (p, t) in self.routes.items()},
                "rdnss": {k: _t(t) for k, t in self.rdnss.items()},
                "dnssl": {k: _t(t) for k, t in self.dnssl.items()},
                "default_until": self.default_until,
                "prefix_flags": {k: [on, auto, _t(t)] for k, (on, auto, t) in self.prefix_flags.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OptionSet:
        """The inverse of :meth:`to_dict` (raises KeyError, TypeError, ValueError on junk)."""
        return cls(prefixes={str(k): _f(t) for k, t in data["prefixes"].items()},
                   routes={str(k): (Preference(int(p)), _f(t)) for k, (p, t) in data["routes"].items()},
                   rdnss={str(k): _f(t) for k, t in data["rdnss"].items()},
                   dnssl={str(k): _f(t) for k, t in data["dnssl"].items()},
                   default_until=float(data["default_until"]),
                   prefix_flags={str(k): (bool(on), bool(auto), _f(t))
                                 for k, (on, auto, t) in data["prefix_flags"].items()})


@dataclass
class RouterRecord:
    """What one router advertised on one link outside any PvD option."""

    ifindex: int
    router: str
    options: OptionSet = field(default_factory=OptionSet)


@dataclass
class ExplicitRecord:
    """One explicit PvD (RFC 8801) heard on one link, merged across RAs."""

    ifindex: int
    pvd_id: str
    routers: list[str] = field(default_factory=list)
    sequence: int = 0
    flags: dict[str, bool] = field(default_factory=dict)
    delay: int = 0
    options: OptionSet = field(default_factory=OptionSet)
    generation: int = 0


@dataclass
class RaTable:
    """Everything learned from RAs, per link."""

    routers: dict[tuple[int, str], RouterRecord] = field(default_factory=dict)
    explicit: dict[tuple[int, str], ExplicitRecord] = field(default_factory=dict)
    generations: dict[tuple[int, str], int] = field(default_factory=dict)
    #: the links whose records may have changed since :meth:`take_changed`
    changed: set[int] = field(default_factory=set, compare=False, repr=False)

    def take_changed(self) -> set[int]:
        """The links whose records may have changed since the last call."""
        changed, self.changed = self.changed, set()
        return changed

    def per_link(self) -> dict[int, tuple[list[RouterRecord], list[ExplicitRecord]]]:
        """Every link's router records and explicit PvDs (as :meth:`routers_on` and
        :meth:`explicit_on` give them), in one pass over the table."""
        found: dict[int, tuple[list[RouterRecord], list[ExplicitRecord]]] = {}
        for (ifindex, _), record in sorted(self.routers.items()):
            found.setdefault(ifindex, ([], []))[0].append(record)
        for (ifindex, _), erecord in sorted(self.explicit.items()):
            found.setdefault(ifindex, ([], []))[1].append(erecord)
        return found

    def add(self, heard: HeardRa, now: float | None = None) -> None:
        """Merge one heard RA."""
        now = time.monotonic() if now is None else now
        info = heard.info
        self.changed.add(heard.ifindex)
        key = (heard.ifindex, heard.source)
        if key not in self.routers and self._count(self.routers, heard.ifindex) >= MAX_PER_LINK:
            log.warning("RA from %s on ifindex %d ignored: already %d routers on that link",
                        heard.source, heard.ifindex, MAX_PER_LINK)
            return
        record = self.routers.get(key) or RouterRecord(heard.ifindex, heard.source)
        record.options.merge(info, now)
        lifetime = info.header.router_lifetime if info.header else 0
        record.options.default_until = now + lifetime if lifetime else 0.0
        if record.options.alive():
            self.routers[key] = record
        else:
            self.routers.pop(key, None)
        for pvd in info.pvds:
            self._add_pvd(heard, pvd, now)

    def add_user_options(self, ifindex: int, source: str, options: Options,
                         now: float | None = None) -> bool:
        """Merge RDNSS/DNSSL the kernel reported (RTM_NEWNDUSEROPT) into the router's record.

        Only a router already known or within the per-link bound is kept; the
        router lifetime is not touched (the kernel does not report it).
        """
        now = time.monotonic() if now is None else now
        key = (ifindex, source)
        if key not in self.routers and self._count(self.routers, ifindex) >= MAX_PER_LINK:
            return False
        record = self.routers.get(key) or RouterRecord(ifindex, source)
        before = (dict(record.options.rdnss), dict(record.options.dnssl))
        record.options.merge(Options(rdnss=options.rdnss, dnssl=options.dnssl), now)
        if record.options.alive():
            self.routers[key] = record
        else:
            self.routers.pop(key, None)
        changed = (set(record.options.rdnss), set(record.options.dnssl)) != \
            (set(before[0]), set(before[1]))
        if changed:
            self.changed.add(ifindex)
        return changed

    def _add_pvd(self, heard: HeardRa, pvd: PvdOption, now: float) -> None:
        key = (heard.ifindex, pvd.pvd_id)
        record = self.explicit.get(key)
        if record is None and self._count(self.explicit, heard.ifindex) >= MAX_PER_LINK:
            log.warning("PvD %s on ifindex %d ignored: already %d PvDs on that link",
                        pvd.pvd_id, heard.ifindex, MAX_PER_LINK)
            return
        if record is None:
            record = ExplicitRecord(heard.ifindex, pvd.pvd_id,
                                    generation=self.generations.get(key, 0))
        elif pvd.sequence != record.sequence:
            record.options = OptionSet()  # a new sequence number replaces the PvD's content
        record.sequence = pvd.sequence
        record.flags = {"H": pvd.flag_h, "L": pvd.flag_l, "R": pvd.flag_r}
        record.delay = pvd.delay
        if heard.source not in record.routers:
            record.routers.append(heard.source)
        record.options.merge(pvd, now)
        lifetime = pvd.header.router_lifetime if pvd.header else (
            heard.info.header.router_lifetime if heard.info.header else 0)
        if lifetime:
            record.options.default_until = max(record.options.default_until, now + lifetime)
        if record.options.alive():
            self.explicit[key] = record
        else:
            self._drop_explicit(key)

    @staticmethod
    def _count(table: dict, ifindex: int) -> int:
        return sum(1 for key in table if key[0] == ifindex)

    def _drop_explicit(self, key: tuple[int, str]) -> None:
        record = self.explicit.pop(key, None)
        if record is not None:
            self.generations[key] = record.generation + 1

    def expire(self, now: float | None = None) -> bool:
        """Drop expired elements and records; True when anything changed."""
        now = time.monotonic() if now is None else now
        changed = False
        for key, record in list(self.routers.items()):
            gone = record.options.expire(now)
            if not record.options.alive():
                del self.routers[key]
                gone = True
            if gone:
                self.changed.add(key[0])
                changed = True
        for key, erecord in list(self.explicit.items()):
            gone = erecord.options.expire(now)
            if not erecord.options.alive():
                self._drop_explicit(key)
                gone = True
            if gone:
                self.changed.add(key[0])
                changed = True
        return changed

    def forget_link(self, ifindex: int) -> bool:
        """The association on ifindex ended (carrier lost): drop what it taught."""
        keys = [k for k in self.routers if k[0] == ifindex]
        for key in keys:
            del self.routers[key]
        ekeys = [k for k in self.explicit if k[0] == ifindex]
        for key in ekeys:  # no generation bump: the new carrier count changes the handle
            del self.explicit[key]
        if keys or ekeys:
            self.changed.add(ifindex)
        return bool(keys or ekeys)

    def next_expiry(self) -> float:
        """Monotonic time of the next element expiry (inf when none)."""
        times = [r.options.next_expiry() for r in self.routers.values()]
        times += [r.options.next_expiry() for r in self.explicit.values()]
        return min(times, default=FOREVER)

    def routers_on(self, ifindex: int) -> list[RouterRecord]:
        return [r for (i, _), r in sorted(self.routers.items()) if i == ifindex]

    def explicit_on(self, ifindex: int) -> list[ExplicitRecord]:
        return [r for (i, _), r in sorted(self.explicit.items()) if i == ifindex]

    def heard_from(self, ifindex: int) -> set[str]:
        """Routers on ifindex with something still alive: own options or a PvD option."""
        found = {r.router for r in self.routers_on(ifindex)}
        for record in self.explicit_on(ifindex):
            found.update(record.routers)
        return found

    def default_until(self, ifindex: int, router: str) -> float:
        """When the router lifetime ``router`` last advertised on ifindex ends (0: none)."""
        record = self.routers.get((ifindex, router))
        return record.options.default_until if record is not None else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready copy (expiry times on the monotonic clock), for the one-shot cache."""
        return {"routers": [{"ifindex": r.ifindex, "router": r.router, "options": r.options.to_dict()}
                            for r in self.routers.values()],
                "explicit": [{"ifindex": r.ifindex, "pvd_id": r.pvd_id, "routers": list(r.routers),
                              "sequence": r.sequence, "flags": dict(r.flags), "delay": r.delay,
                              "generation": r.generation, "options": r.options.to_dict()}
                             for r in self.explicit.values()],
                "generations": [[i, pvd_id, g] for (i, pvd_id), g in self.generations.items()]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RaTable:
        """The inverse of :meth:`to_dict` (raises KeyError, TypeError, ValueError on junk)."""
        table = cls()
        for item in data["routers"]:
            record = RouterRecord(int(item["ifindex"]), str(item["router"]),
                                  OptionSet.from_dict(item["options"]))
            table.routers[(record.ifindex, record.router)] = record
        for item in data["explicit"]:
            erecord = ExplicitRecord(int(item["ifindex"]), str(item["pvd_id"]),
                                     routers=[str(r) for r in item["routers"]],
                                     sequence=int(item["sequence"]),
                                     flags={str(k): bool(v) for k, v in item["flags"].items()},
                                     delay=int(item["delay"]), options=OptionSet.from_dict(item["options"]),
                                     generation=int(item["generation"]))
            table.explicit[(erecord.ifindex, erecord.pvd_id)] = erecord
        for ifindex, pvd_id, generation in data["generations"]:
            table.generations[(int(ifindex), str(pvd_id))] = int(generation)
        return table
