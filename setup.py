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


def compile_shim(out_dir: str) -> str:
    """Compile shim/*.c into out_dir/libpvdshim.so and return its path."""
    cc = os.environ.get("CC", "cc")
    sources = sorted(glob.glob(os.path.join(HERE, "shim", "*.c")))
    if not sources:
        raise RuntimeError("no C sources in shim/")
    flags = ["-std=gnu11", "-O2", "-g", "-fPIC", "-Wall", "-Wextra",
             "-fvisibility=hidden", "-D_GNU_SOURCE", "-pthread"]
    if os.environ.get("PVDRUN_WERROR") == "1":
        flags.append("-Werror")
    os.makedirs(out_dir, exist_ok=True)
    out = os.path.join(out_dir, LIB_NAME)
    cmd = [cc, *flags, "-shared", "-o", out, *sources, "-ldl", "-pthread",
           "-Wl,-z,now", "-Wl,--no-undefined"]
    subprocess.check_call(cmd)
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
