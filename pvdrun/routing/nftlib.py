"""nftables scripts run in pvdd's own process through libnftables (what ``nft -f -`` does),
with the ``nft`` command when the library is missing.

Running ``nft`` costs 12-16 ms a time here (most of it the start of a new nftables
context); pvdd keeps one context (``libnftables.so.1``, loaded with ctypes: no Python
binding needed) for its life, and a script then costs about 0.2 ms.
"""
from __future__ import annotations

import ctypes
import logging

log = logging.getLogger("pvdrun.routing")

LIBRARY = "libnftables.so.1"


#: libnftables' NFT_CTX_OUTPUT_JSON (enum nft_output_flags, nftables/libnftables.h).
OUTPUT_JSON = 1 << 4


class NftError(RuntimeError):
    """nft refused a script (its message), or cannot run at all."""


class LibNft:
    """One libnftables context (output and errors buffered, not printed)."""

    def __init__(self, library: str = LIBRARY, json: bool = False) -> None:
        lib = ctypes.CDLL(library)
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_get_output_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
        self.lib = lib
        self.ctx = lib.nft_ctx_new(0)
        if not self.ctx:
            raise OSError("nft_ctx_new failed")
        if lib.nft_ctx_buffer_output(self.ctx) or lib.nft_ctx_buffer_error(self.ctx):
            lib.nft_ctx_free(self.ctx)
            raise OSError("cannot buffer libnftables output")
        if json:
            lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
            lib.nft_ctx_output_set_flags(self.ctx, OUTPUT_JSON)

    def run(self, script: str) -> str:
        """Run ``script``; its output.  Raises NftError with nft's message."""
        code = self.lib.nft_run_cmd_from_buffer(self.ctx, script.encode())
        error = (self.lib.nft_ctx_get_error_buffer(self.ctx) or b"").decode(errors="replace").strip()
        output = (self.lib.nft_ctx_get_output_buffer(self.ctx) or b"").decode(errors="replace")
        if code != 0:
            raise NftError(error or f"libnftables returned {code}")
        return output

    def close(self) -> None:
        if self.ctx:
            self.lib.nft_ctx_free(self.ctx)
            self.ctx = None


class NftCommand:
    """The ``nft`` command, one process per script."""

    def __init__(self, path: str | None, json: bool = False) -> None:
        self.path = path
        self.json = json

    def run(self, script: str) -> str:
        import subprocess  # only here: the library is the usual case

        if self.path is None:
            raise NftError("the nft command is missing (Debian package nftables)")
        try:
            done = subprocess.run([self.path, *(["-j"] if self.json else []), "-f", "-"], input=script, capture_output=True, text=True,
                                  timeout=10, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            raise NftError(str(exc)) from exc
        if done.returncode != 0:
            raise NftError(done.stderr.strip() or f"nft exited {done.returncode}")
        return done.stdout

    def close(self) -> None:
        pass


def open_nft(command: str | None, json: bool = False) -> LibNft | NftCommand:
    """libnftables when it loads, else the ``nft`` command at ``command``; ``json``: listings
    come as nft's JSON."""
    try:
        return LibNft(json=json)
    except (OSError, AttributeError) as exc:
        log.debug("libnftables not usable (%s): running the nft command instead", exc)
        return NftCommand(command, json)
