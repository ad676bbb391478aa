"""Placeholder."""
from pvdbench.figure import NotMeasured


def measure_daemon_load(ctx):
    raise NotMeasured("not written yet")
