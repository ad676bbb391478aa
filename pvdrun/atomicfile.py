"""Replace a file's whole content at once: readers see the old file or the new one, never half."""
from __future__ import annotations

import os
import tempfile


def replace_file(path: str, text: str, mode: int = 0o644) -> None:
    """Write ``text`` to a new file beside ``path`` (mode ``mode``) and rename it over ``path``,
    making the directory when missing; raises OSError (the new file removed)."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, mode=0o755, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
