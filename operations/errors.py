"""The one family of errors, and how a message names a setting.

Every error the tool raises for a user to read is a :class:`BackgroundSwapError` (a front door
catches that one class). Those a user fixes by changing a setting are :class:`SettingError`\\ s
(exit 2 at the command line).

A message raised below the top never names a command-line flag: the same stage serves the
command line, the Python API and the HTTP service, and each calls its settings something else
(``--max-pixels``, ``max_pixels=``, a form field). A stage names a setting with
:func:`setting` (``f"raise it with {setting('max_pixels')}"``); the message is shown with the
names the front door chose with :func:`use_names` (the command line: its flags), or, where none
chose, the setting's own name. :class:`SettingError`'s leading name is shown the same way.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping

_MARK = re.compile(r"\{setting:([a-z0-9_]+)\}")
_names: dict[str, str] = {}


def setting(name: str) -> str:
    """A setting, inside a message: shown as the front door names it (see :func:`use_names`)."""
    return "{setting:" + name + "}"


def use_names(names: Mapping[str, str]) -> None:
    """Show settings as ``names`` says (setting → its name at this front door), in this process."""
    global _names
    _names = dict(names)


@contextlib.contextmanager
def named(names: Mapping[str, str]) -> Iterator[None]:
    """Within the block, settings are shown as ``names`` says; then as they were."""
    before = dict(_names)
    use_names(names)
    try:
        yield
    finally:
        use_names(before)


def names() -> dict[str, str]:
    """The names chosen with :func:`use_names` (for a worker process to use the same)."""
    return dict(_names)


def render(text: str) -> str:
    """``text`` with each :func:`setting` mark replaced by the setting's name here."""
    return _MARK.sub(lambda found: _names.get(found[1], found[1]), text)


class BackgroundSwapError(Exception):
    """The root of every error the tool raises for a user to read. ``str()`` names settings as
    the front door does."""

    def __str__(self) -> str:
        return render(super().__str__())


class SettingError(BackgroundSwapError, ValueError):
    """An invalid setting, named as the stage knows it (a settings field). ``str()`` is one line."""

    def __init__(self, setting_name: str, value: object, reason: str):
        self.setting, self.value, self.reason = setting_name, value, reason
        shown = f" {str(value)!r}" if value is not None else ""
        super().__init__(f"{setting(setting_name)}{shown}: {reason}")


def require(ok: bool, name: str, value: object, reason: str) -> None:
    """A settings class's check of one of its values: :class:`SettingError` unless ``ok``."""
    if not ok:
        raise SettingError(name, value, reason)


class OptionsError(SettingError):
    """An invalid setting, named as the user gave it (``--bg``): the message a user reads."""

    def __init__(self, option: str, value: object, reason: str):
        self.setting, self.value, self.reason = option, value, reason
        self.option = option
        shown = f" {str(value)!r}" if value is not None else ""
        Exception.__init__(self, f"{option}{shown}: {reason}")
