"""``pvdrun install-service``: write pvdd's systemd unit, running this installation's pvdd."""
from __future__ import annotations

import os

import click

from pvdrun.atomicfile import replace_file

from pvdrun.commands.common import fail, say
from pvdrun.data import UNIT_NAME
from pvdrun.data.unit import files_run, in_home, installed_pvdd, render
from pvdrun.errors import EXIT_FAILED, EXIT_MISSING_PREREQ

#: Where systemd looks for units an administrator installs.
DEFAULT_DEST = "/etc/systemd/system"
COMMAND = "pvdrun install-service"


@click.command("install-service")
@click.option("--dest", metavar="DIR", default=DEFAULT_DEST, show_default=True,
              help="Directory to write pvdd.service into.")
@click.option("--print", "print_only", is_flag=True,
              help="Print the unit on stdout instead of writing it.")
def install_service_command(dest: str, print_only: bool) -> None:
    """Write pvdd's systemd unit (pvdd.service), its ExecStart naming the pvdd installed with
    this pvdrun: a venv's, pipx's or the system's, never a guessed path.

    The unit is Type=notify (pvdd says READY=1 once it serves), runs pvdd as root with
    CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF and CAP_SYS_ADMIN only, delegates pvdd's cgroup
    subtree to strict mode and is hardened as far as pvdd's work allows
    (https://github.com/pvdrun/pvdrun/blob/main/docs/security.md, "The pvdd unit").
    Then: systemctl daemon-reload && systemctl enable --now pvdd.

    When pvdd, its Python or this package lives under /home, /root or /run/user (a venv
    there, pyenv), the unit reads home directories (ProtectHome=read-only) instead of hiding
    them, and a note says so.

    Exit status: 0 written (or printed); 1 the file could not be written; 5 no installed
    pvdd found, or not allowed to write DIR (root).

    \b
    Examples:
      pvdrun install-service                      # /etc/systemd/system/pvdd.service
      pvdrun install-service --print | less
      pvdrun install-service --dest /run/systemd/system   # until the next boot
    """
    try:
        pvdd = installed_pvdd()
    except FileNotFoundError as exc:
        fail(str(exc), EXIT_MISSING_PREREQ, COMMAND)
    homes = [path for path in files_run(pvdd) if in_home(path)]
    if homes:
        say(f"{COMMAND}: note: {homes[0]} is in a home directory: the unit reads home "
            "directories (ProtectHome=read-only); a pvdrun installed elsewhere (a venv in /opt) "
            "gets ProtectHome=yes")
    text = render(pvdd, reads_home=bool(homes))
    if print_only:
        click.echo(text, nl=False)
        return
    path = os.path.join(dest, UNIT_NAME)
    try:
        replace_file(path, text)
    except PermissionError as exc:
        fail(f"cannot write {path}: {exc.strerror} (root is needed for {DEFAULT_DEST})",
             EXIT_MISSING_PREREQ, COMMAND)
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror or exc}", EXIT_FAILED, COMMAND)
    click.echo(f"wrote {path}; now: systemctl daemon-reload && systemctl enable --now pvdd")
