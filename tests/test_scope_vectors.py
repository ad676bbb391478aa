"""One grammar for the scope line, two parsers held to it: the C parser the shim uses
(shim/core/scope_parse.c, reached through the C API's pvd_add_scope) and the Python one
(pvdrun.model.parse_scope) must give the same verdict on every line of
tests/vectors/scope_lines.json, valid or not, including lines on which earlier parsers
disagreed (octal and hex handles, repeated keys, missing id or handle, id=null).  A
malformed line fails closed in both.  No root needed."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pvdrun.model import HANDLE_NULL, parse_scope

VECTORS = json.loads((Path(__file__).parent / "vectors" / "scope_lines.json").read_text())["vectors"]

# The C side runs in a fresh process: every valid line takes a slot of the shim's PvD table.
C_PROBE = r'''
import json, sys
from pvdrun.shim import binding
results = []
for vector in json.load(sys.stdin):
    try:
        handle = binding.add_scope(vector["line"])
        info = None if handle == 0xFFFFFFFF else binding.info(handle)
        results.append({"valid": True, "handle": handle,
                        "ifaces": None if info is None else len(info.interfaces)})
    except OSError as exc:
        results.append({"valid": False, "errno": exc.errno})
print(json.dumps(results))
'''


@pytest.fixture(scope="module")
def c_results() -> list[dict]:
    proc = subprocess.run([sys.executable, "-c", C_PROBE], input=json.dumps(VECTORS), text=True,
                          capture_output=True, check=True, timeout=60)
    return json.loads(proc.stdout)


@pytest.mark.parametrize("index", range(len(VECTORS)), ids=[repr(v["line"][:60]) for v in VECTORS])
def test_python_parser(index: int) -> None:
    vector = VECTORS[index]
    if vector["valid"]:
        parsed = parse_scope(vector["line"])
        assert int(parsed["handle"][0]) == vector["handle"]
        assert (int(parsed["handle"][0]) == HANDLE_NULL) == vector["null"]
    else:
        with pytest.raises(ValueError):
            parse_scope(vector["line"])


@pytest.mark.parametrize("index", range(len(VECTORS)), ids=[repr(v["line"][:60]) for v in VECTORS])
def test_c_parser(index: int, c_results: list[dict]) -> None:
    vector, result = VECTORS[index], c_results[index]
    assert result["valid"] == vector["valid"], (vector["line"], result)
    if vector["valid"]:
        assert result["handle"] == vector["handle"]
    else:
        assert result["errno"] == 22  # EINVAL: refused, never taken as some PvD


def test_every_vector_agrees() -> None:
    """The same verdicts, in one place, for a reader of a failure."""
    assert len(VECTORS) >= 50
