"""Prerequisites of ``lab up``: root, ``ip`` and ``dnsmasq``."""
from __future__ import annotations

import os
import shutil

from pvdrun.lab.errors import LabPrereqMissing


def check() -> dict[str, str]:
    """Return the paths of the needed programs, or raise with ONE line naming what is missing."""
    if os.geteuid() != 0:
        raise LabPrereqMissing("pvdrun lab needs root (it creates network namespaces)")
    tools: dict[str, str] = {}
    for program, package in (("ip", "iproute2"), ("dnsmasq", "dnsmasq-base"),
                             ("sysctl", "procps")):
        path = shutil.which(program)
        if path is None:
            raise LabPrereqMissing(f"pvdrun lab needs '{program}' in PATH "
                                   f"(Debian package {package})")
        tools[program] = path
    return tools
