"""Everything a figure function needs: the lab, the shim, the preload variants."""
from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass, field

from pvdbench.figure import NotMeasured
from pvdbench.lab import CLIENT_ADDR, SERVER_ADDR, SINK_PORT, BenchLab
from pvdbench.proc import CommandFailed, in_netns, run

PROXYCHAINS_LIB = "/usr/lib/x86_64-linux-gnu/libproxychains.so.4"
TORSOCKS_LIB = "/usr/lib/x86_64-linux-gnu/torsocks/libtorsocks.so"


@dataclass
class BenchContext:
    """The lab plus the run's settings (rounds per figure)."""

    lab: BenchLab
    rounds: int = 5
    quick: bool = False
    _shim_path: str | None = None
    _shim_problem: str | None = None
    caveats: list[str] = field(default_factory=list)
    figures: frozenset[str] = frozenset()  # ids named by --only GROUP.FIGURE: only these run

    def wants(self, fig_id: str) -> bool:
        """Whether the figure fig_id is to be measured: yes, unless --only named figures of its
        group and not this one."""
        group = fig_id.split(".", 1)[0]
        named = {f for f in self.figures if f.split(".", 1)[0] == group}
        return not named or fig_id in named

    # -- pvdrun itself ----------------------------------------------------------
    @staticmethod
    def pvdrun_bin() -> str:
        """The installed `pvdrun` script beside this Python (not a pyenv shim, which adds ~30 ms)."""
        beside = os.path.join(os.path.dirname(sys.executable), "pvdrun")
        if os.path.isfile(beside):
            return beside
        found = shutil.which("pvdrun")
        if not found:
            raise NotMeasured("pvdrun is not installed (make bench runs `pip install .` first)")
        return found

    def pvdrun_env(self, socket_path: str) -> dict[str, str]:
        """Environment that keeps pvdrun on the bench's own pvdd socket and an empty config.

        Never the host's /run/pvd/pvdd.sock or /etc/pvd/pvd.toml: a pvdd there
        lives in another namespace and would answer with another table.
        """
        return {"PVDRUN_SOCKET": socket_path, "PVDRUN_CONFIG": self.empty_config()}

    def empty_config(self) -> str:
        """An empty PvD configuration file in the bench's work directory."""
        config = os.path.join(self.lab.workdir, "pvd.toml")
        if not os.path.exists(config):
            open(config, "w", encoding="utf-8").close()  # noqa: SIM115
        return config

    def no_daemon_socket(self) -> str:
        """A socket path where no pvdd listens (for the without-pvdd variants)."""
        return os.path.join(self.lab.workdir, "no-pvdd-here.sock")

    # -- the shim ------------------------------------------------------------
    def shim_path(self) -> str:
        """Path of the installed preload library, or NotMeasured."""
        if self._shim_path is None and self._shim_problem is None:
            proc = run([self.pvdrun_bin(), "shim-path"], check=False)
            path = proc.stdout.strip()
            if proc.returncode != 0 or not os.path.isfile(path):
                self._shim_problem = f"`pvdrun shim-path` failed: {proc.stderr.strip()}"
            else:
                self._shim_path = path
        if self._shim_problem:
            raise NotMeasured(self._shim_problem)
        assert self._shim_path
        return self._shim_path

    def scope_line(self) -> str:
        """The PVDRUN_SCOPE line of the client veth's PvD, built with the shared model."""
        from pvdrun.model import Pvd, make_handle

        pvd = Pvd(pvd_id=f"bench{self.lab.run_id}", names=["bench"],
                  handle=make_handle(f"bench{self.lab.run_id}", self.lab.client_ifindex, 1),
                  interfaces=[self.lab.client_if], ifindexes=[self.lab.client_ifindex],
                  addresses=[f"{CLIENT_ADDR}/24"], dns_servers=[SERVER_ADDR])
        return pvd.to_scope()

    def shim_env(self) -> dict[str, str]:
        """Environment that preloads the shim scoped to the client veth's PvD."""
        return {"LD_PRELOAD": self.shim_path(), "PVDRUN_SCOPE": self.scope_line()}

    def require_scoping_shim(self) -> None:
        """NotMeasured unless a socket made under the shim ends up bound to the PvD's link."""
        self.shim_path()
        if self._shim_problem:
            raise NotMeasured(self._shim_problem)
        argv = in_netns(self.lab.client_ns, [self.lab.calls_binary(), "probe", "0", "--dst",
                                             SERVER_ADDR, "--port", str(SINK_PORT)],
                        self.shim_env())
        try:
            result = json.loads(run(argv).stdout)
        except (CommandFailed, json.JSONDecodeError) as exc:
            self._shim_problem = f"a program under the shim could not open a UDP socket: {exc}"
            raise NotMeasured(self._shim_problem) from exc
        if result.get("device") != self.lab.client_if:
            self._shim_problem = ("the installed shim does not scope sockets yet: a UDP socket "
                                  "made and connected under PVDRUN_SCOPE is bound to "
                                  f"{result.get('device') or 'no device'!r}, not "
                                  f"{self.lab.client_if!r}")
            raise NotMeasured(self._shim_problem)

    # -- other preload tools ---------------------------------------------------
    def proxychains_env(self) -> dict[str, str]:
        """proxychains4 preloaded with a config that passes DNS through to glibc."""
        if not os.path.isfile(PROXYCHAINS_LIB):
            raise NotMeasured(f"proxychains4 library missing: {PROXYCHAINS_LIB}")
        conf = os.path.join(self.lab.workdir, "proxychains.conf")
        if not os.path.exists(conf):
            with open(conf, "w", encoding="ascii") as handle:
                # no proxy_dns: getaddrinfo passes through to glibc; the proxy is never used
                handle.write("strict_chain\nquiet_mode\n[ProxyList]\nsocks5 127.0.0.1 1080\n")
        return {"LD_PRELOAD": PROXYCHAINS_LIB, "PROXYCHAINS_CONF_FILE": conf,
                "PROXYCHAINS_QUIET_MODE": "1"}

    @staticmethod
    def torsocks_env() -> dict[str, str]:
        """torsocks preloaded (its default configuration)."""
        if not os.path.isfile(TORSOCKS_LIB):
            raise NotMeasured(f"torsocks library missing: {TORSOCKS_LIB}")
        return {"LD_PRELOAD": TORSOCKS_LIB}

    @staticmethod
    def have(command: str) -> bool:
        """Whether a command is installed."""
        return shutil.which(command) is not None
