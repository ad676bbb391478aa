"""Placeholder."""
from pvdbench.figure import NotMeasured


def measure_throughput(ctx):
    raise NotMeasured("not written yet")
