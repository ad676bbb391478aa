"""The preload library (libpvdshim.so) that pip install compiles from shim/."""
from __future__ import annotations

import os

LIBRARY_NAME = "libpvdshim.so"


def library_path() -> str:
    """Absolute path of the installed preload library.

    Raises FileNotFoundError when the package was not built with its library
    (for example, imported from a source tree without ``pip install .``).
    """
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), LIBRARY_NAME)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} is missing: install pvdrun with 'pip install .'")
    return path
