"""pvdrun: Multiple Provisioning Domains (PvDs) for unmodified Linux programs.

The public Python API; see docs/python-api.md.  Heavy imports (pyroute2)
happen only when a function that needs them is called.
"""
from __future__ import annotations

from pvdrun.model import HANDLE_NULL, HANDLE_UNSPEC, Pvd, Route

__all__ = ["HANDLE_NULL", "HANDLE_UNSPEC", "Pvd", "Route"]
__version__ = "0.1.0"
