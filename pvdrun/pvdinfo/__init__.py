"""PvD Additional Information (RFC 8801 section 4): the JSON object at
``https://<PvD ID>/.well-known/pvd``, fetched inside its own PvD.

* :mod:`.validate`: the rules an object must meet (pure);
* :mod:`.model`: :class:`AdditionalInfo`, a validated object and its accessors;
* :mod:`.fetch`: :func:`~pvdrun.pvdinfo.fetch.fetch`, one blocking fetch from the PvD's own
  sockets (import it from there: it loads ssl, dnspython and the shim's binding);
* :mod:`.schedule`: :class:`Schedule`, when to fetch (pure, injected clock and randomness).

Importing this package does nothing but define names (no I/O, no thread, no cffi).
"""
from __future__ import annotations

from pvdrun.pvdinfo.errors import FetchError, InfoError, InvalidInfo
from pvdrun.pvdinfo.model import AdditionalInfo
from pvdrun.pvdinfo.schedule import Schedule
from pvdrun.pvdinfo.validate import validate

__all__ = ["AdditionalInfo", "FetchError", "InfoError", "InvalidInfo", "Schedule", "validate"]

