"""One family of errors, and messages below the top that name settings, never flags."""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import pkgutil
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import operations
from operations.errors import BackgroundSwapError, SettingError, named, render, setting
from operations.media.decode import decode
from operations.media.files import ImageError
from operations.options import flag_names
from run import main

ROOT = Path(__file__).resolve().parent.parent
# The top: the modules that know the whole run and the command line (docs/architecture.md).
TOP = {"options.py", "batch.py", "api.py"}
BACKTICKS = re.compile(r"`[^`]*`")  # a command to paste (`backgroundswap download sd --sd-model`)


def _strings(node: ast.AST) -> list[str]:
    """The string constants in ``node``, but for a command line it quotes for the user to run
    (``download_command("sd --sd-model …")``: the ``download`` subcommand's own options)."""
    commands = {
        id(inner)
        for call in ast.walk(node)
        if isinstance(call, ast.Call) and getattr(call.func, "id", "") == "download_command"
        for inner in ast.walk(call)
    }
    return [
        n.value
        for n in ast.walk(node)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in commands
    ]


def _messages(tree: ast.AST) -> list[tuple[int, str]]:
    """Every string that can end up in a raised message: those in a ``raise`` expression, in the
    assignments (in the same function) to the names it uses, and the weights specs' ``option``
    (spliced into the weights errors' messages)."""
    found: list[tuple[int, str]] = []
    scopes = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    for scope in [tree, *scopes]:
        assigned: dict[str, list[ast.AST]] = {}
        for node in ast.walk(scope):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        assigned.setdefault(target.id, []).append(node.value)
        for node in ast.walk(scope):
            if isinstance(node, ast.Raise) and node.exc is not None:
                used = {n.id for n in ast.walk(node.exc) if isinstance(n, ast.Name)}
                values = [node.exc, *(v for name in used for v in assigned.get(name, []))]
                found += [(node.lineno, text) for value in values for text in _strings(value)]
            if isinstance(node, ast.keyword) and node.arg == "option":
                found += [(node.value.lineno, text) for text in _strings(node.value)]
    return sorted(set(found))  # a function's raise is also in the module's walk


def test_no_message_raised_below_the_top_names_a_flag() -> None:
    flags = set(flag_names().values())
    pattern = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
    offenders = []
    for path in sorted((ROOT / "operations").rglob("*.py")):
        if path.name in TOP or path.parent.name == "shell":  # shell/: the command line's own
            continue
        for line, text in _messages(ast.parse(path.read_text())):
            named_flags = set(pattern.findall(BACKTICKS.sub("", text))) & flags
            if named_flags:
                offenders.append(f"{path.relative_to(ROOT)}:{line} {sorted(named_flags)}")
    assert offenders == []


def test_the_scan_finds_a_flag_where_there_is_one() -> None:
    source = 'def f(x):\n    why = f"raise it with --max-pixels {x}"\n    raise ValueError(why)\n'
    assert [text for _, text in _messages(ast.parse(source))] == ["raise it with --max-pixels "]
    spec = "spec = WeightsSpec(name='n', option='--weights')\n"
    assert [text for _, text in _messages(ast.parse(spec))] == ["--weights"]


def _error_classes() -> list[type[BaseException]]:
    classes = []
    for info in pkgutil.walk_packages(operations.__path__, "operations."):
        try:
            module = importlib.import_module(info.name)
        except ImportError:  # an extra that is not installed (the core's own run)
            continue
        classes += [
            c
            for _, c in inspect.getmembers(module, inspect.isclass)
            if issubclass(c, BaseException) and c.__module__ == info.name
        ]
    return classes


def test_every_error_the_tool_defines_has_one_root() -> None:
    classes = _error_classes()
    assert {"SettingError", "ImageError", "SegmenterError", "WeightsError"} <= {
        c.__name__ for c in classes
    }
    assert [c.__name__ for c in classes if not issubclass(c, BackgroundSwapError)] == []


def test_a_setting_is_shown_as_the_front_door_names_it() -> None:
    message = f"raise it with {setting('max_pixels')}"
    assert render(message) == "raise it with max_pixels"  # the library: the setting's name
    with named(flag_names()):
        assert render(message) == "raise it with --max-pixels"  # the command line: its flag
        assert (
            str(SettingError("sd_steps", 0, "must be at least 1"))
            == "--steps '0': must be at least 1"
        )
    assert (
        str(SettingError("sd_steps", 0, "must be at least 1")) == "sd_steps '0': must be at least 1"
    )


def test_a_stage_error_names_the_setting_in_the_library_and_the_flag_at_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = tmp_path / "in" / "big.png"
    photo.parent.mkdir()
    Image.fromarray(np.full((40, 50, 3), 128, np.uint8)).save(photo)
    with pytest.raises(ImageError) as caught:
        decode(photo, max_pixels=1000)
    assert "raise it with max_pixels if you trust it" in str(caught.value)
    assert isinstance(caught.value, BackgroundSwapError)

    out = tmp_path / "out"
    argv = ["-i", str(photo.parent), "-o", str(out), "--blur", "--max-pixels", "1000"]
    argv += ["--summary", str(tmp_path / "summary.json")]
    assert main(argv) == 1
    row = json.loads((tmp_path / "summary.json").read_text())["files"][0]
    assert "raise it with --max-pixels if you trust it" in row["error"]
    # The command line's names were its own: the library's are as they were.
    assert "max_pixels if" in str(ImageError(f"{setting('max_pixels')} if"))
