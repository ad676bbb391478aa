"""Build hook: compile the preload library from shim/ into pvdrun/shim/.

The library is plain C, linked against libc only (never libpython): it is a
shared object that programs load with LD_PRELOAD, and that Python opens with
cffi in ABI mode (``ffi.dlopen``).  It is not a Python extension module.

PVDRUN_WERROR=1 (set by CI) adds -Werror; a user's install never fails on a
new compiler warning.

The wheel is tagged py3-none-PLATFORM: neither the library nor the native launcher links
against libpython, so one wheel serves every Python 3 of that platform.  Both are linked
stripped (RELEASE_LDFLAGS of shim/flags.mk); ``make shim`` keeps its symbols.  An editable
install (``pip install -e .``) compiles the library into the source tree, pvdrun/shim/.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py
from distutils.command.build_scripts import build_scripts  # setuptools' own copy of distutils

try:
    from setuptools.command.bdist_wheel import bdist_wheel  # setuptools 70.1 and later
except ImportError:  # an older setuptools: the tests import this file's helpers with it
    bdist_wheel = object  # type: ignore[assignment,misc]

HERE = os.path.dirname(os.path.abspath(__file__))
LIB_NAME = "libpvdshim.so"


SHIM = os.path.join(HERE, "shim")
PUBLIC_HEADER = os.path.join(SHIM, "include", "pvd.h")


def shim_flags() -> dict[str, list[str]]:
    """The NAME = value lines of shim/flags.mk, the one place the shim's flags are written.

    SHIM_CFLAGS gets the -I options of SHIM_INCLUDE_DIRS (absolute paths).
    """
    flags: dict[str, list[str]] = {}
    with open(os.path.join(SHIM, "flags.mk"), encoding="utf-8") as mk:
        for line in mk:
            name, sep, value = line.partition("=")
            if sep and not line.lstrip().startswith("#"):
                flags[name.strip()] = value.split()
    flags["SHIM_CFLAGS"] += [f"-I{os.path.join(SHIM, d)}" for d in flags["SHIM_INCLUDE_DIRS"]]
    return flags


def shim_sources(flags: dict[str, list[str]]) -> list[str]:
    """Every C source of the library: the .c files of SHIM_SOURCE_DIRS."""
    sources = sorted(path for d in flags["SHIM_SOURCE_DIRS"]
                     for path in glob.glob(os.path.join(SHIM, d, "*.c")))
    if not sources:
        raise RuntimeError("no C sources in shim/")
    return sources


def compile_c(out: str, cflags: list[str], sources: list[str], ldflags: list[str]) -> str:
    """``cc -O2 CFLAGS [-Werror] -o OUT SOURCES LDFLAGS`` (-Werror when PVDRUN_WERROR=1): OUT."""
    werror = ["-Werror"] if os.environ.get("PVDRUN_WERROR") == "1" else []
    os.makedirs(os.path.dirname(out), exist_ok=True)
    subprocess.check_call([os.environ.get("CC", "cc"), "-O2", *cflags, *werror, "-o", out, *sources, *ldflags])
    return out


def compile_shim(out_dir: str) -> str:
    """Compile the shim's sources into out_dir/libpvdshim.so and return its path."""
    flags = shim_flags()
    out = compile_c(os.path.join(out_dir, LIB_NAME), [*flags["SHIM_CFLAGS"], "-shared"], shim_sources(flags),
                    [*flags["SHIM_LDFLAGS"], *flags["RELEASE_LDFLAGS"]])
    shutil.copy(PUBLIC_HEADER, out_dir)
    return out


class BuildPyWithShim(build_py):
    """build_py that also compiles the preload library into the package."""

    def run(self) -> None:
        if getattr(self, "editable_mode", False):
            # pip install -e: the package is imported from the source tree, so the library
            # goes there too (pvdrun/shim/libpvdshim.so, ignored by git).
            super().run()
            compile_shim(os.path.join(HERE, "pvdrun", "shim"))
            return
        # setuptools builds in ./build and never forgets a module: a file removed from the
        # tree would live on in every later wheel.  The package is built afresh each time.
        shutil.rmtree(os.path.join(self.build_lib, "pvdrun"), ignore_errors=True)
        super().run()
        compile_shim(os.path.join(self.build_lib, "pvdrun", "shim"))


LAUNCHER = os.path.join(HERE, "launcher")
#: The native launcher's file name in the scripts directory: the command people run.
LAUNCHER_NAME = "pvdrun"


def launcher_sources() -> list[str]:
    """The native launcher's C sources (launcher/*.c)."""
    sources = sorted(glob.glob(os.path.join(LAUNCHER, "*.c")))
    if not sources:
        raise RuntimeError("no C sources in launcher/")
    return sources


def compile_launcher(out_dir: str) -> str:
    """Compile launcher/ into out_dir/pvdrun (a program linked against libc only)."""
    flags = shim_flags()
    return compile_c(os.path.join(out_dir, LAUNCHER_NAME), flags["LAUNCHER_CFLAGS"], launcher_sources(),
                     flags["RELEASE_LDFLAGS"])


class BuildNativeLauncher(build_scripts):
    """build_scripts that compiles the one script, the native launcher ``pvdrun``, from its C
    sources (the distribution's ``scripts`` list names them so that install_scripts runs);
    the Python command line is the console script ``pvdrun-cli`` (pyproject.toml)."""

    def run(self) -> None:
        self.outfiles = [compile_launcher(self.build_dir)]

    def get_outputs(self) -> list[str]:
        return [os.path.join(self.build_dir, LAUNCHER_NAME)]


class PlatformWheel(bdist_wheel):
    """bdist_wheel tagged py3-none-PLATFORM (linux_x86_64, ...): the wheel is platform-specific
    for its C programs, but holds no extension module, so no Python ABI.  A plain linux_*
    tag is what PyPI refuses; a manylinux tag would need auditwheel (docs: CHANGELOG.md)."""

    def get_tag(self) -> tuple[str, str, str]:
        _python, _abi, plat = super().get_tag()
        return "py3", "none", plat


class BinaryDistribution(Distribution):
    """The wheel carries a native library, so it is platform-specific."""

    def has_ext_modules(self) -> bool:  # noqa: D401
        return True


if __name__ == "__main__":  # setuptools runs this file as __main__; tests import its helpers
    setup(cmdclass={"build_py": BuildPyWithShim, "build_scripts": BuildNativeLauncher,
                    "bdist_wheel": PlatformWheel},
          distclass=BinaryDistribution,
          scripts=[os.path.relpath(path, HERE) for path in launcher_sources()],
          # the man pages, generated from the click definitions (`make man`), into PREFIX/share/man
          data_files=[("share/man/man1", sorted(os.path.relpath(path, HERE)
                                                for path in glob.glob(os.path.join(HERE, "man", "*.1"))))])
