"""Settings files: ``--config FILE`` (TOML) with ``[profile]`` tables chosen by ``--profile``.

Keys are the long option names without their dashes (``bg``, ``mask-grow``; ``mask_grow`` is
read the same); a table is a profile, whose keys are laid over the file's top-level ones. The
file's settings become command-line words placed before the command line's own, so a flag given
on the command line wins, and every value goes through the same parsing and the same checks as
the flag. A refusal names the file, the line and the key.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from operations.errors import BackgroundSwapError

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

NOT_IN_FILES = ("--config", "--profile", "--help", "--version")


class ConfigError(BackgroundSwapError):
    """A settings file that cannot be used, said with its file, line and key."""


def _line(text: str, table: str | None, key: str) -> int:
    """Where ``key`` is set (in ``[table]``, or at the top): its 1-based line, or 0."""
    current = None
    pattern = re.compile(rf"""^\s*["']?{re.escape(key)}["']?\s*=""")
    for number, line in enumerate(text.splitlines(), 1):
        header = re.match(r"^\s*\[\s*([^\]]+?)\s*\]", line)
        if header:
            current = header.group(1).strip("\"'")
        elif current == table and pattern.match(line):
            return number
    return 0


def _actions(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {s: a for a in parser._actions for s in a.option_strings if s.startswith("--")}


def _words(action: argparse.Action, flag: str, value: Any) -> list[str]:
    """A setting's value as the command-line words that say it.

    Raises:
        ValueError: a value of the wrong kind for that option.
    """
    if action.nargs == 0:  # a switch
        if not isinstance(value, bool):
            raise ValueError("true or false")
        return [flag] if value else []
    if isinstance(value, bool):
        if action.nargs == "?" and value:
            return [flag]  # an option whose value is optional, given alone
        raise ValueError("a value, not true or false")
    values = value if isinstance(value, list) else [value]
    if isinstance(value, list) and action.nargs in (None, "?"):
        values = [",".join(map(str, value))]  # one word a list, as on the command line (X,Y)
    wanted = action.nargs if isinstance(action.nargs, int) else 1
    if action.nargs not in ("+", "*") and len(values) != wanted:
        raise ValueError("one value" if wanted == 1 else f"a list of {wanted} values")
    words = [str(v) for v in values]
    for word in words:
        try:
            converted = action.type(word) if callable(action.type) else word
        except (ValueError, TypeError):
            kind = getattr(action.type, "__name__", "")
            raise ValueError(f"invalid {kind} value" if kind else "invalid value") from None
        if action.choices is not None and converted not in action.choices:
            raise ValueError(f"choose from {', '.join(map(str, action.choices))}")
    return [flag, *words]


def config_words(
    path: Path, profile: str | None, parser: argparse.ArgumentParser
) -> tuple[list[str], dict[str, str]]:
    """The file's settings (its profile's over its top-level ones) as command-line words, and,
    for each option it sets, where: ``{"--mask-grow": "job.toml:12"}``.

    Raises:
        ConfigError: no such file, not TOML, no such profile, or a key or value refused.
    """
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except OSError as exc:
        raise ConfigError(f"--config '{path}': {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not TOML: {exc}") from None
    profiles = sorted(k for k, v in data.items() if isinstance(v, dict))
    chosen: list[tuple[str | None, str, Any]] = [
        (None, k, v) for k, v in data.items() if not isinstance(v, dict)
    ]
    if profile is not None:
        if profile not in profiles:
            known = ", ".join(profiles) or "none"
            raise ConfigError(f"--profile '{profile}': {path} has no [{profile}] table ({known})")
        chosen += [(profile, k, v) for k, v in data[profile].items()]
    actions = _actions(parser)
    settings: dict[str, list[str]] = {}
    where: dict[str, str] = {}
    for table, key, value in chosen:
        flag = "--" + key.replace("_", "-")
        place = f"{path}:{_line(text, table, key)}"
        action = actions.get(flag)
        if action is None or flag in NOT_IN_FILES:
            raise ConfigError(
                f"{place}: {key}: not a setting (keys are the long option names without their "
                "dashes: bg, mask-grow …; see --help)"
            )
        if isinstance(value, dict):
            raise ConfigError(f"{place}: {key}: a table inside a profile is not a setting")
        try:
            settings[flag] = _words(action, flag, value)
        except (ValueError, TypeError, argparse.ArgumentTypeError) as exc:
            raise ConfigError(f"{place}: {key} = {json.dumps(value)}: {exc}") from None
        where[flag] = place
    return [word for words in settings.values() for word in words], where


def toml_of(settings: dict[str, Any], flags: dict[str, str]) -> str:
    """Settings (field → value) as a TOML file of long option names (``flags``: field → flag),
    the ones with no value left out."""
    lines = []
    for name, value in settings.items():
        if value is None or name not in flags:
            continue
        if isinstance(value, tuple):
            value = list(value)
        if isinstance(value, Path):
            value = str(value)
        # JSON's strings, numbers, booleans and arrays of them are TOML's too.
        lines.append(f"{flags[name][2:]} = {json.dumps(value, ensure_ascii=False)}")
    return "\n".join(lines) + "\n"
