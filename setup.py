"""Build hook: compile the preload library from shim/ into pvdrun/shim/.

The library is plain C, linked against libc only (never libpython): it is a
shared object that programs load with LD_PRELOAD, and that Python opens with
cffi in ABI mode (``ffi.dlopen``).  It is not a Python extension module.

PVDRUN_WERROR=1 (set by CI) adds -Werror; a user's install never fails on a
new compiler warning.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
LIB_NAME = "libpvdshim.so"


def shim_flags() -> dict[str, list[str]]:
    """SHIM_CFLAGS and SHIM_LDFLAGS from shim/flags.mk, the one place they are written."""
    flags: dict[str, list[str]] = {}
    with open(os.path.join(HERE, "shim", "flags.mk"), encoding="utf-8") as mk:
        for line in mk:
            name, sep, value = line.partition("=")
            if sep and not line.lstrip().startswith("#"):
                flags[name.strip()] = value.split()
    return flags


def compile_shim(out_dir: str) -> str:
    """Compile shim/*.c into out_dir/libpvdshim.so and return its path."""
    cc = os.environ.get("CC", "cc")
    sources = sorted(glob.glob(os.path.join(HERE, "shim", "*.c")))
    if not sources:
        raise RuntimeError("no C sources in shim/")
    flags = shim_flags()
    cflags = ["-O2", "-g", *flags["SHIM_CFLAGS"]]
    if os.environ.get("PVDRUN_WERROR") == "1":
        cflags.append("-Werror")
    os.makedirs(out_dir, exist_ok=True)
    out = os.path.join(out_dir, LIB_NAME)
    subprocess.check_call([cc, *cflags, "-shared", "-o", out, *sources, *flags["SHIM_LDFLAGS"]])
    shutil.copy(os.path.join(HERE, "shim", "pvd.h"), out_dir)
    return out


class BuildPyWithShim(build_py):
    """build_py that also compiles the preload library into the package."""

    def run(self) -> None:
        super().run()
        compile_shim(os.path.join(self.build_lib, "pvdrun", "shim"))


class BinaryDistribution(Distribution):
    """The wheel carries a native library, so it is platform-specific."""

    def has_ext_modules(self) -> bool:  # noqa: D401
        return True


setup(cmdclass={"build_py": BuildPyWithShim}, distclass=BinaryDistribution)
