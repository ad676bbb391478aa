"""Hypothesis settings shared by the property tests (tests/test_property_*.py).

Bounded and fast for `make test`: PVDRUN_HYPOTHESIS_EXAMPLES (default 200) examples per
property, no deadline (a shared CI machine is slow at times), and no example database
(nothing is written under tests/).  A longer local run:
    PVDRUN_HYPOTHESIS_EXAMPLES=20000 python3 -m pytest tests/test_property_ra.py
"""
from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

EXAMPLES = int(os.environ.get("PVDRUN_HYPOTHESIS_EXAMPLES", "200"))

PROPERTY = settings(max_examples=EXAMPLES, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
