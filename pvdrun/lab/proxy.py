"""The lab's HTTP proxy: Debian's tinyproxy in ispb's namespace (scenarios 1 and 2).

It listens on ``proxy_v6`` port :data:`pvdrun.lab.plan.PROXY_PORT` (the name
``proxy.ispb.example`` in ispb's DNS), serves plain HTTP proxying and CONNECT to any port,
and accepts clients from ispb's prefix only (the host's ispb addresses).  Its config file
and its log live in the lab's run directory: ``ispb-tinyproxy.conf``,
``ispb-tinyproxy.log`` (one line per connection and request, tinyproxy's own format;
``lab status --json`` gives the path).  It runs in the foreground (``-d``), so ``lab down``
stops it like every other lab process.

Names a client asks the proxy for are resolved with the resolver of the namespace it runs
in (the machine's own /etc/resolv.conf: nothing under ``example``), so use addresses
(``http://[2001:db8:b:1::80]/``) through it.
"""
from __future__ import annotations

from pathlib import Path

from pvdrun.lab.plan import PROXY_PORT, IspPlan


def write_config(directory: Path, plan: IspPlan) -> Path:
    """Write tinyproxy's config for ``plan``'s ISP; its path.  No ``LogFile``: in the
    foreground tinyproxy logs to its standard output, which the lab keeps in
    ``<isp>-tinyproxy.log`` like every daemon's output."""
    config = directory / f"{plan.name}-tinyproxy.conf"
    lines = [f"Port {PROXY_PORT}", f"Listen {plan.proxy_v6}", "Timeout 60", "LogLevel Info",
             "MaxClients 32", f"Allow {plan.prefix_v6}"]
    config.write_text("\n".join(lines) + "\n", encoding="ascii")
    return config


def argv(tinyproxy: str, config: Path) -> list[str]:
    """tinyproxy in the foreground with ``config``."""
    return [tinyproxy, "-d", "-c", str(config)]
