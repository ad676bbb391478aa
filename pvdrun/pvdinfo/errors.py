"""Why PvD Additional Information could not be had: one exception root, two kinds."""
from __future__ import annotations


class InfoError(Exception):
    """PvD Additional Information was not obtained; ``str()`` is one line for users and logs."""


class FetchError(InfoError):
    """The object could not be fetched: DNS, network, TLS, HTTP status, timeout or size cap."""


class InvalidInfo(InfoError):
    """The object was fetched but failed validation; the message names the rule it broke."""
