"""Print the sanitizer reports that the ASan/UBSan build of the shim wrote (`make test-asan`).

usage: python3 tests/asan/scan_logs.py LOG_DIR

Each process that hit something wrote LOG_DIR/asan.PID or LOG_DIR/ubsan.PID.  ASan runs
there with symbolize=0 (tests/asan/sanitizer_defaults.c), so frames given as
(MODULE+OFFSET) are turned into function and file:line here with addr2line.  Reports
are grouped by what they say and where (the first frame in the shim's sources), each
group printed once in full with the number of processes that hit it.  Exit status 1 when
any file holds an error report (ASan error, UBSan runtime error, sanitizer CHECK), 0 when
there is none (files with warnings only are printed, and do not fail the run).
"""
from __future__ import annotations

import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ERROR = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|CHECK failed")
HEADLINE = re.compile(r"(ERROR: \w+Sanitizer: [\w-]+|runtime error: .*|CHECK failed: .*|WARNING: .*)")
SHIM_FRAME = re.compile(r"#\d+ 0x[0-9a-f]+ in (\S+) (\S*/shim/[^\s:]+:\d+)")
UBSAN_PLACE = re.compile(r"^(\S*/shim/[^\s:]+:\d+):\d+: runtime error", re.M)
ADDRESS = re.compile(r"0x[0-9a-f]+")
UNSYMBOLIZED = re.compile(r"^(\s*#\d+ 0x[0-9a-f]+) +\((/[^+()]+)\+(0x[0-9a-f]+)\)\s*$")
SHOWN_LINES = 80


def addr2line(module: str, offsets: list[str]) -> dict[str, list[tuple[str, str]]]:
    """(function, file:line) frames, innermost inlined first, of each offset in module."""
    try:
        out = subprocess.run(["addr2line", "-a", "-f", "-i", "-C", "-e", module, *offsets],
                             capture_output=True, text=True, timeout=60).stdout.splitlines()
    except (OSError, subprocess.TimeoutExpired):
        return {}
    frames: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    i = 0
    while i < len(out):
        if out[i].startswith("0x"):
            current = frames.setdefault(f"0x{int(out[i], 16):x}", [])
            i += 1
        elif i + 1 < len(out):
            current.append((out[i], out[i + 1]))
            i += 2
        else:
            break
    return frames


def symbolize(text: str) -> str:
    """The report with each (MODULE+OFFSET) frame followed by its function and file:line."""
    wanted: dict[str, set[str]] = defaultdict(set)
    for line in text.splitlines():
        match = UNSYMBOLIZED.match(line)
        if match:
            wanted[match.group(2)].add(f"0x{int(match.group(3), 16):x}")
    known = {module: addr2line(module, sorted(offsets)) for module, offsets in wanted.items()}
    lines = []
    for line in text.splitlines():
        match = UNSYMBOLIZED.match(line)
        frames = known.get(match.group(2), {}).get(f"0x{int(match.group(3), 16):x}") if match else None
        if not match or not frames or frames[0][0] == "??":
            lines.append(line)
            continue
        head, module, offset = match.groups()
        for function, place in frames:  # inlined callees first, as the symbolizer prints them
            lines.append(f"{head} in {function} {place} ({module}+{offset})")
    return "\n".join(lines) + "\n"


def signature(text: str) -> str:
    """What the report says and where, without addresses or pids."""
    head = HEADLINE.search(text)
    what = ADDRESS.sub("0x…", head.group(1)) if head else text.strip().splitlines()[0][:120]
    place = UBSAN_PLACE.search(text)
    frame = SHIM_FRAME.search(text)
    if frame:
        where = f"{frame.group(2)} in {frame.group(1)}"
    elif place:
        where = place.group(1)
    else:
        where = "no frame in shim/"
    return f"{what} at {where}"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    files = sorted(p for p in Path(argv[1]).glob("*") if p.is_file() and p.stat().st_size)
    groups: dict[str, list[Path]] = defaultdict(list)
    errors = 0
    texts: dict[Path, str] = {}
    for path in files:
        text = texts[path] = symbolize(path.read_text(errors="replace"))
        errors += bool(ERROR.search(text))
        groups[signature(text)].append(path)
    if not files:
        print(f"sanitizers: no report in {argv[1]}")
        return 0
    print(f"sanitizers: {len(files)} file(s) in {argv[1]}, {errors} with an error report, "
          f"{len(groups)} distinct:")
    for sig, paths in groups.items():
        print(f"  {len(paths)}x {sig}")
    for sig, paths in groups.items():
        lines = texts[paths[0]].splitlines()
        print(f"\n===== {sig}\n===== {len(paths)} process(es); first: {paths[0]}")
        print("\n".join(lines[:SHOWN_LINES]))
        if len(lines) > SHOWN_LINES:
            print(f"[... {len(lines) - SHOWN_LINES} more lines in {paths[0]}]")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
