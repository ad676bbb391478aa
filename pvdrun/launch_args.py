"""The launcher's command line, parsed once: ``pvdrun [OPTIONS] [--] CMD``, ``pvdrun run`` and
``pvdrun exec NAME``.

One parser for every face of the launcher: the console script's fast path
(:mod:`pvdrun.fastlaunch`), the click commands ``run`` and ``exec`` (:mod:`pvdrun.launch`, which
hand their words here unparsed), and the grammar the native launcher (``launcher/args.c``)
follows, held to this one by tests/test_launch_native.py::

    pvdrun [OPTION...] [--] CMD [ARGS...]           (some OPTION is --pvd; the launcher form)
    pvdrun run [OPTION...] [--] CMD [ARGS...]       (the same; --pvd required)
    pvdrun exec [OPTION...] NAME [--] CMD [ARGS...] (as ip netns exec: NAME, then the command)

    OPTION: --pvd NAME | --pvd=NAME | -p NAME | -pNAME
            --socket PATH | --socket=PATH | --config PATH | --config=PATH
            --no-daemon | --strict | --no-strict | --no-proxy-env | -v | --verbose | -h | --help

Options come in any order before the command (the last of a repeated one wins); the command
starts at the first word that is no option, or after ``--``.  An unknown option, a missing or
empty value, no PvD or no command is a usage error (:class:`LaunchUsageError`, exit 2).
Nothing here imports click.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from pvdrun.errors import EXIT_USAGE, PvdrunError

#: Options taking a value -> the field it sets.
VALUED = {"--pvd": "pvd_name", "-p": "pvd_name", "--socket": "socket_path", "--config": "config_path"}
#: Options without a value -> (field, value).
FLAGS = {"--strict": ("strict", True), "--no-strict": ("strict", False), "--no-daemon": ("no_daemon", True),
         "--no-proxy-env": ("proxy_env", False),
         "-v": ("verbose", True), "--verbose": ("verbose", True), "-h": ("help", True), "--help": ("help", True)}
#: Words before a subcommand that belong to the command group, never to the launcher form.
GROUP_WORDS = ("-h", "--help", "--version")
USAGE = "pvdrun --pvd NAME [OPTIONS] [--] CMD [ARGS...]"


class LaunchUsageError(PvdrunError):
    """The launcher's words do not parse; the message says why (exit 2)."""

    exit_status = EXIT_USAGE


@dataclass
class LaunchArgs:
    """What the launcher was asked to do."""

    pvd_name: str | None = None
    socket_path: str | None = None
    config_path: str | None = None
    no_daemon: bool = False
    strict: bool | None = None
    verbose: bool = False
    proxy_env: bool = True
    help: bool = False
    command: list[str] = field(default_factory=list)


def _option(word: str, rest: list[str], found: LaunchArgs) -> None:
    """Apply the option ``word`` (taking its value from ``rest`` when it needs one)."""
    name, sep, value = word.partition("=") if word.startswith("--") else (word, "", "")
    if word.startswith("-p") and not word.startswith("--") and len(word) > 2:
        name, sep, value = "-p", "=", word[2:]  # -pNAME, as getopt reads it
    if name in VALUED:
        if not sep:
            if not rest:
                raise LaunchUsageError(f"option {name} needs a value ({USAGE})")
            value = rest.pop(0)
        if not value:
            raise LaunchUsageError(f"option {name} needs a non-empty value")
        setattr(found, VALUED[name], value)
    elif name in FLAGS and not sep:
        attribute, flag = FLAGS[name]
        setattr(found, attribute, flag)
    elif name in FLAGS:
        raise LaunchUsageError(f"option {name} takes no value")
    else:
        raise LaunchUsageError(f"unknown option {word!r} before the command ({USAGE}; "
                               "put -- before a command that starts with -)")


def _options(rest: list[str], found: LaunchArgs) -> None:
    """Take options off the front of ``rest`` up to the first other word, or through ``--``."""
    while rest:
        if rest[0] == "--":
            rest.pop(0)
            return
        if not rest[0].startswith("-") or rest[0] == "-":
            return
        _option(rest.pop(0), rest, found)


def parse(args: Sequence[str]) -> LaunchArgs:
    """``pvdrun [OPTION...] [--] CMD`` and ``pvdrun run ...``; raises LaunchUsageError."""
    rest = list(args)
    found = LaunchArgs()
    _options(rest, found)
    found.command = rest
    if found.help:
        return found
    if found.pvd_name is None:
        raise LaunchUsageError(f"no PvD: --pvd NAME is missing ({USAGE})")
    if not rest:
        raise LaunchUsageError(f"no command to run ({USAGE})")
    return found


def parse_exec(args: Sequence[str]) -> LaunchArgs:
    """``pvdrun exec [OPTION...] NAME [--] CMD``; raises LaunchUsageError."""
    rest = list(args)
    found = LaunchArgs()
    _options(rest, found)
    if found.help:
        return found
    if found.pvd_name is not None:
        raise LaunchUsageError("pvdrun exec takes the PvD as its first word, not --pvd "
                               "(pvdrun exec NAME [--] CMD [ARGS...])")
    if not rest or not rest[0]:
        raise LaunchUsageError("no PvD: pvdrun exec NAME [--] CMD [ARGS...]")
    found.pvd_name = rest.pop(0)
    if rest[:1] == ["--"]:
        rest.pop(0)
    if not rest:
        raise LaunchUsageError("no command to run (pvdrun exec NAME [--] CMD [ARGS...])")
    found.command = rest
    return found


def is_launcher_form(args: Sequence[str]) -> bool:
    """``pvdrun ARGS`` is the launcher form: ARGS start with an option that is not the command
    group's own (``-h``, ``--help``, ``--version``), and a ``--pvd``/``-p`` comes before the
    command.  Everything else is the command group's (a subcommand, help, the version)."""
    if not args or not args[0].startswith("-") or args[0] in GROUP_WORDS or args[0] in ("-", "--"):
        return False
    rest = list(args)
    while rest and rest[0] != "--" and rest[0].startswith("-") and rest[0] != "-":
        word = rest.pop(0)
        name = word.partition("=")[0] if word.startswith("--") else word[:2]
        if name in ("--pvd", "-p"):
            return True
        if word in VALUED and rest:
            rest.pop(0)
    return False


@dataclass
class VerifyArgs:
    """``pvdrun verify``'s own options, beside the launcher's."""

    launch: LaunchArgs
    json: bool = False
    report: str | None = None


def parse_verify(args: Sequence[str]) -> VerifyArgs:
    """``pvdrun verify [OPTION...] [--] CMD``: the launcher's options and words, plus
    ``--json`` and ``--report FILE`` before the command; raises LaunchUsageError."""
    words = list(args)
    kept: list[str] = []
    found = VerifyArgs(LaunchArgs())
    while words and words[0] != "--" and words[0].startswith("-") and words[0] != "-":
        word = words.pop(0)
        name, sep, value = word.partition("=") if word.startswith("--") else (word, "", "")
        if name == "--json":
            if sep:
                raise LaunchUsageError("option --json takes no value")
            found.json = True
        elif name == "--report":
            if not sep:
                if not words:
                    raise LaunchUsageError("option --report needs a value")
                value = words.pop(0)
            if not value:
                raise LaunchUsageError("option --report needs a non-empty value")
            found.report = value
        else:
            kept.append(word)
            if name in VALUED and not sep and not (name.startswith("-p") and name != "-p") and words:
                kept.append(words.pop(0))
    found.launch = parse(kept + words)
    return found
