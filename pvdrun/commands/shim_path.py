"""``pvdrun shim-path``: print where the preload library is."""
from __future__ import annotations

import click

from pvdrun.commands.common import fail
from pvdrun.errors import EXIT_MISSING_PREREQ
from pvdrun.shim import library_path


@click.command("shim-path")
def shim_path_command() -> None:
    """Print the absolute path of the preload library (libpvdshim.so).

    \b
    Other tools can preload it themselves:
      LD_PRELOAD="$(pvdrun shim-path)" PVDRUN_SCOPE=... CMD
    or build against its C API (pvd.h beside it):
      cc -I"$(dirname "$(pvdrun shim-path)")" app.c "$(pvdrun shim-path)"

    Exit status: 0; 5 the library is not installed (pip install .).
    """
    try:
        click.echo(library_path())
    except FileNotFoundError as exc:
        fail(str(exc), EXIT_MISSING_PREREQ)
