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


def measure_resolve(ctx: BenchContext) -> list[Figure]:
    """Cached getaddrinfo through pvdd, when pvdd has a resolver cache to go through."""
    ops = pvdd_ops()
    resolving = [op for op in ops if "resol" in op or "dns" in op or "query" in op]
    if not resolving:
        raise NotMeasured(
            "pvdd has no resolver cache to go through: its protocol (pvdrun/daemon/protocol.py) "
            f"offers only {', '.join(ops) or 'no operations'}, and the shim's getaddrinfo asks "
            "the PvD's DNS servers itself (uncached; see calls.getaddrinfo)")
    raise NotMeasured(f"pvdd offers {', '.join(resolving)}, which the bench does not drive yet")
