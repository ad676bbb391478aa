"""getaddrinfo cached through pvdd (the uncached comparison is calls.getaddrinfo)."""
from __future__ import annotations

from pvdbench.context import BenchContext
from pvdbench.figure import Figure, NotMeasured


def pvdd_ops() -> tuple[str, ...]:
    """The request operations pvdd's installed protocol module knows."""
    try:
        from pvdrun.daemon import protocol
    except ImportError as exc:
        raise NotMeasured(f"pvdd's protocol module is not installed: {exc}") from exc
    return tuple(getattr(protocol, "OPS", ()))


def service_exists() -> bool:
    """Whether the resolver service meant for pvdd is installed."""
    try:
        from pvdrun.resolve import service  # noqa: F401
    except ImportError:
        return False
    return True


def measure_resolve(ctx: BenchContext) -> list[Figure]:
    """Cached getaddrinfo through pvdd, when pvdd has a resolver cache to go through."""
    ops = pvdd_ops()
    resolving = [op for op in ops if "resol" in op or "dns" in op or "query" in op]
    if not resolving:
        library = ("pvdrun.resolve.service (a PvD-keyed DNS cache for pvdd) exists but is not "
                   "wired into pvdd's protocol yet; " if service_exists() else "")
        raise NotMeasured(
            f"no cached path through pvdd to measure: {library}pvdd's protocol "
            f"(pvdrun/daemon/protocol.py) offers only {', '.join(ops) or 'no operations'}, and the "
            "shim's getaddrinfo asks the PvD's DNS servers itself, uncached (docs/resolution.md; "
            "its uncached cost is calls.getaddrinfo)")
    raise NotMeasured(f"pvdd offers {', '.join(resolving)}, which the bench does not drive yet")
