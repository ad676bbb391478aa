"""Prerequisites of ``lab up``: root, ``ip`` and ``dnsmasq``; in scenarios 1 and 2 also
``openssl`` (the lab's CA) and ``tinyproxy`` (ispb's HTTP proxy)."""
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


#: what scenarios 1 and 2 need besides :func:`check`'s programs (PvD Additional Information)
PVD_INFO_PROGRAMS = (("openssl", "openssl"), ("tinyproxy", "tinyproxy"))


def check_pvd_info() -> dict[str, str]:
    """The paths of ``openssl`` and ``tinyproxy`` (scenarios 1 and 2), or raise with ONE line."""
    tools: dict[str, str] = {}
    for program, package in PVD_INFO_PROGRAMS:
        path = shutil.which(program)
        if path is None:
            raise LabPrereqMissing(f"pvdrun lab scenarios 1 and 2 need '{program}' in PATH "
                                   f"(Debian package {package}; it serves the PvD Additional "
                                   "Information)")
        tools[program] = path
    return tools
