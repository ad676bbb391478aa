"""The package as people install it: the source distribution built from a copy of this tree,
a wheel built from that sdist (tagged py3-none-PLATFORM, its library and launcher stripped, the
library with a SONAME), installed into a fresh virtual environment and run (``pvdrun --version``,
``pvdrun shim-path``, ``pvdrun list`` in a network namespace of its own, ``pvdd --help``,
``pvdrun install-service --print``); an editable install, which builds the library into the
source tree; ``make shim`` on a tree that has no build/.  Everything lives under a temporary
directory removed afterwards: the system's installation is never touched.

The runtime dependencies come from the package index pip is configured with (as ``make test``'s
own install does); where it cannot be reached, from the running interpreter
(``--system-site-packages`` and ``--no-deps``)."""
from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import pvdrun

REPO = Path(__file__).resolve().parent.parent
#: What the sdist must carry to build, and to be read, without the repository.
SDIST_FILES = ["setup.py", "pyproject.toml", "MANIFEST.in", "LICENSE", "CHANGELOG.md", "README.md",
               "Makefile", "shim/flags.mk", "shim/include/pvd.h", "shim/core/api.c",
               "launcher/main.c", "launcher/launcher.h", "contrib/pvdd.service", "examples/pvd.toml",
               "examples/pvd_list.c", "docs/cli.md", "docs/security.md", "pvdrun/data/pvdd.service",
               "pvdrun/data/pvd.toml", "pvdrun/__init__.py"]
#: The folders of the tree whose every C file and header the sdist carries.
SDIST_C_DIRS = ["shim", "launcher"]
TIMEOUT = 600


def run(argv: list[str | os.PathLike[str]], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run argv; fail the test with its output when it fails."""
    done = subprocess.run([str(a) for a in argv], check=False, capture_output=True, text=True, timeout=TIMEOUT,
                          **kwargs)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{argv} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


def tree_files() -> list[str]:
    """The files of this tree a fresh clone would have (tracked, plus new ones not ignored)."""
    if shutil.which("git") and (REPO / ".git").exists():
        listed = run(["git", "-C", REPO, "ls-files", "-z", "--cached", "--others", "--exclude-standard"])
        return [name for name in listed.stdout.split("\0") if name and os.path.lexists(REPO / name)]
    ignored = {".git", "build", "dist", "__pycache__", ".pytest_cache", ".ruff_cache", ".benchmarks"}
    return [str(path.relative_to(REPO)) for path in REPO.rglob("*")
            if not path.is_dir() and not ignored & set(path.relative_to(REPO).parts)
            and not path.name.endswith((".so", ".pyc", ".egg-info"))]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The module's directory: the tree's copy, the builds and the venvs, removed after."""
    path = tmp_path_factory.mktemp("packaging")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def source(work: Path) -> Path:
    """A copy of the tree as a fresh clone has it (symbolic links kept)."""
    target = work / "src"
    for name in tree_files():
        dest = target / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if os.path.islink(REPO / name):
            os.symlink(os.readlink(REPO / name), dest)
        else:
            shutil.copy2(REPO / name, dest)
    return target


@pytest.fixture(scope="module")
def sdist(source: Path, work: Path) -> Path:
    pytest.importorskip("build", reason="the build package ([test] extra) builds the sdist")
    out = work / "dist"
    run([sys.executable, "-m", "build", "--sdist", "--outdir", out, source])
    (found,) = out.glob("pvdrun-*.tar.gz")
    return found


@pytest.fixture(scope="module")
def wheel(sdist: Path, work: Path) -> Path:
    """The wheel pip builds from the sdist alone."""
    out = work / "wheels"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", out, sdist])
    (found,) = out.glob("pvdrun-*.whl")
    return found


def fresh_venv(where: Path, *install: str | os.PathLike[str]) -> Path:
    """A new virtual environment with ``pip install INSTALL...``: the dependencies from the
    package index, or, when pip cannot reach it, from this interpreter's site-packages."""
    run([sys.executable, "-m", "venv", where])
    pip = [where / "bin" / "python", "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    done = subprocess.run([str(a) for a in [*pip, *install]], check=False, capture_output=True, text=True,
                          timeout=TIMEOUT)
    if done.returncode != 0:
        shutil.rmtree(where)
        run([sys.executable, "-m", "venv", "--system-site-packages", where])
        run([*pip, "--no-deps", *install])
    return where


def machine_tag() -> str:
    return "linux_" + platform.machine().replace("-", "_")


def has_symbol_table(path: Path) -> bool:
    sections = run(["readelf", "-S", "-W", path]).stdout
    return ".symtab" in sections or ".debug_info" in sections


# -- the sdist ------------------------------------------------------------------------------

def test_sdist_carries_what_builds(sdist: Path, source: Path) -> None:
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    missing = [name for name in SDIST_FILES if name not in names]
    for folder in SDIST_C_DIRS:
        missing += [str(p.relative_to(source)) for p in (source / folder).rglob("*")
                    if p.suffix in (".c", ".h") and str(p.relative_to(source)) not in names]
    assert not missing, missing
    assert not [name for name in names if name.endswith((".so", ".pyc"))
                or name.split("/")[0] in ("tests", "fuzz", "bench", "build")]


# -- the wheel ------------------------------------------------------------------------------

def test_wheel_tag_and_binaries(wheel: Path, work: Path) -> None:
    assert wheel.name == f"pvdrun-{pvdrun.__version__}-py3-none-{machine_tag()}.whl"
    unpacked = work / "unpacked"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(unpacked)
        tag = archive.read(f"pvdrun-{pvdrun.__version__}.dist-info/WHEEL").decode()
        metadata = archive.read(f"pvdrun-{pvdrun.__version__}.dist-info/METADATA").decode()
    assert f"Tag: py3-none-{machine_tag()}" in tag.splitlines()
    assert "License-Expression: MIT" in metadata.splitlines()
    assert "Project-URL: Homepage, https://github.com/pvdrun/pvdrun" in metadata.splitlines()
    library = unpacked / "pvdrun" / "shim" / "libpvdshim.so"
    launcher = unpacked / f"pvdrun-{pvdrun.__version__}.data" / "scripts" / "pvdrun"
    assert "Library soname: [libpvdshim.so]" in run(["readelf", "-d", library]).stdout
    assert not has_symbol_table(library) and not has_symbol_table(launcher)
    assert "libpython" not in run(["readelf", "-d", library]).stdout
    header = (unpacked / "pvdrun" / "shim" / "pvd.h").read_text()
    assert re.search(r"^#define PVD_API_VERSION \d+$", header, re.MULTILINE)
    assert (unpacked / "pvdrun" / "data" / "pvdd.service").read_text().count("@PVDD@") == 1
    assert (unpacked / "pvdrun" / "data" / "pvd.toml").is_file()


@pytest.mark.root
def test_wheel_installs_and_runs(wheel: Path, work: Path) -> None:
    venv = fresh_venv(work / "venv", wheel)
    bindir = venv / "bin"
    version = run([bindir / "pvdrun", "--version"]).stdout
    assert version.strip() == f"pvdrun, version {pvdrun.__version__}"
    library = Path(run([bindir / "pvdrun", "shim-path"]).stdout.strip())
    assert library.is_file() and venv in library.parents
    env = {**os.environ, "PVDRUN_SOCKET": str(work / "no-pvdd.sock")}
    env.pop("PVDRUN_SHIM_LIBRARY", None)
    listed = run(["unshare", "--net", "--", bindir / "pvdrun", "list"], env=env)
    assert "NAME" in listed.stdout
    assert run([bindir / "pvdd", "--help"]).stdout.startswith("Usage: pvdd")
    unit = run([bindir / "pvdrun", "install-service", "--print"]).stdout
    assert f"ExecStart={bindir / 'pvdd'} " in unit


# -- a source tree ------------------------------------------------------------------------------

def test_editable_install_builds_in_place(source: Path, work: Path) -> None:
    """pip install -e: the library is built into the source tree, where the package is imported
    from; the native launcher finds no library under site-packages and hands over."""
    built = source / "pvdrun" / "shim" / "libpvdshim.so"
    assert not built.exists()
    venv = fresh_venv(work / "editable", "-e", source)
    try:
        assert built.is_file()
        assert run([venv / "bin" / "pvdrun", "shim-path"]).stdout.strip() == str(built)
        assert run([venv / "bin" / "pvdrun", "--version"]).stdout.strip().endswith(pvdrun.__version__)
    finally:
        built.unlink(missing_ok=True)
        (source / "pvdrun" / "shim" / "pvd.h").unlink(missing_ok=True)


def test_make_shim_on_a_fresh_tree(source: Path) -> None:
    shutil.rmtree(source / "build", ignore_errors=True)
    run(["make", "-C", source, "shim"])
    library = source / "build" / "libpvdshim.so"
    assert "Library soname: [libpvdshim.so]" in run(["readelf", "-d", library]).stdout
    assert has_symbol_table(library)  # the developer build keeps its symbols
