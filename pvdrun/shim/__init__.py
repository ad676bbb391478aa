"""The preload library (libpvdshim.so) that pip install compiles from shim/."""
from __future__ import annotations

import os

LIBRARY_NAME = "libpvdshim.so"
# Another build of the library to use instead of the installed one, e.g. the
# ASan/UBSan build of `make test-asan` (docs/testing.md).
LIBRARY_ENV = "PVDRUN_SHIM_LIBRARY"
#: The loader's variable that names libraries to load first.
PRELOAD_ENV = "LD_PRELOAD"


def preload_entries(value: str | None) -> list[str]:
    """The libraries an LD_PRELOAD value names (the loader separates them by colons or spaces)."""
    return [item for item in (value or "").replace(" ", ":").split(":") if item]


def library_path() -> str:
    """Absolute path of the preload library: the installed one, or $PVDRUN_SHIM_LIBRARY.

    Everything that loads the shim asks here (the launcher, ``pvdrun shim-path``,
    the Python binding, the tests), so that one variable swaps the build
    everywhere.  The override must be named libpvdshim.so: an inner pvdrun finds
    the outer one's library in LD_PRELOAD by that name.

    Raises FileNotFoundError when the library is missing (for example, the
    package imported from a source tree without ``pip install .``) or when the
    override is not a libpvdshim.so file.
    """
    override = os.environ.get(LIBRARY_ENV)
    if override:
        path = os.path.abspath(override)
        if os.path.basename(path) != LIBRARY_NAME or not os.path.isfile(path):
            raise FileNotFoundError(f"{LIBRARY_ENV}={override}: not a {LIBRARY_NAME} file")
        return path
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), LIBRARY_NAME)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} is missing: install pvdrun with 'pip install .'")
    return path
