"""Files installed with the package: pvdd's systemd unit (``pvdd.service``, a template whose
``@PVDD@`` is the path of the installed ``pvdd``; ``pvdrun install-service`` writes it) and an
example configuration file (``pvd.toml``, docs/discovery.md).  The repository's
contrib/pvdd.service and examples/pvd.toml are links to these."""
from __future__ import annotations

import os

#: The unit's file name, as installed under /etc/systemd/system.
UNIT_NAME = "pvdd.service"
#: The example configuration's file name.
EXAMPLE_CONFIG_NAME = "pvd.toml"
#: What ``ExecStart=`` names in the template, replaced by the installed pvdd's path.
PVDD_PLACEHOLDER = "@PVDD@"


def path(name: str) -> str:
    """The absolute path of one of these files (``UNIT_NAME``, ``EXAMPLE_CONFIG_NAME``)."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), name)


def read(name: str) -> str:
    """The text of one of these files; raises OSError when it is missing."""
    with open(path(name), encoding="utf-8") as handle:
        return handle.read()
