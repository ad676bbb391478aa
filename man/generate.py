"""Write the man pages of the command line (man/*.1) from its click definitions.

    python3 man/generate.py [DIR]        (default: the man/ directory; `make man`)

One page per command and subcommand (pvdrun.1, pvdrun-list.1, pvdrun-lab-up.1, ...), by
click-man, dated with the release date of the package's version in CHANGELOG.md so that the
same sources always give the same pages (tests/test_man_pages.py checks the committed ones
are current).  pvdd.1 is pvdrun-daemon.1 under the name of pvdd's own command.
"""
from __future__ import annotations

import os
import re
import sys

import click
from click_man.core import write_man_pages

import pvdrun
from pvdrun.cli import SUBCOMMANDS, main

HERE = os.path.dirname(os.path.abspath(__file__))


def release_date() -> str:
    """The date of the package version's entry in CHANGELOG.md."""
    with open(os.path.join(os.path.dirname(HERE), "CHANGELOG.md"), encoding="utf-8") as handle:
        found = re.search(rf"^## \[{re.escape(pvdrun.__version__)}\] - (\d{{4}}-\d{{2}}-\d{{2}})", handle.read(),
                          re.MULTILINE)
    if not found:
        raise SystemExit(f"CHANGELOG.md has no entry for version {pvdrun.__version__}")
    return found.group(1)


def eager_group() -> click.Group:
    """The command group with every subcommand loaded (it imports them lazily)."""
    ctx = click.Context(main, info_name="pvdrun")
    group = click.Group("pvdrun", help=main.help, params=main.params, context_settings=main.context_settings)
    for name in SUBCOMMANDS:
        command = main.get_command(ctx, name)
        if command is not None:
            group.add_command(command, name)
    return group


def generate(target: str) -> list[str]:
    """Write the pages into ``target``; their file names."""
    os.makedirs(target, exist_ok=True)
    for old in os.listdir(target):
        if old.endswith(".1"):
            os.unlink(os.path.join(target, old))
    date = release_date()
    write_man_pages("pvdrun", eager_group(), version=pvdrun.__version__, target_dir=target, date=date)
    with open(os.path.join(target, "pvdrun-daemon.1"), encoding="utf-8") as handle:
        daemon = handle.read()
    with open(os.path.join(target, "pvdd.1"), "w", encoding="utf-8") as handle:
        handle.write(daemon.replace("pvdrun\\-daemon", "pvdd").replace("pvdrun-daemon", "pvdd"))
    return sorted(name for name in os.listdir(target) if name.endswith(".1"))


if __name__ == "__main__":
    print("\n".join(generate(sys.argv[1] if len(sys.argv) > 1 else HERE)))
