"""pvdrun: Multiple Provisioning Domains (PvDs) for unmodified Linux programs.

The public Python API; see docs/python-api.md::

    import pvdrun
    for pvd in pvdrun.list_pvds():
        print(pvd.name, pvd.handle, pvd.addresses)
    wifi = pvdrun.lookup("wifi")
    pvdrun.default_pvd()
    for event in pvdrun.watch(): ...

Heavy imports (pyroute2) happen only when a function that needs them is called.
"""
from __future__ import annotations

from pvdrun.api import PvdLookupError, default_pvd, list_pvds, lookup, watch
from pvdrun.model import HANDLE_NULL, HANDLE_UNSPEC, Pvd, Route

__all__ = ["HANDLE_NULL", "HANDLE_UNSPEC", "Pvd", "PvdLookupError", "Route", "default_pvd",
           "list_pvds", "lookup", "watch"]
__version__ = "0.1.0"
