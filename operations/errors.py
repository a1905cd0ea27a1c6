"""The errors a user fixes by changing a setting (exit 2), shared by every module that checks one.

A stage below the top names the setting it was handed (:class:`SettingError`: ``bg``,
``ray_address``); the top, which alone knows the command line, turns it into an
:class:`OptionsError` that names the flag (``--bg``): see
:func:`operations.options.as_options_error`.
"""

from __future__ import annotations


class SettingError(ValueError):
    """An invalid setting, named as the stage knows it (a settings field). ``str()`` is one line."""

    def __init__(self, setting: str, value: object, reason: str):
        self.setting, self.value, self.reason = setting, value, reason
        shown = f" {str(value)!r}" if value is not None else ""
        super().__init__(f"{setting}{shown}: {reason}")


class OptionsError(SettingError):
    """An invalid setting, named as the user gave it (``--bg``): the message a user reads."""

    def __init__(self, option: str, value: object, reason: str):
        super().__init__(option, value, reason)
        self.option = option
